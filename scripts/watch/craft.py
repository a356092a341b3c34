#!/usr/bin/python3
"""Craft one small pcap per `nbdgm watch` detection (issue 14 §2, §4).

Deterministic: fixed timestamps, IP ids, ports and transaction ids; no randomness.
Addresses are 198.51.100.0/24 (RFC 5737), MACs locally administered (02:00:5e:..).
Every payload is built by hand below, each field commented with the section of
RFC 1002 (/work/shared/spec/rfc1002.txt), MS-BRWS, MS-MAIL or MS-ADTS it comes from;
scapy only adds the Ethernet/IPv4/UDP layers and writes the pcap.

Usage: scripts/watch/craft.py [--out DIR] [--check]
  --check  run `tshark -r` over every file and fail if Wireshark flags a frame
           of a file that is meant to be well-formed as malformed.
"""

import argparse
import os
import struct
import subprocess
import sys

from scapy.all import Ether, IP, UDP, Raw, wrpcap  # noqa: E402

BASE_TIME = 1767225600  # 2026-01-01T00:00:00Z
NET = "198.51.100."
BCAST = NET + "255"
BMAC = "ff:ff:ff:ff:ff:ff"
WG = "CORP"


class Host:
    def __init__(self, name, last, mac_last=None, net=NET):
        self.name = name
        self.ip = net + str(last)
        self.mac = "02:00:5e:00:00:%02x" % (mac_last if mac_last is not None else last)

    def addr(self):
        return bytes(int(x) for x in self.ip.split("."))


WS01 = Host("WS01", 10)
WS02 = Host("WS02", 11)
SRV01 = Host("SRV01", 20)
PRN01 = Host("PRN01", 30)
NAS01 = Host("NAS01", 31)
EVIL = Host("EVIL66", 66)
# A host on another subnet (RFC 5737 TEST-NET-3), reached through the router .1: its frames
# carry the router's MAC.
REMOTE = Host("REMOTE7", 7, mac_last=1, net="203.0.113.")

# --------------------------------------------------------------------------------------
# NetBIOS names, RFC 1002 §4.1 (first-level encoding, RFC 1001 §14.1)
# --------------------------------------------------------------------------------------


def nb_name(name, suffix, pad=b" "):
    """Encoded NetBIOS name: 15 bytes padded + suffix byte, each nibble + 'A', as one
    32-byte label, then the root label (no scope)."""
    raw = name.encode("ascii").upper()[:15].ljust(15, pad) + bytes([suffix])
    enc = bytearray()
    for b in raw:
        enc.append(ord("A") + (b >> 4))
        enc.append(ord("A") + (b & 0x0F))
    return bytes([32]) + bytes(enc) + b"\x00"


# --------------------------------------------------------------------------------------
# NBNS, RFC 1002 §4.2
# --------------------------------------------------------------------------------------
NB = 0x0020  # RR type NB, §4.2.1.3
IN = 0x0001  # class IN


def nbns_header(tid, flags, qd, an, ns, ar):
    # §4.2.1.1: NAME_TRN_ID, OPCODE/NM_FLAGS/RCODE, QDCOUNT, ANCOUNT, NSCOUNT, ARCOUNT
    return struct.pack(">HHHHHH", tid, flags, qd, an, ns, ar)


def nbns_query(tid, name, suffix):
    """§4.2.12 NAME QUERY REQUEST, broadcast: opcode 0, RD, B (0x0110)."""
    return nbns_header(tid, 0x0110, 1, 0, 0, 0) + nb_name(name, suffix) + struct.pack(">HH", NB, IN)


def nbns_positive(tid, name, suffix, addr, group=False, ttl=300000):
    """§4.2.13 POSITIVE NAME QUERY RESPONSE: R, opcode 0, AA, RD (0x8500), one NB RR
    with NB_FLAGS (G bit 0x8000, ONT B = 0) and NB_ADDRESS."""
    rr = nb_name(name, suffix) + struct.pack(">HHIH", NB, IN, ttl, 6)
    rr += struct.pack(">H", 0x8000 if group else 0) + addr
    return nbns_header(tid, 0x8500, 0, 1, 0, 0) + rr


def nbns_registration(tid, name, suffix, addr, group=False, ttl=300000):
    """§4.2.2 NAME REGISTRATION REQUEST, broadcast: opcode 5, RD, B (0x2910); the
    additional record names the question by pointer 0xC00C."""
    q = nb_name(name, suffix) + struct.pack(">HH", NB, IN)
    rr = struct.pack(">HHHIH", 0xC00C, NB, IN, ttl, 6)
    rr += struct.pack(">H", 0x8000 if group else 0) + addr
    return nbns_header(tid, 0x2910, 1, 0, 0, 1) + q + rr


