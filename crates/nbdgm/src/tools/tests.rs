//! Tests of what the network tools share: the daemon-or-standalone rule, the standalone
//! options, and the duration syntax with the old spellings of every timeout.

use super::*;
use clap::Parser;
use std::time::Duration;

fn daemon(standalone: bool, daemon: bool) -> DaemonArgs {
    DaemonArgs {
        api_socket: None,
        standalone,
        daemon,
    }
}

#[test]
fn standalone_flag_wins_over_everything() {
    let d = daemon(true, false);
    assert_eq!(decide(&d, &[], &[]).unwrap(), Choice::Standalone);
    assert_eq!(decide(&d, &["--bind"], &[]).unwrap(), Choice::Standalone);
}

#[test]
fn daemon_flag_is_honoured_or_names_the_option_it_cannot_carry() {
    let d = daemon(false, true);
    assert_eq!(
        decide(&d, &[], &[]).unwrap(),
        Choice::Daemon { required: true }
    );
    assert_eq!(
        decide(&d, &["--interface"], &["--interface"]).unwrap(),
        Choice::Daemon { required: true }
    );
    let e = decide(&d, &["--interface", "--bind"], &["--interface"]).unwrap_err();
    assert!(
        matches!(e, ToolError::DaemonCannot { flag: "--bind" }),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "--bind works only without a daemon: drop --daemon, or drop --bind"
    );
}

#[test]
fn without_either_flag_a_standalone_option_means_standalone() {
    let d = daemon(false, false);
    assert_eq!(
        decide(&d, &[], &["--interface"]).unwrap(),
        Choice::Daemon { required: false }
    );
    assert_eq!(
        decide(&d, &["--interface"], &["--interface"]).unwrap(),
        Choice::Standalone
    );
}

#[test]
fn no_daemon_with_daemon_flag_is_an_error_naming_the_socket() {
    let d = DaemonArgs {
        api_socket: Some("/nonexistent/nbdgm-test.sock".into()),
        standalone: false,
        daemon: true,
    };
    let e = d.choose(&[], &[]).err().expect("no daemon there");
    assert!(
        e.to_string()
            .starts_with("no daemon at /nonexistent/nbdgm-test.sock"),
        "{e}"
    );
    let d = DaemonArgs { daemon: false, ..d };
    assert!(matches!(d.connect(), Ok(Via::Standalone)));
}

#[derive(Parser, Debug)]
struct Standalone {
    #[command(flatten)]
    s: StandaloneArgs,
}

#[test]
fn standalone_options_given_and_defaults() {
    let none = Standalone::try_parse_from(["t"]).unwrap().s;
    assert!(none.given().is_empty());
    assert_eq!(none.bind(), Ipv4Addr::UNSPECIFIED);
    assert_eq!((none.port(), none.name_port()), (138, 137));
    // A port equal to its default changes nothing: not "given".
    let same = Standalone::try_parse_from(["t", "--port", "138", "--name-port", "137"])
        .unwrap()
        .s;
    assert!(same.given().is_empty());
    let all = Standalone::try_parse_from([
        "t",
        "--interface",
        "127.0.0.1/8",
        "--bind",
        "127.0.0.2",
        "--port",
        "1138",
        "--name-port",
        "1137",
    ])
    .unwrap()
    .s;
    assert_eq!(
        all.given(),
        ["--interface", "--bind", "--port", "--name-port"]
    );
    assert_eq!(all.bind(), Ipv4Addr::new(127, 0, 0, 2));
    let c = all.node_config().unwrap();
    assert_eq!((c.datagram_port, c.name_port), (1138, 1137));
    assert_eq!(c.interface.addr, Ipv4Addr::LOCALHOST);
    assert!(!c.node_status && !c.datagram_error_on_unknown);
    // One type for --bind everywhere: an address, checked by the parser.
    assert!(Standalone::try_parse_from(["t", "--bind", "localhost"]).is_err());
    let bad = Standalone::try_parse_from(["t", "--interface", "10.0.0.1/33"])
        .unwrap()
        .s;
    assert!(bad
        .interface()
        .unwrap_err()
        .to_string()
        .starts_with("--interface 10.0.0.1/33"));
}

#[test]
fn durations_take_a_unit() {
    assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
    assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
    assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
    assert_eq!(parse_duration("1h 30m").unwrap(), Duration::from_secs(5400));
    for bad in ["3", "-1s", "soon", ""] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
    assert_eq!(parse_seconds("2.5").unwrap(), Duration::from_millis(2500));
    assert!(parse_seconds("-1").is_err());
    assert!(parse_seconds("inf").is_err());
    assert_eq!(parse_millis("750").unwrap(), Duration::from_millis(750));
    assert!(parse_millis("1.5").is_err());
    assert!(at_most(
        "--timeout",
        Duration::from_secs(7200),
        Duration::from_secs(3600)
    )
    .is_err());
}

