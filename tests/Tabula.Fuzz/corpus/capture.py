#!/usr/bin/env python3
"""Captures real kernel and resolver bytes for the fuzz corpus (corpus/README.md). Run as root:

    unshare -n python3 tests/Tabula.Fuzz/corpus/capture.py OUTDIR

inside a throwaway network namespace (nothing outside it is touched). Writes:
  nft_*.bin        nf_tables dump replies (GETTABLE, GETCHAIN, GETRULE, GETSET, GETSETELEM) of a ruleset shaped like
                   NfTablesTests' sample (table inet tabula_test), and the acknowledgements of two batches (BATCH_BEGIN at
                   sequence 100, four messages): one applied, one refused at its fourth message
  ct_*.bin         a ctnetlink IPCTNL_MSG_CT_GET dump of entries made with conntrack -I (IPv4, IPv6, one with SNAT)
  dns_*.bin        queries as dig 9.18 sends them and dnsmasq 2.90's answers, through a recording UDP relay
Every file holds the datagrams of one exchange, concatenated.
"""
import os, socket, struct, subprocess, sys, threading, time

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)

def save(name, data):
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
    print(f"{name}: {len(data)} bytes")

# ---- netlink helpers ------------------------------------------------------------------------------------------------
NETLINK_NETFILTER = 12
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP, NLM_F_CREATE = 1, 4, 0x300, 0x400
NLMSG_ERROR, NLMSG_DONE = 2, 3

def align(n): return (n + 3) & ~3

def attr(t, payload):
    a = struct.pack("=HH", 4 + len(payload), t) + payload
    return a + b"\0" * (align(len(a)) - len(a))

def name(s): return s.encode() + b"\0"

def message(msg_type, flags, seq, family, payload=b"", res_id=0):
    body = struct.pack("=BBH", family, 0, socket.htons(res_id)) + payload
    return struct.pack("=IHHII", 16 + len(body), msg_type, flags, seq, 0) + body

def sock():
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    s.bind((0, 0))
    s.settimeout(5)
    return s

def messages(datagram):
    while len(datagram) >= 16:
        length, typ, flags, seq, pid = struct.unpack_from("=IHHII", datagram)
        yield typ, seq
        datagram = datagram[align(length):]

def dump(request):
    s = sock()
    s.send(request)
    data = b""
    while True:
        d = s.recv(1 << 20)
        data += d
        if any(t in (NLMSG_DONE, NLMSG_ERROR) for t, _ in messages(d)):
            return data

def acks(batch, count):
    s = sock()
    s.setsockopt(270, 11, 1)   # SOL_NETLINK, NETLINK_EXT_ACK: the kernel adds its message text
    s.send(batch)
    data, answered = b"", set()
    while len(answered) < count:
        d = s.recv(1 << 20)
        data += d
        answered |= {seq for t, seq in messages(d) if t == NLMSG_ERROR}
    return data

NFT = 10 << 8
INET, IPV4, IPV6 = 1, 2, 10

# ---- nf_tables --------------------------------------------------------------------------------------------------------
ruleset = """
table inet tabula_test {
  set private4 { type ipv4_addr; flags interval; elements = { 10.0.0.0/8, 192.168.0.0/16 } }
  set private6 { type ipv6_addr; flags interval; elements = { fc00::/7 } }
  chain forward {
    type filter hook forward priority 0; policy drop;
    tcp flags syn tcp option maxseg size set rt mtu comment "mss"
    ip daddr @private4 counter drop comment "isolation"
    ip6 daddr @private6 counter drop comment "isolation"
    ct state established,related counter accept comment "forwarded"
  }
  chain postrouting {
    type nat hook postrouting priority 100;
    oifname "up0" meta nfproto ipv4 snat ip to 203.0.113.7 comment "snat4"
    meta nfproto ipv6 snat ip6 to 2001:db8::7 comment "snat6"
  }
}
"""
subprocess.run(["nft", "-f", "-"], input=ruleset.encode(), check=True)
save("nft_good_tables.bin", dump(message(NFT | 1, NLM_F_REQUEST | NLM_F_DUMP, 1, 0)))
save("nft_good_chains.bin", dump(message(NFT | 4, NLM_F_REQUEST | NLM_F_DUMP, 2, INET)))
save("nft_good_rules.bin", dump(message(NFT | 7, NLM_F_REQUEST | NLM_F_DUMP, 3, INET, attr(1, name("tabula_test")))))
save("nft_good_sets.bin", dump(message(NFT | 10, NLM_F_REQUEST | NLM_F_DUMP, 4, INET, attr(1, name("tabula_test")))))
save("nft_good_set_elements.bin", dump(message(NFT | 13, NLM_F_REQUEST | NLM_F_DUMP, 5, INET,
                                               attr(1, name("tabula_test")) + attr(2, name("private4")))))