# --------------------------------------------------------------------------------------
# NetBIOS datagram service, RFC 1002 §4.4.1 (DIGEST §2)
# --------------------------------------------------------------------------------------
DIRECT_UNIQUE = 0x10
DIRECT_GROUP = 0x11
BROADCAST = 0x12


def datagram(msg_type, dgm_id, src_host, src_name, dst_name, user_data, source_ip=None, flags=0x02):
    """MSG_TYPE, FLAGS (F=0x02 first, M=0 no more, SNT B-node), DGM_ID, SOURCE_IP,
    SOURCE_PORT 138, DGM_LENGTH (names + user data, excludes the 14-byte header),
    PACKET_OFFSET 0, SOURCE_NAME, DESTINATION_NAME, USER_DATA."""
    body = src_name + dst_name + user_data
    ip = source_ip if source_ip is not None else src_host.addr()
    return struct.pack(">BBH4sHHH", msg_type, flags, dgm_id, ip, 138, len(body), 0) + body


# --------------------------------------------------------------------------------------
# SMB_COM_TRANSACTION mailslot write, MS-MAIL §2.2.1 / [MS-CIFS] 2.2.4.33
# --------------------------------------------------------------------------------------


def mailslot(slot, data):
    smb = b"\xffSMB" + bytes([0x25])  # protocol, command SMB_COM_TRANSACTION
    smb += b"\x00" * 4  # status
    smb += b"\x00" + b"\x00\x00"  # flags, flags2
    smb += b"\x00" * 10  # PIDHigh, SecurityFeatures
    smb += b"\x00\x00" + b"\x00\x00" + b"\x00\x00" + b"\x00\x00" + b"\x00\x00"  # reserved, TID, PID, UID, MID
    assert len(smb) == 32
    name = slot.encode("ascii") + b"\x00"
    offset = 32 + 1 + 17 * 2 + 2 + len(name)  # header, WordCount, 17 words, ByteCount, name
    words = struct.pack(
        "<HHHHBBHIHHHHHBB",
        0,  # TotalParameterCount
        len(data),  # TotalDataCount
        0,  # MaxParameterCount
        0,  # MaxDataCount
        0,  # MaxSetupCount
        0,  # Reserved1
        0,  # Flags
        0,  # Timeout
        0,  # Reserved2
        0,  # ParameterCount
        offset,  # ParameterOffset
        len(data),  # DataCount
        offset,  # DataOffset
        3,  # SetupCount
        0,  # Reserved3
    )
    words += struct.pack("<HHH", 1, 1, 2)  # MS-MAIL: opcode 1 write mailslot, priority 1, class 2
    assert len(words) == 34
    bytes_ = name + data
    return smb + bytes([17]) + words + struct.pack("<H", len(bytes_)) + bytes_


BROWSE = "\\MAILSLOT\\BROWSE"
NETLOGON = "\\MAILSLOT\\NET\\NETLOGON"

# --------------------------------------------------------------------------------------
# Browser frames, MS-BRWS §2.2
# --------------------------------------------------------------------------------------
SV_WORKSTATION = 0x00000001
SV_SERVER = 0x00000002
SV_DOMAIN_CTRL = 0x00000008
SV_TIME_SOURCE = 0x00000020
SV_NT = 0x00001000
SV_SERVER_NT = 0x00008000
SV_POTENTIAL_BROWSER = 0x00010000
SV_BACKUP_BROWSER = 0x00020000
SV_MASTER_BROWSER = 0x00040000
SV_DOMAIN_ENUM = 0x80000000

WS_TYPE = SV_WORKSTATION | SV_SERVER | SV_NT | SV_POTENTIAL_BROWSER
SRV_TYPE = SV_WORKSTATION | SV_SERVER | SV_DOMAIN_CTRL | SV_TIME_SOURCE | SV_NT | SV_SERVER_NT | SV_POTENTIAL_BROWSER


def host_announcement(server, stype, comment, opcode=0x01, update=1, period=720000,
                      os=(6, 1), raw_comment=None, raw_server=None):
    """§2.2.1 HostAnnouncement (0x01); same layout for LocalMasterAnnouncement (0x0F,
    §2.2.6) and DomainAnnouncement (0x0C, §2.2.7): Opcode, UpdateCount, Periodicity
    (ms), ServerName (16 bytes, NUL padded), OSVersionMajor/Minor, ServerType,
    BrowserConfigVersionMajor 15 / Minor 1, Signature 0xAA55, Comment (NUL-terminated,
    at most 43 bytes)."""
    sn = raw_server if raw_server is not None else server.encode("ascii")[:15].ljust(16, b"\x00")
    cm = raw_comment if raw_comment is not None else comment.encode("ascii") + b"\x00"
    return (struct.pack("<BBI", opcode, update, period) + sn
            + struct.pack("<BBIBBH", os[0], os[1], stype, 15, 1, 0xAA55) + cm)


