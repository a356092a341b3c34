//! The detection engine: parses each packet once by port (137 NBNS, 138 datagram
//! service, 5355 LLMNR, 5353 mDNS), hands it to the detectors, then applies the
//! configuration (disabled signatures, severity overrides) and repeat suppression.

use crate::alert::{Alert, Suppressor};
use crate::config::WatchConfig;
use crate::packet::Packet;
use crate::state::NameTable;
use crate::{browser, dns, honey, hygiene, inventory, poison, signature};
use nbdgm_wire::datagram::Datagram;
use nbdgm_wire::nbns;
use serde_json::{json, Value};

/// Well-known ports the engine understands.
pub const PORTS: [u16; 4] = [137, 138, 5353, 5355];

/// Packet and alert counters.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Counters {
    /// Packets given to [`Engine::process`].
    pub packets: u64,
    /// Of those, NBNS / datagram / LLMNR / mDNS.
    pub nbns: u64,
    /// Datagram service packets.
    pub datagram: u64,
    /// LLMNR packets.
    pub llmnr: u64,
    /// mDNS packets.
    pub mdns: u64,
    /// Packets on none of the ports.
    pub other: u64,
    /// Packets that did not parse.
    pub malformed: u64,
    /// Alerts emitted.
    pub alerts: u64,
    /// Alerts of disabled signatures.
    pub disabled: u64,
}

/// The engine. Feed packets in capture order.
#[derive(Debug)]
pub struct Engine {
    pub(crate) cfg: WatchConfig,
    pub(crate) names: NameTable,
    pub(crate) poison: poison::PoisonState,
    pub(crate) browser: browser::BrowserState,
    pub(crate) hygiene: hygiene::HygieneState,
    pub(crate) inventory: inventory::Inventory,
    pub(crate) honey: honey::HoneyBook,
    suppress: Suppressor,
    disabled: Vec<u32>,
    severity: Vec<(u32, crate::Severity)>,
    counters: Counters,
    raw: Vec<Alert>,
}

impl Engine {
    /// An engine with these settings (see [`WatchConfig::validate`]).
    pub fn new(cfg: WatchConfig) -> Engine {
        let disabled = cfg
            .disable
            .iter()
            .filter_map(|k| signature::find(k).map(|s| s.id))
            .collect();
        let severity = cfg
            .severity
            .iter()
            .filter_map(|(k, v)| signature::find(k).map(|s| (s.id, *v)))
            .collect();
        Engine {
            names: NameTable::new(cfg.max_names),
            poison: poison::PoisonState::new(&cfg),
            browser: browser::BrowserState::new(&cfg),
            hygiene: hygiene::HygieneState::new(&cfg),
            inventory: inventory::Inventory::new(&cfg),
            honey: honey::HoneyBook::new(&cfg),
            suppress: Suppressor::new(i64::from(cfg.repeat_window_secs), cfg.max_alert_keys),
            disabled,
            severity,
            counters: Counters::default(),
            raw: Vec::new(),
            cfg,
        }
    }

    /// The settings.
    pub fn config(&self) -> &WatchConfig {
        &self.cfg
    }