/// Parse `args` as the named subcommand's arguments.
fn parse<T: clap::Args>(args: &[&str]) -> Result<T, clap::Error> {
    #[derive(Parser)]
    struct Wrap<A: clap::Args> {
        #[command(flatten)]
        a: A,
    }
    Wrap::<T>::try_parse_from(std::iter::once("t").chain(args.iter().copied())).map(|w| w.a)
}

#[test]
fn every_timeout_has_the_new_spelling_and_its_old_one_with_its_old_unit() {
    let ms = Duration::from_millis;
    // send / message send: --timeout-ms.
    let s: send::SendArgs = parse(&["--to", "A<00>", "--text", "x"]).unwrap();
    assert_eq!(s.timeout.get(), ms(5000));
    let s: send::SendArgs = parse(&["--to", "A<00>", "--text", "x", "--timeout", "1.5s"]).unwrap();
    assert_eq!(s.timeout.get(), ms(1500));
    let s: send::SendArgs =
        parse(&["--to", "A<00>", "--text", "x", "--timeout-ms", "500"]).unwrap();
    assert_eq!(s.timeout.get(), ms(500));
    assert!(parse::<send::SendArgs>(&[
        "--to",
        "A<00>",
        "--text",
        "x",
        "--timeout",
        "1s",
        "--timeout-ms",
        "5"
    ])
    .is_err());
    let m: message::SendArgs = parse(&["FRED", "hi", "--timeout-ms", "2000"]).unwrap();
    assert_eq!(m.timeout.get(), ms(2000));
    let m: message::SendArgs = parse(&["FRED", "hi", "--timeout", "2m"]).unwrap();
    assert_eq!(m.timeout.get(), ms(120_000));
    // listen / message listen: --timeout-s.
    let l: listen::ListenArgs = parse(&[]).unwrap();
    assert_eq!(l.stop.timeout(), None);
    let l: listen::ListenArgs = parse(&["--timeout-s", "2.5"]).unwrap();
    assert_eq!(l.stop.timeout(), Some(ms(2500)));
    let l: listen::ListenArgs = parse(&["--timeout", "250ms"]).unwrap();
    assert_eq!(l.stop.timeout(), Some(ms(250)));
    let l: message::ListenArgs = parse(&["--timeout-s", "15"]).unwrap();
    assert_eq!(l.stop.timeout(), Some(ms(15_000)));
    let l: message::ListenArgs = parse(&["--timeout", "15s"]).unwrap();
    assert_eq!(l.stop.timeout(), Some(ms(15_000)));
    // lookup / status: --wait-ms, per try.
    let l: lookup::LookupArgs = parse(&["FRED", "--wait-ms", "200"]).unwrap();
    assert_eq!(l.timeout.get(), ms(200));
    let l: lookup::LookupArgs = parse(&["FRED", "--timeout", "0.2s"]).unwrap();
    assert_eq!(l.timeout.get(), ms(200));
    let s: status::StatusArgs = parse(&["192.0.2.1", "--wait-ms", "300"]).unwrap();
    assert_eq!(s.timeout.get(), ms(300));
    let s: status::StatusArgs = parse(&["192.0.2.1", "--timeout", "300ms"]).unwrap();
    assert_eq!(s.timeout.get(), ms(300));
    let l: lookup::LookupArgs = parse(&["FRED"]).unwrap();
    assert_eq!(l.timeout.get(), ms(750));
    let s: status::StatusArgs = parse(&["192.0.2.1"]).unwrap();
    assert_eq!(s.timeout.get(), ms(1000));
    let b: browse::BrowseArgs = parse(&[]).unwrap();
    assert_eq!(b.timeout.get(), ms(15_000));
    let d: dcping::DcPingArgs = parse(&["DOM"]).unwrap();
    assert_eq!(d.timeout.get(), ms(3000));
    // browse / dc-ping: --wait, in seconds.
    let b: browse::BrowseArgs = parse(&["--wait", "3"]).unwrap();
    assert_eq!(b.timeout.get(), ms(3000));
    let b: browse::BrowseArgs = parse(&["--timeout", "3s"]).unwrap();
    assert_eq!(b.timeout.get(), ms(3000));
    let d: dcping::DcPingArgs = parse(&["DOM", "--wait", "0.5"]).unwrap();
    assert_eq!(d.timeout.get(), ms(500));
    let d: dcping::DcPingArgs = parse(&["DOM", "--timeout", "500ms"]).unwrap();
    assert_eq!(d.timeout.get(), ms(500));
    assert!(parse::<dcping::DcPingArgs>(&["DOM", "--wait", "1", "--timeout", "1s"]).is_err());
    // A bare number is not a --timeout: the unit is not guessed.
    assert!(parse::<browse::BrowseArgs>(&["--timeout", "3"]).is_err());
}

#[test]
fn old_spellings_are_hidden_from_help() {
    use clap::CommandFactory;
    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        a: send::SendArgs,
    }
    let help = Wrap::command().render_long_help().to_string();
    assert!(help.contains("--timeout <DURATION>"), "{help}");
    assert!(!help.contains("--timeout-ms"), "{help}");
}