def criteria(os_byte, role):
    """§2.2.3 Criteria: OS (31..24), browser version 0x010F (23..8), role (7..0)."""
    return (os_byte << 24) | (0x010F << 8) | role


def election(crit, uptime_ms, server, raw_server=None):
    """§2.2.3 RequestElection (0x08): Opcode, Version 1, Criteria, Uptime (ms),
    Reserved 0, ServerName (NUL-terminated, at most 16 bytes)."""
    sn = raw_server if raw_server is not None else server.encode("ascii") + b"\x00"
    return struct.pack("<BBIII", 0x08, 1, crit, uptime_ms, 0) + sn


def reset_state(kind):
    """§2.2.9 ResetStateRequest (0x0E): Opcode, Type (0x01 stop being master,
    0x02 clear all, 0x04 stop browsing)."""
    return struct.pack("<BB", 0x0E, kind)


def become_backup(promote):
    """§2.2.12 BecomeBackup (0x0B): Opcode, BrowserToPromote (NUL-terminated)."""
    return b"\x0b" + promote.encode("ascii") + b"\x00"


def backup_list_response(token, servers):
    """§2.2.5 GetBackupListResponse (0x0A): Opcode, BackupServerCount, Token,
    BackupServerList (NUL-terminated names)."""
    return struct.pack("<BBI", 0x0A, len(servers), token) + b"".join(s.encode() + b"\x00" for s in servers)


# --------------------------------------------------------------------------------------
# NETLOGON mailslot messages, MS-ADTS §6.3.1
# --------------------------------------------------------------------------------------


def utf16z(s):
    return s.encode("utf-16-le") + b"\x00\x00"


def sam_logon_request(computer, user, reply_slot):
    """§6.3.1.4 NETLOGON_SAM_LOGON_REQUEST (0x12): Opcode, RequestCount,
    UnicodeComputerName, UnicodeUserName, MailslotName (ASCII), AllowableAccountControlBits,
    DomainSidSize 0, NtVersion (V1|V5|V5EX = 0x0B... here 0x00000001), LmNtToken, Lm20Token."""
    m = struct.pack("<HH", 0x12, 0) + utf16z(computer) + utf16z(user)
    m += reply_slot.encode("ascii") + b"\x00"
    m += struct.pack("<II", 0x00000080, 0)  # ACB normal account, no SID
    m += struct.pack("<IHH", 0x00000001, 0xFFFF, 0xFFFF)
    return m


def sam_logon_response(server, user, domain):
    """§6.3.1.7 NETLOGON_SAM_LOGON_RESPONSE_NT40 (0x13): Opcode, UnicodeLogonServer
    (\\\\SERVER), UnicodeUserName, UnicodeDomainName, NtVersion 1, LmNtToken, Lm20Token."""
    return (struct.pack("<H", 0x13) + utf16z("\\\\" + server) + utf16z(user) + utf16z(domain)
            + struct.pack("<IHH", 0x00000001, 0xFFFF, 0xFFFF))


def primary_query(computer, reply_slot):
    """§6.3.1.2 NETLOGON_PRIMARY_QUERY (0x07): Opcode, ComputerName, MailslotName, pad to
    even, UnicodeComputerName, NtVersion, LmNtToken, Lm20Token."""
    m = struct.pack("<H", 0x07) + computer.encode() + b"\x00" + reply_slot.encode() + b"\x00"
    if len(m) % 2:
        m += b"\x00"
    return m + utf16z(computer) + struct.pack("<IHH", 0x00000001, 0xFFFF, 0xFFFF)


def primary_response(pdc, domain):
    """§6.3.1.3 NETLOGON_PRIMARY_RESPONSE (0x0C): Opcode, PrimaryDCName, pad,
    UnicodePrimaryDCName, UnicodeDomainName, NtVersion, LmNtToken, Lm20Token."""
    m = struct.pack("<H", 0x0C) + pdc.encode() + b"\x00"
    if len(m) % 2:
        m += b"\x00"
    return m + utf16z(pdc) + utf16z(domain) + struct.pack("<IHH", 0x00000001, 0xFFFF, 0xFFFF)


# --------------------------------------------------------------------------------------
# LLMNR (RFC 4795 §2.1) and mDNS (RFC 6762 §18) — DNS message format, RFC 1035 §4.1
# --------------------------------------------------------------------------------------
LLMNR_GROUP, LLMNR_MAC = "224.0.0.252", "01:00:5e:00:00:fc"
MDNS_GROUP, MDNS_MAC = "224.0.0.251", "01:00:5e:00:00:fb"


def dns_name(fqdn):
    out = b""
    for label in fqdn.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode("ascii")
    return out + b"\x00"


