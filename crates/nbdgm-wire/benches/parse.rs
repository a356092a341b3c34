//! Library parse throughput (a benchmark, never a test). Run:
//! `cargo bench -p nbdgm-wire --bench parse`. Figures go to docs/BENCHMARKS.md.

// Benchmark: a failed setup aborts the run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use nbdgm_wire::browser::BrowserFrame;
use nbdgm_wire::datagram::{Datagram, MsgType, NodeType};
use nbdgm_wire::mailslot::{MailslotWrite, BROWSE};
use nbdgm_wire::name::Name;
use nbdgm_wire::nbns;
use std::net::Ipv4Addr;

fn host_announcement() -> Vec<u8> {
    let frame = BrowserFrame::HostAnnouncement(nbdgm_wire::browser::Announcement {
        periodicity_ms: 720_000,
        server_name: "FRED".into(),
        os_major: 6,
        os_minor: 1,
        server_type: 0x0001_1003,
        comment: "file server".into(),
        ..Default::default()
    });
    let smb = MailslotWrite::new(BROWSE, frame.to_bytes().unwrap());
    Datagram::data(
        MsgType::DirectGroup,
        NodeType::B,
        0x1234,
        (Ipv4Addr::new(192, 168, 1, 10), 138),
        Name::new("FRED", 0).unwrap(),
        Name::new("WORKGROUP", 0x1d).unwrap(),
        smb.to_bytes().unwrap(),
    )
    .to_bytes()
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let bytes = host_announcement();
    let mut g = c.benchmark_group("host_announcement");
    g.throughput(Throughput::Elements(1));
    g.bench_function("datagram+mailslot+browser", |b| {
        b.iter(|| {
            let d = Datagram::parse(black_box(&bytes)).unwrap();
            let w = MailslotWrite::parse(d.user_data().unwrap()).unwrap();
            black_box(BrowserFrame::parse(&w.data).unwrap());
        })
    });
    g.bench_function("zero-copy datagram+mailslot+browser", |b| {
        let mut warnings = Vec::new();
        b.iter(|| {
            let d = Datagram::parse_ref(black_box(&bytes), &mut warnings).unwrap();
            let w = MailslotWrite::parse_ref(d.user_data().unwrap()).unwrap();
            black_box(BrowserFrame::parse(w.data).unwrap());
        })
    });
    g.bench_function("datagram only", |b| {
        b.iter(|| black_box(Datagram::parse(black_box(&bytes)).unwrap()))
    });
    g.bench_function("emit", |b| {
        let d = Datagram::parse(&bytes).unwrap();
        let mut out = Vec::with_capacity(256);
        b.iter(|| {
            out.clear();
            black_box(&d).emit(&mut out).unwrap();
            black_box(&out);
        })
    });
    g.finish();

    let q = nbns::Packet {
        id: 0x8001,
        flags: 0x0110,
        questions: vec![nbns::Question {
            name: Name::new("WORKGROUP", 0x1d).unwrap(),
            qtype: nbns::TYPE_NB,
            qclass: nbns::CLASS_IN,
        }],
        answers: vec![],
        authority: vec![],
        additional: vec![],
        trailing: vec![],
    }
    .to_bytes()
    .unwrap();
    let mut g = c.benchmark_group("nbns");
    g.throughput(Throughput::Elements(1));
    g.bench_function("name query request", |b| {
        b.iter(|| black_box(nbns::Packet::parse(black_box(&q)).unwrap()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