def batch(bodies):
    seq = 100
    data = message(16, NLM_F_REQUEST, seq, 0, res_id=10)   # NFNL_MSG_BATCH_BEGIN, res_id NFNL_SUBSYS_NFTABLES
    for typ, family, payload in bodies:
        seq += 1
        data += message(NFT | typ, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE, seq, family, payload)
    return data + message(17, NLM_F_REQUEST, seq + 1, 0, res_id=10)

hook = attr(0x8000 | 4, attr(1, struct.pack(">I", 1)) + attr(2, struct.pack(">I", 0)))   # NF_INET_LOCAL_IN, priority 0
good = [(0, INET, attr(1, name("t2"))),
        (3, INET, attr(1, name("t2")) + attr(3, name("input")) + hook + attr(7, name("filter"))),
        (3, INET, attr(1, name("t2")) + attr(3, name("regular"))),
        (3, INET, attr(1, name("t2")) + attr(3, name("other")))]
save("nft_good_batch_applied.bin", acks(batch(good), 4))
bad = good[:3] + [(3, INET, attr(1, name("no_such_table")) + attr(3, name("x")))]
subprocess.run(["nft", "delete", "table", "inet", "t2"], check=True)
save("nft_good_batch_refused.bin", acks(batch(bad), 4))

# ---- ctnetlink --------------------------------------------------------------------------------------------------------
for args in (["-s", "10.64.0.2", "-d", "192.0.2.1", "-p", "tcp", "--sport", "40000", "--dport", "443", "--state", "ESTABLISHED"],
             ["-s", "fc00:bbbb:bbbb:bb01::2", "-d", "2001:db8::1", "-p", "udp", "--sport", "5353", "--dport", "53"],
             ["-s", "10.64.0.3", "-d", "198.51.100.9", "-p", "icmp", "--icmp-type", "8", "--icmp-code", "0", "--icmp-id", "7",
              "--src-nat", "203.0.113.7"]):
    subprocess.run(["conntrack", "-I", *args, "-t", "120"], check=True, capture_output=True)
save("ct_good_dump.bin", dump(message(1 << 8 | 1, NLM_F_REQUEST | NLM_F_DUMP, 6, 0)))

# ---- DNS --------------------------------------------------------------------------------------------------------------
dnsmasq = subprocess.Popen(["dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts", "--port=5301",
    "--listen-address=127.0.0.1", "--bind-interfaces", "--local=/example/", "--auth-server=ns.example",
    "--auth-zone=example", "--auth-soa=1,hostmaster.example,3600,600,86400",
    "--host-record=www.example,192.0.2.10,2001:db8::10", "--cname=alias.example,www.example",
    "--txt-record=www.example,\"v=tabula\"", "--mx-host=example,mail.example,10"],
    stderr=subprocess.DEVNULL)
time.sleep(1)
exchanges = []
relay = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
relay.bind(("127.0.0.1", 5300))

def serve():
    while True:
        query, client = relay.recvfrom(4096)
        upstream = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        upstream.settimeout(3)
        upstream.sendto(query, ("127.0.0.1", 5301))
        answer = upstream.recv(4096)
        exchanges.append((query, answer))
        relay.sendto(answer, client)

threading.Thread(target=serve, daemon=True).start()
for label, dig in (("a_edns", ["www.example", "A"]), ("aaaa_noedns", ["www.example", "AAAA", "+noedns"]),
                   ("cname", ["alias.example", "A"]), ("txt", ["www.example", "TXT"]), ("mx", ["example", "MX"]),
                   ("nxdomain", ["nothere.example", "A"]), ("nodata", ["www.example", "SRV"])):
    subprocess.run(["dig", "@127.0.0.1", "-p", "5300", "+tries=1", "+time=3", *dig], check=True, capture_output=True)
    query, answer = exchanges[-1]
    save(f"dns_good_query_{label}.bin", query)
    save(f"dns_good_response_{label}.bin", answer)
dnsmasq.terminate()
dnsmasq.wait()