def dns_query(tid, fqdn, flags=0):
    return struct.pack(">HHHHHH", tid, flags, 1, 0, 0, 0) + dns_name(fqdn) + struct.pack(">HH", 1, 1)


def llmnr_answer(tid, fqdn, addr):
    """RFC 4795 §2.1.1: QR set, question echoed, one A record (pointer to the question)."""
    return (struct.pack(">HHHHHH", tid, 0x8000, 1, 1, 0, 0) + dns_name(fqdn) + struct.pack(">HH", 1, 1)
            + struct.pack(">HHHIH", 0xC00C, 1, 1, 30, 4) + addr)


def mdns_answer(fqdn, addr):
    """RFC 6762 §18: id 0, QR|AA (0x8400), no question, one A record, cache-flush class."""
    return (struct.pack(">HHHHHH", 0, 0x8400, 0, 1, 0, 0) + dns_name(fqdn)
            + struct.pack(">HHIH", 1, 0x8001, 120, 4) + addr)


# --------------------------------------------------------------------------------------
# Frames
# --------------------------------------------------------------------------------------


class Capture:
    def __init__(self):
        self.frames = []
        self.ipid = 0x1000

    def udp(self, t, src, dst_ip, dst_mac, sport, dport, payload, ttl=128):
        self.ipid += 1
        p = (Ether(src=src.mac, dst=dst_mac) / IP(src=src.ip, dst=dst_ip, ttl=ttl, id=self.ipid, flags=0)
             / UDP(sport=sport, dport=dport) / Raw(load=payload))
        p.time = BASE_TIME + t
        self.frames.append(p)

    # NBNS ----------------------------------------------------------------------------
    def register(self, t, host, name, suffix, tid, group=False):
        self.udp(t, host, BCAST, BMAC, 137, 137, nbns_registration(tid, name, suffix, host.addr(), group))

    def query(self, t, host, name, suffix, tid):
        self.udp(t, host, BCAST, BMAC, 137, 137, nbns_query(tid, name, suffix))

    def answer(self, t, host, to, name, suffix, tid, addr=None):
        self.udp(t, host, to.ip, to.mac, 137, 137, nbns_positive(tid, name, suffix, addr or host.addr()))

    # Datagrams ---------------------------------------------------------------------
    def browse_bcast(self, t, host, dst, suffix, frame, dgm_id, source_ip=None, src_name=None):
        """A browser frame as DIRECT_GROUP to `dst<suffix>` at the subnet broadcast."""
        d = datagram(DIRECT_GROUP, dgm_id, host, src_name or nb_name(host.name, 0x00),
                     nb_name(dst, suffix), mailslot(BROWSE, frame), source_ip=source_ip)
        self.udp(t, host, BCAST, BMAC, 138, 138, d)

    def browse_unique(self, t, host, to, dst, suffix, frame, dgm_id):
        d = datagram(DIRECT_UNIQUE, dgm_id, host, nb_name(host.name, 0x00), nb_name(dst, suffix),
                     mailslot(BROWSE, frame))
        self.udp(t, host, to.ip, to.mac, 138, 138, d)

    def msbrowse(self, t, host, frame, dgm_id):
        d = datagram(DIRECT_GROUP, dgm_id, host, nb_name(host.name, 0x00),
                     nb_name("\x01\x02__MSBROWSE__\x02", 0x01), mailslot(BROWSE, frame))
        self.udp(t, host, BCAST, BMAC, 138, 138, d)

    def write(self, path):
        wrpcap(path, self.frames, linktype=1)


def register_host(c, t, host, tid, dc=False):
    """What a Windows host registers at boot (three names, each broadcast once here)."""
    c.register(t, host, host.name, 0x00, tid)
    c.register(t + 0.01, host, host.name, 0x20, tid + 1)
    c.register(t + 0.02, host, WG, 0x00, tid + 2, group=True)
    if dc:
        c.register(t + 0.03, host, WG, 0x1C, tid + 3, group=True)


def lan_prelude(c, dc=True):
    """Three hosts register; SRV01 announces, wins an election, and is local master."""
    register_host(c, 0.0, WS01, 0x0100)
    register_host(c, 0.5, WS02, 0x0200)
    register_host(c, 1.0, SRV01, 0x0300, dc=dc)
    c.register(1.1, SRV01, WG, 0x1D, 0x0310)
    c.browse_bcast(2.0, SRV01, WG, 0x1E,
                   host_announcement("SRV01", SRV_TYPE | SV_MASTER_BROWSER | SV_BACKUP_BROWSER,
                                     "file server", opcode=0x0F), 0x3001)


# --------------------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------------------


