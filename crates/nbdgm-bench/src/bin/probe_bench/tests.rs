//! Unit tests of the nmap/NODE STATUS parsers and the verdicts of `probe_bench`.

use super::*;

const XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<nmaprun scanner="nmap" args="nmap -sU">
<host starttime="1" endtime="2"><status state="up" reason="arp-response" reason_ttl="0"/>
<address addr="198.51.100.10" addrtype="ipv4"/>
<address addr="AA:BB:CC:DD:EE:FF" addrtype="mac"/>
<ports><port protocol="udp" portid="137"><state state="open" reason="udp-response" reason_ttl="64"/><service name="netbios-ns" method="table" conf="3"/></port>
<port protocol="udp" portid="138"><state state="open|filtered" reason="no-response" reason_ttl="0"/><service name="netbios-dgm" method="table" conf="3"/></port>
</ports>
<hostscript><script id="nbstat" output="NetBIOS name: NBLMB10, NetBIOS user: &lt;unknown&gt;&#xa;Names:&#xa;  NBLMB10&lt;00&gt;          Flags: &lt;unique&gt;&lt;active&gt;&#xa;  \x01\x02__MSBROWSE__\x02&lt;01&gt;  Flags: &lt;group&gt;&lt;active&gt;&#xa;  WGLMB10&lt;1d&gt;          Flags: &lt;unique&gt;&lt;active&gt;"/></hostscript>
</host>
<host starttime="1" endtime="2"><status state="up" reason="user-set" reason_ttl="0"/>
<address addr="198.51.100.20" addrtype="ipv4"/>
<ports><extraports state="closed" count="2">
<extrareasons reason="port-unreach" count="2" proto="udp" ports="137-138"/>
</extraports>
</ports>
</host>
<host><status state="down" reason="no-response" reason_ttl="0"/>
<address addr="198.51.100.30" addrtype="ipv4"/>
</host>
<runstats><finished time="3" summary="Nmap done; 256 IP addresses (2 hosts up) scanned in 1.00 seconds" elapsed="1.00"/></runstats>
</nmaprun>"#;

#[test]
fn parses_nmap_xml() {
    let m = parse_nmap(XML);
    let a = &m[&"198.51.100.10".parse().unwrap()];
    assert_eq!(a.state[0].as_deref(), Some("open"));
    assert_eq!(a.state[1].as_deref(), Some("open|filtered"));
    let names = a.names.as_ref().unwrap();
    assert!(names.contains("NBLMB10<00>"), "{names:?}");
    assert!(names.contains("WGLMB10<1D>"), "{names:?}");
    assert!(names.contains("<01><02>__MSBROWSE__<02><01>"), "{names:?}");
    assert_eq!(names.len(), 3);
    let b = &m[&"198.51.100.20".parse().unwrap()];
    assert_eq!(b.state[0].as_deref(), Some("closed"));
    assert_eq!(b.state[1].as_deref(), Some("closed"));
    assert!(b.names.is_none());
    let c = &m[&"198.51.100.30".parse().unwrap()];
    assert_eq!(c.state[0].as_deref(), Some("host-down"));
    assert_eq!(m.len(), 3);
    assert!(nmap_summary(XML).contains("2 hosts up"));
}

#[test]
fn unescapes() {
    assert_eq!(unescape("a&lt;b&gt;&#x1;&#2;&amp;"), "a<b>\u{1}\u{2}&");
    assert_eq!(normalize_name("WG<1d>"), "WG<1D>");
}

#[test]
fn verdicts() {
    assert_eq!(verdict(Truth::Open, "open"), Verdict::Right);
    assert_eq!(verdict(Truth::Open, "open|filtered"), Verdict::Ambiguous);
    assert_eq!(verdict(Truth::Filtered, "likely-open"), Verdict::Wrong);
    assert_eq!(verdict(Truth::HostDown, "open|filtered"), Verdict::Wrong);
}
