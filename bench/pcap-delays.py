#!/usr/bin/env python3
"""Where the inner TCP's packets wait, from bench/plain-diag.ts's captures (--pcap DIR).

   python3 bench/pcap-delays.py DIR IMPL      (IMPL: tstier or easytier)

Reads DIR/IMPL-a.pcap and -b.pcap (the inner TCP on each node's TUN) and -ra/-rb.pcap (the peer
datagrams where they enter and leave the relay; all four share the host's clock) and prints:
 - the bulk flow's segments sent at A and arrived at B, so drops inside the nodes show beside the relay's;
 - one-way delay of each data segment TUN(A) -> TUN(B) and of each ACK back, matched by sequence and
   ACK numbers: the relay's fixed delay plus whatever the nodes and the relay queued;
 - the relay's own delay, datagrams matched by their first 64 payload bytes (ciphertext is unique);
 - arrivals at B out of order that were never retransmitted (reordering on the way), and dup ACKs at A.
Headers only; no third-party modules.
"""
import struct
import sys
from collections import Counter, defaultdict

# The relay's ends (plain-diag's RELAYED addresses): the peer datagrams' sources.
RELAY_A, RELAY_B = bytes([10, 131, 0, 1]), bytes([10, 131, 0, 2])


def packets(path):
    """(time, src, dst, ip proto, total length, L4 bytes) of each IPv4 packet in a raw-IP pcap."""
    out = []
    with open(path, 'rb') as f:
        head = f.read(24)
        nanos = struct.unpack('<I', head[:4])[0] == 0xa1b23c4d
        while True:
            rec = f.read(16)
            if len(rec) < 16:
                return out
            sec, frac, incl, _ = struct.unpack('<IIII', rec)
            d = f.read(incl)
            if not d or d[0] >> 4 != 4:
                continue
            ihl = (d[0] & 15) * 4
            out.append((sec + frac / (1e9 if nanos else 1e6), d[12:16], d[16:20], d[9],
                        struct.unpack('>H', d[2:4])[0], d[ihl:]))


def tcp(p):
    """(sport, dport, seq, ack, payload length, SACK blocks) of a TCP packet."""
    t = p[5]
    sport, dport, seq, ack = struct.unpack('>HHII', t[:12])
    off = (t[12] >> 4) * 4
    sacks, opts, i = [], t[20:off], 0
    while i < len(opts) and opts[i] != 0:
        if opts[i] == 1:
            i += 1
            continue
        if i + 1 >= len(opts):
            break
        length = max(opts[i + 1], 2)
        if opts[i] == 5:
            sacks += [opts[j:j + 8] for j in range(i + 2, i + length - 7, 8)]
        i += length
    return sport, dport, seq, ack, p[4] - 20 - off, tuple(sacks)


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float('nan')


def line(name, ms):
    if not ms:
        return f'  {name:30s} none'
    return (f'  {name:30s} n={len(ms):6d} p50 {pct(ms, .5):7.2f} p90 {pct(ms, .9):7.2f} '
            f'p99 {pct(ms, .99):7.2f} max {max(ms):7.2f} ms')


def matched(sent, arrived, key):
    """Delay (ms) of each arrival after the latest earlier send with the same key."""
    at = defaultdict(list)
    for p in sent:
        at[key(p)].append(p[0])
    out = []
    for p in arrived:
        earlier = [t for t in at.get(key(p), ()) if t <= p[0]]
        if earlier:
            out.append((p[0] - max(earlier)) * 1000)
    return out, at


def main(d, impl):
    a, b = packets(f'{d}/{impl}-a.pcap'), packets(f'{d}/{impl}-b.pcap')
    ra, rb = packets(f'{d}/{impl}-ra.pcap'), packets(f'{d}/{impl}-rb.pcap')
    ta = [(p, tcp(p)) for p in a]
    tb = [(p, tcp(p)) for p in b]
    bytes_by_flow = Counter()
    for _, h in ta:
        bytes_by_flow[(h[0], h[1])] += h[4]
    (sport, dport), _ = bytes_by_flow.most_common(1)[0]
    data_a = [(p[0], h) for p, h in ta if (h[0], h[1]) == (sport, dport) and h[4] > 0]
    data_b = [(p[0], h) for p, h in tb if (h[0], h[1]) == (sport, dport) and h[4] > 0]
    acks_b = [(p[0], h) for p, h in tb if (h[0], h[1]) == (dport, sport)]
    acks_a = [(p[0], h) for p, h in ta if (h[0], h[1]) == (dport, sport)]
    seg = lambda x: (x[1][2], x[1][4])
    owd, sends = matched(data_a, data_b, seg)
    ackd, _ = matched(acks_b, acks_a, lambda x: (x[1][3], x[1][5]))
    retrans = sum(len(v) - 1 for v in sends.values())
    print(f'{impl}: bulk flow {sport}->{dport}: {len(data_a)} segments sent at A ({retrans} resends), '
          f'{len(data_b)} arrived at B ({1 - len(data_b) / len(data_a):.1%} lost on the way)')
    print(line('data TUN(A) -> TUN(B)', owd))
    print(line('ACKs TUN(B) -> TUN(A)', ackd))
    key = lambda p: p[5][8:72]
    for name, src, dst, sender in (('relay a->b', ra, rb, RELAY_A), ('relay b->a', rb, ra, RELAY_B)):
        ins, outs = [p for p in src if p[1] == sender], [p for p in dst if p[1] == sender]
        print(line(f'{name} ({len(ins)} in, {len(outs)} out)', matched(ins, outs, key)[0]))
    high, reordered = 0, 0
    for _, h in data_b:
        if h[2] < high and len(sends[(h[2], h[4])]) == 1:
            reordered += 1
        high = max(high, (h[2] + h[4]) & 0xffffffff)
    dup, last = 0, None
    for _, h in acks_a:
        dup += h[3] == last
        last = h[3]
    print(f'  reordered arrivals at B (never resent): {reordered}; duplicate ACKs at A: {dup} of {len(acks_a)}')


if __name__ == '__main__':
    if len(sys.argv) != 3:
        sys.exit('usage: pcap-delays.py DIR tstier|easytier')
    main(sys.argv[1], sys.argv[2])