def benign():
    c = Capture()
    register_host(c, 0.0, WS01, 0x8a01)
    register_host(c, 0.7, WS02, 0x5c10)
    register_host(c, 1.4, SRV01, 0x2e77, dc=True)
    # Lookups answered by the owners (unicast responses).
    c.query(3.0, WS02, "SRV01", 0x20, 0x5c20)
    c.answer(3.001, SRV01, WS02, "SRV01", 0x20, 0x5c20)
    c.query(4.0, WS01, "WS02", 0x00, 0x8a11)
    c.answer(4.002, WS02, WS01, "WS02", 0x00, 0x8a11)
    # Host announcements to CORP<1D> (MS-BRWS §2.2.1).
    c.browse_bcast(5.0, WS01, WG, 0x1D, host_announcement("WS01", WS_TYPE, "desk 1"), 0x8a20)
    c.browse_bcast(5.5, WS02, WG, 0x1D, host_announcement("WS02", WS_TYPE, "desk 2"), 0x5c30)
    c.browse_bcast(6.0, SRV01, WG, 0x1D, host_announcement("SRV01", SRV_TYPE, "file server"), 0x2e80)
    # One election (MS-BRWS §3.2.5.4): WS02 starts it, SRV01 (NT server, PDC) outbids, wins.
    c.browse_bcast(10.0, WS02, WG, 0x1E, election(criteria(0x10, 0x00), 600000, "WS02"), 0x5c31)
    c.browse_bcast(10.2, SRV01, WG, 0x1E, election(criteria(0x20, 0x80), 1200000, "SRV01"), 0x2e81)
    c.browse_bcast(10.4, SRV01, WG, 0x1E, election(criteria(0x20, 0x80), 1200200, "SRV01"), 0x2e82)
    c.register(12.0, SRV01, WG, 0x1D, 0x2e90)
    master_type = SRV_TYPE | SV_MASTER_BROWSER | SV_BACKUP_BROWSER
    c.browse_bcast(12.5, SRV01, WG, 0x1E,
                   host_announcement("SRV01", master_type, "file server", opcode=0x0F), 0x2e83)
    c.msbrowse(13.0, SRV01, host_announcement(WG, SV_DOMAIN_ENUM | SV_NT, "SRV01", opcode=0x0C,
                                              os=(6, 1)), 0x2e84)
    # NETLOGON: WS01 looks for a DC of CORP (registered CORP<1C> is SRV01).
    slot = "\\MAILSLOT\\NET\\GETDC8A3"
    d = datagram(DIRECT_GROUP, 0x8a30, WS01, nb_name("WS01", 0x00), nb_name(WG, 0x1C),
                 mailslot(NETLOGON, sam_logon_request("WS01", "alice", slot)))
    c.udp(90.0, WS01, BCAST, BMAC, 138, 138, d)
    d = datagram(DIRECT_UNIQUE, 0x2e91, SRV01, nb_name("SRV01", 0x00), nb_name("WS01", 0x00),
                 mailslot(slot, sam_logon_response("SRV01", "alice", WG)))
    c.udp(90.01, SRV01, WS01.ip, WS01.mac, 138, 138, d)
    slot2 = "\\MAILSLOT\\NET\\GETDC5C4"
    d = datagram(DIRECT_GROUP, 0x5c40, WS02, nb_name("WS02", 0x00), nb_name(WG, 0x1C),
                 mailslot(NETLOGON, primary_query("WS02", slot2)))
    c.udp(91.0, WS02, BCAST, BMAC, 138, 138, d)
    d = datagram(DIRECT_UNIQUE, 0x2e92, SRV01, nb_name("SRV01", 0x00), nb_name("WS02", 0x00),
                 mailslot(slot2, primary_response("SRV01", WG)))
    c.udp(91.01, SRV01, WS02.ip, WS02.mac, 138, 138, d)
    # A second round of announcements 12 minutes later (the periodicity).
    c.browse_bcast(725.0, WS01, WG, 0x1D, host_announcement("WS01", WS_TYPE, "desk 1", update=2), 0x8a40)
    c.browse_bcast(725.5, WS02, WG, 0x1D, host_announcement("WS02", WS_TYPE, "desk 2", update=2), 0x5c50)
    c.browse_bcast(726.0, SRV01, WG, 0x1E,
                   host_announcement("SRV01", master_type, "file server", opcode=0x0F, update=2), 0x2ea0)
    return c


def answer_not_owner():
    c = Capture()
    lan_prelude(c)
    # SRV01 owns SRV01<20>; WS02 asks; EVIL answers for it with its own address.
    c.query(10.0, WS02, "SRV01", 0x20, 0x7101)
    c.answer(10.001, EVIL, WS02, "SRV01", 0x20, 0x7101)
    return c


def multiple_responders():
    c = Capture()
    lan_prelude(c)
    # One query, two different hosts answer with their own addresses.
    c.query(10.0, WS01, "BACKUPSRV", 0x20, 0x7201)
    c.answer(10.002, PRN01, WS01, "BACKUPSRV", 0x20, 0x7201)
    c.answer(10.003, NAS01, WS01, "BACKUPSRV", 0x20, 0x7201)
    return c


