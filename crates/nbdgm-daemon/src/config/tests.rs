use super::load::line_col;
use super::*;
use proptest::prelude::*;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

const EXAMPLE: &str = include_str!("../../../../dist/nbdgm.toml");

fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

fn err(text: &str) -> ConfigError {
    match Config::from_str(text) {
        Ok(c) => panic!("accepted: {c:?}"),
        Err(e) => e,
    }
}

/// Asserts kind, key and line of an error, and returns its message.
fn expect(text: &str, kind: ErrorKind, key: &str, line: usize) -> String {
    let e = err(text);
    assert_eq!(e.kind(), Some(kind), "{e}");
    assert_eq!(e.key(), Some(key), "{e}");
    assert_eq!(e.line(), Some(line), "{e}");
    e.to_string()
}

fn uncommented_example() -> String {
    EXAMPLE
        .lines()
        .map(|l| {
            let rest = l.strip_prefix("# ").unwrap_or("");
            let is_setting = rest.starts_with('[')
                || rest
                    .split_once(" = ")
                    .is_some_and(|(k, _)| k.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
            if is_setting {
                rest
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn defaults() {
    let c = Config::default();
    assert_eq!(c.node.workgroup, "WORKGROUP");
    assert_eq!(c.node.node_type, NodeType::B);
    assert_eq!((c.ports.name, c.ports.datagram), (137, 138));
    assert_eq!(c.datagram.max_length, 576);
    assert_eq!(c.datagram.fragment_timeout_ms, 2000);
    assert_eq!(c.datagram.source_ip_mismatch, SourceIpPolicy::Log);
    assert_eq!(c.reassembly.max_total_bytes, 1_048_576);
    assert_eq!(c.name_service.retry_count, 3);
    assert_eq!(c.name_service.ttl, 300_000);
    assert_eq!(c.access.datagram.allow, AllowList::Auto);
    assert_eq!(
        c.limits.rx_per_source,
        RateConfig {
            rate: 200.0,
            burst: 400
        }
    );
    assert_eq!(
        c.limits.replies_per_source,
        RateConfig {
            rate: 50.0,
            burst: 100
        }
    );
    assert_eq!(c.limits.max_sources, 4096);
    assert_eq!(c.api.socket, PathBuf::from("/run/nbdgm/api.sock"));
    assert_eq!(c.api.mode, FileMode(0o660));
    assert_eq!(c.log.format, LogFormat::Text);
    assert!(c.validate().is_ok());
    assert_eq!(Config::from_str("").unwrap(), c);
    assert_eq!(c.node_name(), default_node_name());
    assert!(check_netbios_name(&c.node_name()).is_ok());
}

#[test]
fn example_file_is_the_defaults() {
    let c = Config::from_str(EXAMPLE).unwrap();
    assert_eq!(c, Config::default());
}

#[test]
fn example_file_optional_settings_parse_as_documented() {
    let text = uncommented_example();
    let c = Config::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(c.node.name.as_deref(), Some("FILESRV"));
    assert_eq!(
        c.node.names,
        vec![
            ExtraName {
                name: "APP<2a>".into(),
                group: false
            },
            ExtraName {
                name: "TEAM<00>".into(),
                group: true
            },
        ]
    );
    assert_eq!(
        c.interfaces,
        vec![InterfaceConfig {
            address: net("198.51.100.10/24"),
            broadcast: Some(Ipv4Addr::new(198, 51, 100, 255)),
            announce_address: Some(Ipv4Addr::new(203, 0, 113, 5)),
        }]
    );
    assert_eq!(c.node.announce_address, Some(Ipv4Addr::new(203, 0, 113, 5)));
    assert_eq!(c.browser.http, "127.0.0.1:8139");
    assert_eq!(c.browser.remote_announce.len(), 1);
    assert_eq!(c.api.group.as_deref(), Some("nbdgm"));
    assert_eq!(c.api.tcp, Some("127.0.0.1:1380".parse().unwrap()));
    assert_eq!(
        c.api.tcp_token_file.as_deref(),
        Some(Path::new("/etc/nbdgm/api.token"))
    );
    assert_eq!(c.browser.http_allowed_hosts, ["nbdgm.example.org"]);
    assert_eq!(c.privileges.user.as_deref(), Some("nbdgm"));
    assert_eq!(c.privileges.group.as_deref(), Some("nbdgm"));
    // Nothing else differs from the defaults.
    let mut d = c.clone();
    d.node.name = None;
    d.node.names.clear();
    d.node.announce_address = None;
    d.browser.http.clear();
    d.browser.remote_announce.clear();
    d.interfaces.clear();
    d.api.group = None;
    d.api.tcp = None;
    d.api.tcp_token_file = None;
    d.browser.http_allowed_hosts.clear();
    d.privileges = PrivilegesConfig::default();
    assert_eq!(d, Config::default());
}

#[test]
fn serialises_and_reads_back() {
    let mut c = Config::from_str(&uncommented_example()).unwrap();
    c.access.datagram.allow = AllowList::List(vec![net("10.0.0.0/8")]);
    c.access.name_service.allow = AllowList::Any;
    c.access.api.deny = vec![net("127.0.0.2/32")];
    let text = toml::to_string(&c).unwrap();
    assert_eq!(Config::from_str(&text).unwrap(), c, "{text}");
}

#[test]
fn access_lists() {
    let c = Config::from_str(
        "[access.datagram]\nallow = [\"10.0.0.0/8\", \"192.0.2.7\"]\ndeny = [\"10.9.0.0/16\"]\n\
         [access.name_service]\nallow = \"any\"\n[access.api]\nallow = []\nallow_uids = [0, 1000]\n",
    )
    .unwrap();
    let own = [net("198.51.100.10/24")];
    let dg = c.access.datagram.acl(&own);
    assert!(dg.permits("10.1.1.1".parse().unwrap()));
    assert!(dg.permits("192.0.2.7".parse().unwrap()));
    assert!(!dg.permits("192.0.2.8".parse().unwrap()));
    assert!(!dg.permits("10.9.1.1".parse().unwrap()));
    assert!(!dg.permits("198.51.100.1".parse().unwrap()));
    assert!(c
        .access
        .name_service
        .acl(&own)
        .permits("203.0.113.1".parse().unwrap()));
    assert!(!c.access.api.acl().permits("127.0.0.1".parse().unwrap()));
    assert_eq!(c.access.api.allow_uids, vec![0, 1000]);
    let d = Config::default();
    let auto = d.access.datagram.acl(&own);
    assert!(auto.permits("198.51.100.200".parse().unwrap()));
    assert!(!auto.permits("198.51.101.1".parse().unwrap()));
    assert!(d.access.api.acl().permits("127.0.0.1".parse().unwrap()));
    assert!(!d
        .access
        .api
        .acl()
        .permits("198.51.100.200".parse().unwrap()));
}

#[test]
fn syntax_errors_have_line_and_key() {
    let m = expect(
        "[node]\nworkgroup = \"W\"\nname = \n",
        ErrorKind::Syntax,
        "node.name",
        3,
    );
    assert!(m.starts_with("<config>:3:"), "{m}");
    expect("[node\n", ErrorKind::Syntax, "", 1);
    expect("a = 1\na = 2\n", ErrorKind::Syntax, "a", 2);
}

#[test]
fn unknown_keys_are_errors_with_line() {
    expect("[nodes]\nx = 1\n", ErrorKind::UnknownKey, "nodes", 1);
    let m = expect(
        "[node]\nworkgroup = \"X\"\nfoo = 1\n",
        ErrorKind::UnknownKey,
        "node.foo",
        3,
    );
    assert!(m.contains("unknown field `foo`"), "{m}");
    expect(
        "[limits]\n\nrx_per_source = { rate = 1.0, burst = 2, extra = 3 }\n",
        ErrorKind::UnknownKey,
        "limits.rx_per_source.extra",
        3,
    );
    expect(
        "[[interface]]\naddress = \"10.0.0.1/24\"\n[[interface]]\naddress = \"10.0.1.1/24\"\nbogus = true\n",
        ErrorKind::UnknownKey,
        "interface[1].bogus",
        5,
    );
    expect(
        "[access.datagram]\nallow = \"auto\"\nalow = []\n",
        ErrorKind::UnknownKey,
        "access.datagram.alow",
        3,
    );
}

#[test]
fn type_errors_have_line_and_key() {
    let m = expect("[ports]\nname = \"x\"\n", ErrorKind::Type, "ports.name", 2);
    assert!(
        m.starts_with("<config>:2:8: ports.name: invalid type"),
        "{m}"
    );
    expect("[ports]\nname = 70000\n", ErrorKind::Type, "ports.name", 2);
    expect(
        "[node]\n\nnode_type = \"z\"\n",
        ErrorKind::Type,
        "node.node_type",
        3,
    );
    expect(
        "[datagram]\nsource_ip_mismatch = \"ignore\"\n",
        ErrorKind::Type,
        "datagram.source_ip_mismatch",
        2,
    );
    expect(
        "[limits]\nrx_per_source = { rate = 1.0 }\n",
        ErrorKind::Type,
        "limits.rx_per_source",
        2,
    );
    expect(
        "[limits]\nmax_sources = -1\n",
        ErrorKind::Type,
        "limits.max_sources",
        2,
    );
    let m = expect("[api]\nmode = \"0668\"\n", ErrorKind::Type, "api.mode", 2);
    assert!(m.contains("octal"), "{m}");
    expect("[api]\nmode = \"01777\"\n", ErrorKind::Type, "api.mode", 2);
    expect("[api]\ntcp = \"[::1]:80\"\n", ErrorKind::Type, "api.tcp", 2);
    expect(
        "[[interface]]\naddress = \"10.0.0.1/24\"\nbroadcast = \"x\"\n",
        ErrorKind::Type,
        "interface[0].broadcast",
        3,
    );
    expect(
        "[log]\nformat = \"xml\"\n",
        ErrorKind::Type,
        "log.format",
        2,
    );
    expect("node = 5\n", ErrorKind::Type, "node", 1);
}

#[test]
fn cidr_errors_point_at_the_element() {
    let e = err("[access.datagram]\nallow = [\"10.0.0.0/8\", \"10.0.0.0/33\"]\n");
    assert_eq!(e.key(), Some("access.datagram.allow[1]"));
    assert_eq!((e.line(), e.column()), (Some(2), Some(24)));
    assert!(
        e.to_string().contains("prefix length 33 is larger than 32"),
        "{e}"
    );
    expect(
        "[access.name_service]\nallow = [\n  \"10.0.0.0/8\",\n  \"bogus\",\n]\n",
        ErrorKind::Type,
        "access.name_service.allow[1]",
        4,
    );
    expect(
        "[access]\napi = { deny = [\"1.2.3.4/x\"] }\n",
        ErrorKind::Type,
        "access.api.deny[0]",
        2,
    );
    expect(
        "[access.datagram]\nallow = \"everyone\"\n",
        ErrorKind::Type,
        "access.datagram.allow",
        2,
    );
    let m = expect(
        "[[interface]]\naddress = \"10.0.0.1\"\n",
        ErrorKind::Type,
        "interface[0].address",
        2,
    );
    assert!(m.contains("needs a prefix length"), "{m}");
    expect(
        "[[interface]]\naddress = \"10.0.0.1/24\"\n\n[[interface]]\naddress = \"10.0.0.2/40\"\n",
        ErrorKind::Type,
        "interface[1].address",
        5,
    );
}

#[test]
fn value_errors_have_line_and_key() {
    let m = expect(
        "[node]\nname = \"ABCDEFGHIJKLMNOP\"\n",
        ErrorKind::Value,
        "node.name",
        2,
    );
    assert!(m.contains("at most 15"), "{m}");
    expect(
        "[node]\naliases = [\"OK\",\n  \"BAD\\u0001\"]\n",
        ErrorKind::Value,
        "node.aliases[1]",
        3,
    );
    expect(
        "[node]\nworkgroup = \"\"\n",
        ErrorKind::Value,
        "node.workgroup",
        2,
    );
    expect(
        "[node]\nscope = \"a..b\"\n",
        ErrorKind::Value,
        "node.scope",
        2,
    );
    let m = expect(
        "[node]\nnode_type = \"p\"\n",
        ErrorKind::Value,
        "node.node_type",
        2,
    );
    assert!(m.contains("needs a name server"), "{m}");
    Config::from_str("[node]\nnode_type = \"p\"\n[nbns]\nservers = [\"198.51.100.1\"]\n").unwrap();
    expect(
        "[nbns]\nservers = [\"0.0.0.0\"]\n",
        ErrorKind::Value,
        "nbns.servers[0]",
        2,
    );
    expect(
        "[node]\nrole = \"nbdd\"\n",
        ErrorKind::Value,
        "node.role",
        2,
    );
    let r = Config::from_str("[node]\nrole = [\"nbns\", \"nbdd\"]\n").unwrap();
    assert!(r.node.role.nbns && r.node.role.nbdd);
    expect("[node]\nrole = \"wins\"\n", ErrorKind::Type, "node.role", 2);
    expect(
        "[node]\nrole = \"nbdd\"\n[nbdd_server]\npolicy = \"allow_list\"\nnbns = \"198.51.100.1\"\n",
        ErrorKind::Value,
        "nbdd_server.allow",
        3,
    );
    expect(
        "[node]\nrole = \"nbdd\"\n[nbdd_server]\nnbns = \"198.51.100.1\"\nmax_orphan_fragments = 5000\n",
        ErrorKind::Value,
        "nbdd_server.max_orphan_fragments",
        5,
    );
    let c = Config::from_str(
        "[node]\nrole = \"nbdd\"\n[nbdd_server]\nnbns = \"198.51.100.1\"\n\
         max_orphan_fragments = 0\nmax_orphan_bytes = 1024\norphan_timeout_ms = 500\n",
    )
    .unwrap();
    let e = c.nbdd_server.engine(138, "", Vec::new(), 576);
    assert_eq!(e.max_orphan_fragments, 0);
    assert_eq!(e.max_orphan_bytes, 1024);
    assert_eq!(e.orphan_timeout, std::time::Duration::from_millis(500));
    expect(
        "[node]\nnames = [\n { name = \"OK<20>\" },\n { name = \"APP<zz>\" },\n]\n",
        ErrorKind::Value,
        "node.names[1].name",
        4,
    );
    expect(
        "[node]\nnames = [{ name = \"APP<01>.scope\" }]\n",
        ErrorKind::Value,
        "node.names[0].name",
        2,
    );
    expect(
        "[node]\nnames = [{ name = \"*\" }]\n",
        ErrorKind::Value,
        "node.names[0].name",
        2,
    );
    expect(
        "[[interface]]\naddress = \"10.0.0.1/24\"\n[[interface]]\naddress = \"10.0.0.1/16\"\n",
        ErrorKind::Value,
        "interface[1].address",
        4,
    );
    expect(
        "[[interface]]\naddress = \"0.0.0.0/0\"\n",
        ErrorKind::Value,
        "interface[0].address",
        2,
    );
    expect("[ports]\nname = 0\n", ErrorKind::Value, "ports.name", 2);
    expect(
        "[ports]\nname = 5000\ndatagram = 5000\n",
        ErrorKind::Value,
        "ports.datagram",
        3,
    );
    expect(
        "[datagram]\nmax_length = 100\n",
        ErrorKind::Value,
        "datagram.max_length",
        2,
    );
    expect(
        "[datagram]\nfragment_timeout_ms = 0\n",
        ErrorKind::Value,
        "datagram.fragment_timeout_ms",
        2,
    );
    expect(
        "[reassembly]\nmax_total_bytes = 1000\nmax_bytes_per_source = 2000\n",
        ErrorKind::Value,
        "reassembly.max_bytes_per_source",
        3,
    );
    expect(
        "[name_service]\nretry_count = 0\n",
        ErrorKind::Value,
        "name_service.retry_count",
        2,
    );
    let m = expect(
        "[limits]\nrx_per_source = { rate = 0.0, burst = 5 }\n",
        ErrorKind::Value,
        "limits.rx_per_source.rate",
        2,
    );
    assert!(m.contains("positive"), "{m}");
    expect(
        "[limits]\nreplies_per_source = { rate = nan, burst = 5 }\n",
        ErrorKind::Value,
        "limits.replies_per_source.rate",
        2,
    );
    expect(
        "[limits]\nreplies_per_source = { rate = 1, burst = 0 }\n",
        ErrorKind::Value,
        "limits.replies_per_source.burst",
        2,
    );
    expect(
        "[limits]\nmax_sources = 0\n",
        ErrorKind::Value,
        "limits.max_sources",
        2,
    );
    expect(
        "[limits]\nrx_moderation_us = 1001\n",
        ErrorKind::Value,
        "limits.rx_moderation_us",
        2,
    );
    expect(
        "[node]\nname = \"A\"\n[limits]\nmax_names = 1\n",
        ErrorKind::Value,
        "limits.max_names",
        4,
    );
    expect("[api]\nsocket = \"\"\n", ErrorKind::Value, "api.socket", 2);
    expect(
        "[api]\ntcp = \"127.0.0.1:0\"\n",
        ErrorKind::Value,
        "api.tcp",
        2,
    );
    expect(
        "[privileges]\ngroup = \"nbdgm\"\n",
        ErrorKind::Value,
        "privileges.group",
        2,
    );
    expect(
        "[log]\nlevel = \"info,=x=y\"\n",
        ErrorKind::Value,
        "log.level",
        2,
    );
}

#[test]
fn value_error_for_key_not_in_file_points_at_its_table() {
    // limits.max_names is not written; the error points at [limits].
    let e = err("[node]\nname = \"A\"\nserver = true\n[limits]\nmax_names = 1\n");
    assert_eq!(e.key(), Some("limits.max_names"));
    let e = err("[node]\nname = \"A\"\n\n[limits]\nmax_sources = 5\nmax_names = 1\n");
    assert_eq!(e.line(), Some(6));
    let mut c = Config::default();
    c.limits.max_names = 1;
    let e = c.validate().unwrap_err();
    assert_eq!((e.key(), e.line()), (Some("limits.max_names"), None));
    assert!(e.to_string().starts_with("limits.max_names: "), "{e}");
}

#[test]
fn load_names_the_file() {
    let dir = std::env::temp_dir().join(format!("nbdgm-cfg-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(&path, "[node]\n\nname = 5\n").unwrap();
    let e = Config::load(&path).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}:3:8: node.name: invalid type: integer `5`, expected a string",
            path.display()
        )
    );
    let good = dir.join("good.toml");
    std::fs::write(&good, EXAMPLE).unwrap();
    assert_eq!(Config::load(&good).unwrap(), Config::default());
    let summary = check(&good).unwrap();
    assert_eq!(summary.name_port, 137);
    assert!(summary.to_string().contains(": OK\n"));
    let missing = dir.join("missing.toml");
    assert!(matches!(
        Config::load(&missing),
        Err(ConfigError::Io { .. })
    ));
    assert!(matches!(check(&missing), Err(ConfigError::Io { .. })));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn names_to_register() {
    let c = Config::from_str(
        "[node]\nname = \"fred\"\naliases = [\"files\", \"FRED\"]\nworkgroup = \"lab\"\n\
         server = true\nmessenger = true\n\
         names = [{ name = \"APP<2a>\" }, { name = \"TEAM\", group = true }]\n",
    )
    .unwrap();
    let got: Vec<String> = c
        .names()
        .iter()
        .map(|(n, g)| format!("{n}{}", if *g { " group" } else { "" }))
        .collect();
    assert_eq!(
        got,
        [
            "FRED<00>",
            "FRED<03>",
            "FRED<20>",
            "FILES<00>",
            "FILES<03>",
            "FILES<20>",
            "LAB<00> group",
            "APP<2a>",
            "TEAM<00> group",
        ]
    );
    let scoped = Config::from_str("[node]\nname = \"A\"\nscope = \"corp.example\"\n").unwrap();
    let names = scoped.names();
    assert_eq!(names.len(), 2);
    assert!(names.iter().all(|(n, _)| n.scope() == "corp.example"));
    assert_eq!(names[0].0.to_string(), "A<00>.corp.example");
    // A domain master browser or the RAP responder is called as NAME<20>: it holds it.
    for key in ["domain_master", "rap_server"] {
        let c =
            Config::from_str(&format!("[node]\nname = \"A\"\n[browser]\n{key} = true\n")).unwrap();
        let got: Vec<String> = c.names().iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(got, ["A<00>", "A<20>", "WORKGROUP<00>"], "{key}");
    }
}

#[test]
fn overrides_apply_and_validate() {
    let mut c = Config::default();
    c.apply(&Overrides {
        interfaces: vec!["127.0.0.2/8".into(), "192.0.2.5/24".into()],
        name: Some("node1".into()),
        aliases: vec!["alias1".into()],
        workgroup: Some("TESTGROUP".into()),
        scope: Some("lab".into()),
        node_type: Some("B".into()),
        api_socket: Some(PathBuf::from("/tmp/nbdgm.sock")),
        log_format: Some("json".into()),
    })
    .unwrap();
    assert_eq!(c.interfaces.len(), 2);
    assert_eq!(
        c.interfaces[1].broadcast_addr(),
        Ipv4Addr::new(192, 0, 2, 255)
    );
    assert_eq!(c.node_name(), "NODE1");
    assert_eq!(c.node.aliases, ["alias1"]);
    assert_eq!(c.node.scope, "lab");
    assert_eq!(c.api.socket, PathBuf::from("/tmp/nbdgm.sock"));
    assert_eq!(c.log.format, LogFormat::Json);
    // Empty overrides change nothing.
    let before = c.clone();
    c.apply(&Overrides::default()).unwrap();
    assert_eq!(c, before);

    let bad = |o: Overrides, flag: &str, needle: &str| {
        let mut c = Config::default();
        let e = c.apply(&o).unwrap_err();
        assert_eq!(e.key(), Some(flag), "{e}");
        assert!(e.to_string().contains(needle), "{e}");
        assert!(e.to_string().starts_with(flag), "{e}");
    };
    let o = Overrides::default;
    bad(
        Overrides {
            interfaces: vec!["10.0.0.1/33".into()],
            ..o()
        },
        "--interface",
        "larger than 32",
    );
    bad(
        Overrides {
            interfaces: vec!["10.0.0.1".into()],
            ..o()
        },
        "--interface",
        "prefix length",
    );
    bad(
        Overrides {
            interfaces: vec!["10.0.0.1/8".into(), "10.0.0.1/8".into()],
            ..o()
        },
        "--interface",
        "twice",
    );
    bad(
        Overrides {
            name: Some("WAYTOOLONGFORNETBIOS".into()),
            ..o()
        },
        "--name",
        "at most 15",
    );
    bad(
        Overrides {
            aliases: vec!["*X".into()],
            ..o()
        },
        "--alias",
        "'*'",
    );
    bad(
        Overrides {
            workgroup: Some(String::new()),
            ..o()
        },
        "--workgroup",
        "empty",
    );
    bad(
        Overrides {
            scope: Some(".x".into()),
            ..o()
        },
        "--scope",
        "scope",
    );
    bad(
        Overrides {
            node_type: Some("x".into()),
            ..o()
        },
        "--node-type",
        "one of b, p, m, h",
    );
    bad(
        Overrides {
            node_type: Some("p".into()),
            ..o()
        },
        "--node-type",
        "needs a name server",
    );
    // H without a name server is allowed (it acts as a B node).
    Config::default()
        .apply(&Overrides {
            node_type: Some("h".into()),
            ..o()
        })
        .unwrap();
    bad(
        Overrides {
            api_socket: Some(PathBuf::new()),
            ..o()
        },
        "--api-socket",
        "empty",
    );
    bad(
        Overrides {
            log_format: Some("yaml".into()),
            ..o()
        },
        "--log-format",
        "text or json",
    );
}

#[test]
fn summary_and_warnings() {
    let mut c = Config::from_str(&uncommented_example()).unwrap();
    c.api.mode = FileMode(0o666);
    c.access.datagram.allow = AllowList::Any;
    c.api.tcp = Some("192.0.2.1:1380".parse().unwrap());
    c.api.tcp_token_file = None; // a missing file would add a warning
    let s = c.summary(Path::new("x.toml"));
    assert_eq!(s.node_name, "FILESRV");
    assert_eq!(s.interfaces, ["198.51.100.10/24 broadcast 198.51.100.255"]);
    assert!(s.names.contains(&"TEAM<00> group".to_owned()));
    assert_eq!(s.warnings.len(), 3, "{:?}", s.warnings);
    let text = s.to_string();
    assert!(
        text.contains("node FILESRV (b-node), workgroup WORKGROUP"),
        "{text}"
    );
    assert!(text.contains("warning: api.mode 0666"), "{text}");
    assert!(serde_json::to_string(&s).is_ok());
}

#[test]
fn helpers() {
    assert_eq!(line_col("ab\ncdé f", 8), (2, 5));
    assert_eq!(line_col("x", 99), (1, 2));
    assert_eq!(line_col("é\né", 4), (2, 1));
    assert_eq!(line_col("é", 1), (1, 1));
    assert_eq!(
        node_name_from_hostname("build-server-01.example.com\n"),
        "BUILD-SERVER-01"
    );
    assert_eq!(
        node_name_from_hostname("averyveryverylonghostname"),
        "AVERYVERYVERYLO"
    );
    assert_eq!(node_name_from_hostname(""), FALLBACK_NODE_NAME);
    assert_eq!(node_name_from_hostname("héllo"), FALLBACK_NODE_NAME);
    assert_eq!(parse_cidr(" 10.1.2.3 ", false).unwrap(), net("10.1.2.3/32"));
    assert_eq!(parse_cidr("10.1.2.3/0", true).unwrap(), net("10.1.2.3/0"));
    assert!(parse_cidr("10.1.2/8", false).is_err());
    assert!(parse_cidr("10.1.2.3/-1", false).is_err());
    assert!(parse_cidr("10.1.2.3/99999999999", false).is_err());
    assert_eq!("0o750".parse::<FileMode>().unwrap(), FileMode(0o750));
    assert_eq!("600".parse::<FileMode>().unwrap().to_string(), "0600");
    assert!("".parse::<FileMode>().is_err());
    assert!("0x1f".parse::<FileMode>().is_err());
    assert_eq!(locate::guess_key("[a.b]\nx = \n", 10), "a.b.x");
}

#[test]
fn system_interfaces_are_ipv4_non_loopback() {
    // Environment-dependent: only check the shape.
    if let Ok(list) = system_interfaces() {
        for (ip, len, _) in list {
            assert!(!ip.is_loopback());
            assert!(len <= 32);
        }
    }
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,200}") {
        let _ = Config::from_str(&s);
    }

    #[test]
    fn tomlish_text_never_panics(
        lines in proptest::collection::vec(
            prop_oneof![
                Just("[node]".to_owned()),
                Just("[[interface]]".to_owned()),
                Just("[access.datagram]".to_owned()),
                Just("[limits]".to_owned()),
                "[a-z_]{1,12} = (\"[ -~]{0,20}\"|[0-9-]{1,6}|true|\\[\\]|\\{ \\})",
                "(name|address|allow|deny|rate|mode|scope) = \\[?\"[ -~]{0,20}\"\\]?",
            ],
            0..12,
        )
    ) {
        let text = lines.join("\n");
        if let Err(e) = Config::from_str(&text) {
            let _ = e.to_string();
        }
    }
}

/// The typed value errors print the messages the string errors printed.
#[test]
fn value_error_messages() {
    let cases: Vec<(Result<(), ValueError>, &str)> = vec![
        (check_netbios_name(""), "a NetBIOS name cannot be empty"),
        (
            check_netbios_name("ABCDEFGHIJKLMNOPQ"),
            "\"ABCDEFGHIJKLMNOPQ\" is 17 bytes long; NetBIOS names have at most 15",
        ),
        (
            check_netbios_name("A\u{e9}"),
            "\"A\u{e9}\": character '\u{e9}' is not printable ASCII",
        ),
        (
            check_netbios_name("*X"),
            "\"*X\" cannot start with '*' or a space",
        ),
        (
            parse_cidr("10.0.0.1", true).map(drop),
            "\"10.0.0.1\" needs a prefix length, as in 10.0.0.1/24, to know the subnet",
        ),
        (
            parse_cidr("10.0.0.1/33", false).map(drop),
            "\"10.0.0.1/33\": prefix length 33 is larger than 32",
        ),
        (
            parse_cidr("10.0.0/8", false).map(drop),
            "\"10.0.0/8\": \"10.0.0\" is not an IPv4 address",
        ),
        (
            parse_cidr("10.0.0.1/x", false).map(drop),
            "\"10.0.0.1/x\": prefix length \"x\" is not a number",
        ),
        (
            "q".parse::<NodeType>().map(drop),
            "expected one of b, p, m, h",
        ),
        (
            "0x1f".parse::<FileMode>().map(drop),
            "\"0x1f\" is not an octal file mode such as \"0660\"",
        ),
        (
            "1777".parse::<FileMode>().map(drop),
            "\"1777\": only permission bits (up to 0777) are allowed",
        ),
    ];
    for (r, want) in cases {
        assert_eq!(r.unwrap_err().to_string(), want);
    }
}