    /// Runs every detector over `p` and appends the alerts to `out`.
    pub fn process(&mut self, p: &Packet<'_>, out: &mut Vec<Alert>) {
        self.counters.packets += 1;
        let mut raw = std::mem::take(&mut self.raw);
        raw.clear();
        match service_port(p) {
            Some(137) => {
                self.counters.nbns += 1;
                match nbns::Packet::parse(p.payload) {
                    Ok(pkt) => {
                        poison::on_nbns(self, p, &pkt, &mut raw);
                        hygiene::on_nbns(self, p, &pkt, &mut raw);
                        inventory::on_nbns(self, p, &pkt);
                        // Learn ownership last, so the detectors see the state before.
                        poison::learn_nbns(self, p, &pkt);
                    }
                    Err(e) => self.malformed(p, "nbns", &e.to_string(), &mut raw),
                }
            }
            Some(138) => {
                self.counters.datagram += 1;
                let mut warnings = Vec::new();
                match Datagram::parse_with_warnings(p.payload, &mut warnings) {
                    Ok(d) => {
                        browser::on_datagram(self, p, &d, &mut raw);
                        hygiene::on_datagram(self, p, &d, &mut raw);
                        inventory::on_datagram(self, p, &d);
                    }
                    Err(e) => self.malformed(p, "datagram", &e.to_string(), &mut raw),
                }
            }
            Some(port @ (5353 | 5355)) => {
                let proto = if port == 5353 {
                    self.counters.mdns += 1;
                    crate::state::Proto::Mdns
                } else {
                    self.counters.llmnr += 1;
                    crate::state::Proto::Llmnr
                };
                match dns::Message::parse(p.payload) {
                    Ok(m) => {
                        poison::on_dns(self, p, proto, &m, &mut raw);
                        inventory::on_dns(self, p, proto, &m);
                        poison::learn_dns(self, p, proto, &m);
                    }
                    Err(e) => self.malformed(p, proto.as_str(), &e, &mut raw),
                }
            }
            _ => self.counters.other += 1,
        }
        for mut a in raw.drain(..) {
            if self.disabled.contains(&a.signature.id) {
                self.counters.disabled += 1;
                continue;
            }
            if let Some((_, s)) = self.severity.iter().find(|(id, _)| *id == a.signature.id) {
                a.severity = *s;
            }
            // The suspect's Ethernet address, when the suspect sent this packet.
            if let (Some(mac), true) = (p.src_mac, a.src == p.src) {
                if !a.evidence.contains_key("src_mac") {
                    let mac = crate::packet::mac_string(&mac);
                    a.evidence.insert("src_mac".into(), Value::from(mac));
                }
            }
            if self.suppress.admit(&mut a) {
                self.counters.alerts += 1;
                out.push(a);
            }
        }
        self.raw = raw;
    }

    fn malformed(&mut self, p: &Packet<'_>, protocol: &str, reason: &str, out: &mut Vec<Alert>) {
        self.counters.malformed += 1;
        out.push(
            Alert::new(&signature::MALFORMED, p)
                .with("protocol", protocol)
                .with("reason", reason)
                .with("length", p.payload.len())
                .key(protocol),
        );
    }

    /// Counters so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Table sizes, caps and evictions, and the counters, as JSON.
    pub fn stats(&self) -> Value {
        json!({
            "counters": self.counters,
            "tables": {
                "names": {"len": self.names.names.len(), "max": self.names.names.max(), "evicted": self.names.names.evicted},
                "alert_keys": {"len": self.suppress.len(), "evicted": self.suppress.evicted(), "suppressed": self.suppress.suppressed},
                "poison": self.poison.stats(),
                "browser": self.browser.stats(),
                "hygiene": self.hygiene.stats(),
                "inventory": self.inventory.stats(),
                "honey": self.honey.stats(),
            }
        })
    }

    /// The host inventory (see [`inventory`]).
    pub fn inventory(&self) -> Value {
        self.inventory.to_json(&self.names)
    }

    /// "Who still uses port 138 and for what", for humans (escaped).
    pub fn inventory_summary_text(&self) -> String {
        self.inventory.summary_text()
    }

    /// The honey-query book, to register queries sent (see [`honey`]).
    pub fn honey_mut(&mut self) -> &mut honey::HoneyBook {
        &mut self.honey
    }

    /// Names learned so far (canonical form, NBNS first), at most `max`: the seeds of
    /// plausible honey names.
    pub fn learned_names(&self, max: usize) -> Vec<String> {
        let mut v: Vec<String> = self
            .names
            .names
            .iter()
            .map(|((_, n), _, _)| n.clone())
            .take(max)
            .collect();
        v.sort();
        v
    }
}

/// The service port of `p` (destination first), if it is one of [`PORTS`].
pub fn service_port(p: &Packet<'_>) -> Option<u16> {
    let (s, d) = (p.src.port(), p.dst.port());
    PORTS
        .iter()
        .copied()
        .find(|&x| x == d)
        .or_else(|| PORTS.iter().copied().find(|&x| x == s))
}