def unsolicited_answer():
    c = Capture()
    lan_prelude(c)
    c.query(10.0, WS02, "SRV01", 0x20, 0x7301)
    c.answer(10.001, SRV01, WS02, "SRV01", 0x20, 0x7301)
    # A positive response whose transaction id no seen query used.
    c.answer(15.0, EVIL, WS02, "SRV01", 0x20, 0x4242)
    return c


def poisoner_answers(c, t, names, tid0):
    """WS01 asks for each name over NBNS, LLMNR and mDNS; EVIL answers all of them."""
    for i, n in enumerate(names):
        tq = t + i * 2.0
        tid = tid0 + i
        c.query(tq, WS01, n, 0x20 if n != "WPAD" else 0x00, tid)
        c.answer(tq + 0.001, EVIL, WS01, n, 0x20 if n != "WPAD" else 0x00, tid)
        lq = n.lower()
        c.udp(tq + 0.1, WS01, LLMNR_GROUP, LLMNR_MAC, 50000 + i, 5355, dns_query(0x3000 + i, lq), ttl=1)
        c.udp(tq + 0.101, EVIL, WS01.ip, WS01.mac, 5355, 50000 + i, llmnr_answer(0x3000 + i, lq, EVIL.addr()))
        c.udp(tq + 0.2, WS01, MDNS_GROUP, MDNS_MAC, 5353, 5353, dns_query(0, lq + ".local"), ttl=255)
        c.udp(tq + 0.201, EVIL, MDNS_GROUP, MDNS_MAC, 5353, 5353, mdns_answer(lq + ".local", EVIL.addr()), ttl=255)


def responder_poisoner():
    c = Capture()
    lan_prelude(c)
    poisoner_answers(c, 10.0, ["FILESRV", "WPAD", "PRINTSRV", "INTRANET", "SHAREPOINT"], 0x7400)
    return c


def wpad():
    c = Capture()
    lan_prelude(c)
    c.query(10.0, WS01, "WPAD", 0x00, 0x7501)
    c.answer(10.001, EVIL, WS01, "WPAD", 0x00, 0x7501)
    return c


def master_change():
    c = Capture()
    lan_prelude(c)
    master_type = SRV_TYPE | SV_MASTER_BROWSER | SV_BACKUP_BROWSER
    c.browse_bcast(60.0, SRV01, WG, 0x1E,
                   host_announcement("SRV01", master_type, "file server", opcode=0x0F, update=2), 0x3002)
    # A forged master: EVIL claims CORP<1D> and announces itself as local master.
    c.register(100.0, EVIL, WG, 0x1D, 0x7601)
    evil_type = WS_TYPE | SV_MASTER_BROWSER | SV_BACKUP_BROWSER
    c.browse_bcast(100.5, EVIL, WG, 0x1E, host_announcement("EVIL66", evil_type, "", opcode=0x0F), 0x7602)
    c.browse_bcast(160.5, EVIL, WG, 0x1E,
                   host_announcement("EVIL66", evil_type, "", opcode=0x0F, update=2), 0x7603)
    return c


def election_storm():
    c = Capture()
    lan_prelude(c)
    # 40 RequestElection frames in 20 s from EVIL, SRV01 answering some of them.
    for i in range(40):
        c.browse_bcast(10.0 + i * 0.5, EVIL, WG, 0x1E, election(criteria(0x10, 0x01), 1000 + i, "EVIL66"),
                       0x7700 + i)
        if i % 4 == 0:
            c.browse_bcast(10.05 + i * 0.5, SRV01, WG, 0x1E,
                           election(criteria(0x20, 0x80), 1200000 + i * 500, "SRV01"), 0x3100 + i)
    return c


def election_overclaim():
    c = Capture()
    lan_prelude(c)
    # EVIL announces itself as a plain NT workstation (no DC, no NT server bit) ...
    c.browse_bcast(10.0, EVIL, WG, 0x1D, host_announcement("EVIL66", WS_TYPE, "desk"), 0x7801)
    # ... then claims NT_SERVER, PDC, preferred and running master in an election.
    c.browse_bcast(12.0, EVIL, WG, 0x1E, election(criteria(0x20, 0x80 | 0x08 | 0x04), 0xFFFFFFF0, "EVIL66"),
                   0x7802)
    return c


def reset_state_scn():
    c = Capture()
    lan_prelude(c)
    # ResetStateRequest (stop being master) to the master's CORP<1D>, from a non-master.
    c.browse_unique(10.0, EVIL, SRV01, WG, 0x1D, reset_state(0x01), 0x7901)
    return c


def become_backup_rogue():
    c = Capture()
    lan_prelude(c)
    c.browse_bcast(10.0, EVIL, WG, 0x1E, become_backup("WS02"), 0x7a01)
    return c


