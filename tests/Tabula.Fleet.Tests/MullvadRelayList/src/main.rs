// Reads a relay list on stdin and deserializes it into the shapes the Mullvad app's relay list client expects
// (mullvad-api/src/relay_list.rs): a missing field, a wrong type, an address that does not parse or a port out
// of u16 fails here as it fails in the app. Prints a summary line on success; exits 1 with serde's error otherwise.
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::Read;
use std::net::{Ipv4Addr, Ipv6Addr};

#[derive(Deserialize)]
#[allow(dead_code)]
struct ServerRelayList {
    locations: BTreeMap<String, Location>,
    wireguard: Wireguard,
    bridge: Bridges,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Location {
    city: String,
    country: String,
    latitude: f64,
    longitude: f64,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Relay {
    hostname: String,
    active: bool,
    owned: bool,
    location: String,
    provider: String,
    ipv4_addr_in: Ipv4Addr,
    ipv6_addr_in: Option<Ipv6Addr>,
    weight: u64,
    include_in_country: bool,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Wireguard {
    port_ranges: Vec<(u16, u16)>,
    ipv4_gateway: Ipv4Addr,
    ipv6_gateway: Ipv6Addr,
    #[serde(default)]
    shadowsocks_port_ranges: Vec<(u16, u16)>,
    relays: Vec<WireGuardRelay>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct WireGuardRelay {
    #[serde(flatten)]
    relay: Relay,
    // The app parses this as a 32-byte key from base64; length is checked below.
    public_key: String,
    #[serde(default)]
    daita: bool,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct ShadowsocksEndpointData {
    port: u16,
    cipher: String,
    protocol: String,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Bridges {
    shadowsocks: Vec<ShadowsocksEndpointData>,
    relays: Vec<Relay>,
}

fn main() {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input).expect("stdin");
    let list: ServerRelayList = match serde_json::from_str(&input) {
        Ok(list) => list,
        Err(e) => {
            eprintln!("relay list rejected: {}", e);
            std::process::exit(1);
        }
    };
    for r in &list.wireguard.relays {
        let mut parts = r.relay.location.split('-');
        let known = match (parts.next(), parts.next()) {
            (Some(_), Some(_)) => list.locations.contains_key(&r.relay.location),
            _ => false,
        };
        if !known || r.public_key.len() != 44 {
            eprintln!("relay list rejected: relay {} has an unknown location or a bad key", r.relay.hostname);
            std::process::exit(1);
        }
    }
    println!("ok locations={} wireguard_relays={} bridges={}", list.locations.len(), list.wireguard.relays.len(), list.bridge.relays.len());
}
