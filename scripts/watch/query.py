#!/usr/bin/python3
"""Victim-side name lookups for the `nbdgm watch` namespace tests: LLMNR (RFC 4795,
224.0.0.252:5355) and mDNS (RFC 6762, 224.0.0.251:5353) A queries for the given names,
like a Windows or Linux client resolving a mistyped share name. Prints one line per
answer: `answer llmnr NAME ADDR from SRC`. Bounded: --wait seconds per query.
Test addresses only (198.51.100.0/24, 203.0.113.0/24)."""

import argparse
import random
import select
import socket
import struct
import sys
import time


def dns_name(fqdn):
    return b"".join(bytes([len(x)]) + x.encode() for x in fqdn.split(".") if x) + b"\x00"


def first_a(msg):
    """The address of the first A record of a DNS response, or None."""
    try:
        _, flags, qd, an = struct.unpack(">HHHH", msg[:8])
        if not flags & 0x8000 or an == 0:
            return None
        off = 12
        for _ in range(qd + an):
            while msg[off] != 0 and msg[off] & 0xC0 != 0xC0:
                off += 1 + msg[off]
            off += 2 if msg[off] & 0xC0 == 0xC0 else 1
            if qd > 0:
                qd -= 1
                off += 4
                continue
            rtype, _, _, rdlen = struct.unpack(">HHIH", msg[off:off + 10])
            off += 10
            if rtype == 1 and rdlen == 4:
                return socket.inet_ntoa(msg[off:off + 4])
            off += rdlen
    except (IndexError, struct.error):
        return None
    return None


def ask(my_ip, proto, name, wait):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(my_ip))
    if proto == "llmnr":
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        s.bind((my_ip, 0))
        tid = random.randrange(1, 0xFFFF)
        q = struct.pack(">HHHHHH", tid, 0, 1, 0, 0, 0) + dns_name(name) + struct.pack(">HH", 1, 1)
        dst = ("224.0.0.252", 5355)
    else:
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
        s.bind((my_ip, 0))  # a "one-shot" query from an ephemeral port (RFC 6762 §5.1)
        fq = name if name.endswith(".local") else name + ".local"
        q = struct.pack(">HHHHHH", 0, 0, 1, 0, 0, 0) + dns_name(fq) + struct.pack(">HH", 1, 0x8001)
        dst = ("224.0.0.251", 5353)
    s.sendto(q, dst)
    deadline = time.monotonic() + wait
    got = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        r, _, _ = select.select([s], [], [], left)
        if not r:
            break
        msg, peer = s.recvfrom(2048)
        addr = first_a(msg)
        if addr:
            got += 1
            print("answer %s %s %s from %s" % (proto, name, addr, peer[0]), flush=True)
    s.close()
    return got


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ip", required=True)
    ap.add_argument("--proto", choices=["llmnr", "mdns", "both"], default="both")
    ap.add_argument("--wait", type=float, default=1.0)
    ap.add_argument("names", nargs="+")
    a = ap.parse_args()
    if not a.ip.startswith(("198.51.100.", "203.0.113.")):
        sys.exit("query: test addresses only")
    protos = ["llmnr", "mdns"] if a.proto == "both" else [a.proto]
    total = 0
    for n in a.names[:32]:
        for p in protos:
            total += ask(a.ip, p, n, min(a.wait, 10.0))
    print("done answers=%d" % total, flush=True)


if __name__ == "__main__":
    main()