def backup_list_rogue():
    c = Capture()
    lan_prelude(c)
    c.browse_unique(10.0, EVIL, WS01, "WS01", 0x00, backup_list_response(7, ["EVIL66"]), 0x7a11)
    return c


def overlong_browser_field():
    c = Capture()
    lan_prelude(c)
    # The MS11-019 shape: an election whose ServerName runs 300 bytes to the end of the
    # frame without a NUL, and an announcement whose Comment does the same.
    c.browse_bcast(10.0, EVIL, WG, 0x1E, election(criteria(0x10, 0x01), 1000, "", raw_server=b"A" * 300), 0x7b01)
    c.browse_bcast(11.0, EVIL, WG, 0x1D,
                   host_announcement("EVIL66", WS_TYPE, "", raw_comment=b"B" * 300), 0x7b02)
    return c


def source_ip_mismatch():
    c = Capture()
    lan_prelude(c)
    # EVIL (.66) sends a host announcement whose datagram SOURCE_IP says SRV01 (.20).
    c.browse_bcast(10.0, EVIL, WG, 0x1D, host_announcement("SRV01", SRV_TYPE, "file server"), 0x7c01,
                   source_ip=SRV01.addr(), src_name=nb_name("SRV01", 0x00))
    return c


def rogue_logon_response():
    c = Capture()
    lan_prelude(c)  # SRV01 registered CORP<1C>; EVIL never did
    # After 60 s of capture, so that the name table counts as warm (not cold-start noise).
    slot = "\\MAILSLOT\\NET\\GETDC8B1"
    d = datagram(DIRECT_GROUP, 0x7d01, WS01, nb_name("WS01", 0x00), nb_name(WG, 0x1C),
                 mailslot(NETLOGON, sam_logon_request("WS01", "alice", slot)))
    c.udp(90.0, WS01, BCAST, BMAC, 138, 138, d)
    d = datagram(DIRECT_UNIQUE, 0x7d02, EVIL, nb_name("EVIL66", 0x00), nb_name("WS01", 0x00),
                 mailslot(slot, sam_logon_response("EVIL66", "alice", WG)))
    c.udp(90.001, EVIL, WS01.ip, WS01.mac, 138, 138, d)
    slot2 = "\\MAILSLOT\\NET\\GETDC8B2"
    d = datagram(DIRECT_GROUP, 0x7d03, WS02, nb_name("WS02", 0x00), nb_name(WG, 0x1C),
                 mailslot(NETLOGON, primary_query("WS02", slot2)))
    c.udp(91.0, WS02, BCAST, BMAC, 138, 138, d)
    d = datagram(DIRECT_UNIQUE, 0x7d04, EVIL, nb_name("EVIL66", 0x00), nb_name("WS02", 0x00),
                 mailslot(slot2, primary_response("EVIL66", WG)))
    c.udp(91.001, EVIL, WS02.ip, WS02.mac, 138, 138, d)
    return c


def malformed():
    c = Capture()
    lan_prelude(c)
    # NBNS: question name with a first-level character outside A..P ('Z').
    bad = bytearray(nbns_query(0x7e01, "SRV01", 0x20))
    bad[13] = ord("Z")
    c.udp(10.0, EVIL, BCAST, BMAC, 137, 137, bytes(bad))
    # NBNS: header only, QDCOUNT 1, no question.
    c.udp(10.1, EVIL, BCAST, BMAC, 137, 137, nbns_header(0x7e02, 0x0110, 1, 0, 0, 0))
    # Datagram: DGM_LENGTH says 400, the packet carries far less.
    d = bytearray(datagram(DIRECT_GROUP, 0x7e03, EVIL, nb_name("EVIL66", 0), nb_name(WG, 0x1D),
                           mailslot(BROWSE, host_announcement("EVIL66", WS_TYPE, "x"))))
    d[10:12] = struct.pack(">H", 400)
    c.udp(10.2, EVIL, BCAST, BMAC, 138, 138, bytes(d))
    # Datagram: truncated inside the source name.
    c.udp(10.3, EVIL, BCAST, BMAC, 138, 138, bytes(d[:20]))
    # LLMNR: a label running past the end.
    c.udp(10.4, EVIL, LLMNR_GROUP, LLMNR_MAC, 50100, 5355,
          struct.pack(">HHHHHH", 0x7e05, 0, 1, 0, 0, 0) + b"\x3fabc", ttl=1)
    # mDNS: a compression pointer to itself.
    c.udp(10.5, EVIL, MDNS_GROUP, MDNS_MAC, 5353, 5353,
          struct.pack(">HHHHHH", 0, 0, 1, 0, 0, 0) + b"\xc0\x0c" + struct.pack(">HH", 1, 1), ttl=255)
    return c


def announcement_flood():
    c = Capture()
    lan_prelude(c)
    # 200 HostAnnouncements with 200 different server names from one host in 10 s.
    for i in range(200):
        c.browse_bcast(10.0 + i * 0.05, EVIL, WG, 0x1D,
                       host_announcement("FAKE%04d" % i, WS_TYPE, "flood"), (0x8000 + i) & 0xFFFF)
    return c


def isatap():
    c = Capture()
    lan_prelude(c)
    c.query(10.0, WS01, "ISATAP", 0x00, 0x7f01)
    c.answer(10.001, EVIL, WS01, "ISATAP", 0x00, 0x7f01)
    return c


def direct_unique_unknown():
    c = Capture()
    lan_prelude(c)
    # After the 60 s warm-up: a DIRECT_UNIQUE datagram to a name nobody registered.
    d = datagram(DIRECT_UNIQUE, 0x7f11, EVIL, nb_name("EVIL66", 0x00), nb_name("GHOST", 0x03),
                 b"hello from nowhere")
    c.udp(90.0, EVIL, WS01.ip, WS01.mac, 138, 138, d)
    return c


def answer_address_mismatch():
    c = Capture()
    lan_prelude(c)
    # WS01 asks by broadcast for FILESRV<20> (nobody registered it); EVIL (.66) answers,
    # but the NB_ADDRESS it gives is .99, not its own: a B-node answers for itself, so an
    # answer naming another address redirects the asker (RFC 1002 §4.2.13, §5.1.1).
    c.query(10.0, WS01, "FILESRV", 0x20, 0x7f21)
    c.answer(10.001, EVIL, WS01, "FILESRV", 0x20, 0x7f21, addr=bytes([198, 51, 100, 99]))
    return c


def off_subnet():
    c = Capture()
    lan_prelude(c)
    # Routed NetBIOS: REMOTE7 (203.0.113.7, outside 198.51.100.0/24, via the router) asks
    # SRV01 for WS01<20> by unicast and sends it a DIRECT_UNIQUE host announcement; run
    # with --local-net 198.51.100.0/24 (off-subnet.pcap.args). Once per source.
    c.udp(10.0, REMOTE, SRV01.ip, SRV01.mac, 137, 137, nbns_header(0x7f31, 0x0100, 1, 0, 0, 0)
          + nb_name("WS01", 0x20) + struct.pack(">HH", NB, IN), ttl=127)
    c.udp(10.5, REMOTE, SRV01.ip, SRV01.mac, 138, 138,
          datagram(DIRECT_UNIQUE, 0x7f32, REMOTE, nb_name("REMOTE7", 0x00), nb_name(WG, 0x1D),
                   mailslot(BROWSE, host_announcement("REMOTE7", WS_TYPE, "branch office"))), ttl=127)
    return c


SCENARIOS = {
    "benign": benign,
    "answer-not-owner": answer_not_owner,
    "multiple-responders": multiple_responders,
    "unsolicited-answer": unsolicited_answer,
    "responder-poisoner": responder_poisoner,
    "wpad": wpad,
    "master-change": master_change,
    "election-storm": election_storm,
    "election-overclaim": election_overclaim,
    "reset-state": reset_state_scn,
    "become-backup-rogue": become_backup_rogue,
    "backup-list-rogue": backup_list_rogue,
    "overlong-browser-field": overlong_browser_field,
    "source-ip-mismatch": source_ip_mismatch,
    "rogue-logon-response": rogue_logon_response,
    "malformed": malformed,
    "announcement-flood": announcement_flood,
    "isatap": isatap,
    "direct-unique-unknown": direct_unique_unknown,
    "answer-address-mismatch": answer_address_mismatch,
    "off-subnet": off_subnet,
}

# Files whose frames are meant to be malformed (tshark may flag them).
MEANT_MALFORMED = {"malformed", "overlong-browser-field"}


def check(out):
    bad = 0
    for name in SCENARIOS:
        path = os.path.join(out, name + ".pcap")
        r = subprocess.run(["tshark", "-n", "-r", path], capture_output=True, text=True, timeout=60)
        lines = r.stdout.splitlines()
        flagged = [ln for ln in lines if "Malformed" in ln]
        status = "ok"
        if r.returncode != 0:
            status = "tshark failed: " + r.stderr.strip()
            bad += 1
        elif flagged and name not in MEANT_MALFORMED:
            status = "MALFORMED: " + flagged[0]
            bad += 1
        print("%-24s %4d frames  %s" % (name, len(lines), status))
    return bad


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(here, "../../crates/nbdgm/tests/data/watch"))
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    for name, fn in SCENARIOS.items():
        fn().write(os.path.join(a.out, name + ".pcap"))
    if a.check and check(a.out):
        sys.exit(1)


if __name__ == "__main__":
    main()
