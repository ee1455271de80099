/**
 * Request/response over the KCP carrier on the virtual clock: 64-byte requests, each answered by the
 * acceptor's application `think` ms after it read the request. The ACK for a lone request waits for
 * the answer (ACK_DELAY_MS), so the requester is woken once per round trip, not twice (once for
 * the ACK, once for the answer): on a busy host every wake-up waits for a CPU. And it rides inside
 * the answer's datagram, not in one of its own sent just before. No round trip may
 * take longer for it, and an answer slower than the delay still gets its request acknowledged in time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FlowEvent, type KcpFlow } from '../../daemon/carrier/kcp/endpoint.js';
import { ACK_DELAY_MS } from '../../daemon/carrier/kcp/flow.js';
import { DialStatus } from '../../daemon/carrier/flow-frames.js';
import { CarrierNode } from './carrier-node.js';
import { World } from './world.js';
import { socketAddrOf } from '../../daemon/packet/flow-key.js';

const ONE_WAY_MS = 10;
const ROUNDS = 50;
const REQUEST = new Uint8Array(64).fill(7);

/** The requester: sends a request once connected and again whenever the whole answer arrived. */
class Client extends CarrierNode {
  flow: KcpFlow | null = null;
  sentAt = 0;
  got = 0;
  readonly rtts: number[] = [];
  /** The distinct instants datagrams arrived here: each is a wake-up of a real node. */
  readonly wakes = new Set<number>();

  /** Datagrams that arrived here: each is sealed, sent, received and opened on its own. */
  datagrams = 0;

  input(d: Uint8Array, now: number): void {
    this.wakes.add(now);
    this.datagrams++;
    super.input(d, now);
  }

  react(now: number): void {
    for (let f = this.carrier.pollEvent(); f; f = this.carrier.pollEvent()) {
      const ev = f.takeEvents();
      if (ev & FlowEvent.Status && f.status === DialStatus.Connected) this.send(now);
      for (let c = this.carrier.read(f); c; c = this.carrier.read(f)) this.got += c.length;
    }
    if (this.got === REQUEST.length) {
      this.got = 0;
      this.rtts.push(now - this.sentAt);
      if (this.rtts.length < ROUNDS) this.send(now);
    }
  }

  private send(now: number): void {
    this.sentAt = now;
    assert.ok(this.carrier.write(this.flow!, REQUEST, now));
  }
}

/** The responder: answers every request `think` ms after reading it. */
class Server extends CarrierNode {
  constructor(otherId: number, private readonly world: World, private readonly think: number) {
    super(otherId, 2, 1000);
  }

  /** Datagrams that arrived here (the requests, and any ACK the client sent on its own). */
  datagrams = 0;

  input(d: Uint8Array, now: number): void {
    this.datagrams++;
    super.input(d, now);
  }

  react(now: number): void {
    for (let f = this.carrier.pollEvent(); f; f = this.carrier.pollEvent()) {
      const ev = f.takeEvents();
      if (ev & FlowEvent.OpenRequest) this.carrier.answer(f, DialStatus.Connected, now);
      for (let c = this.carrier.read(f); c; c = this.carrier.read(f)) {
        const answer = c.slice();
        this.world.schedule(now + this.think, (t) => {
          this.carrier.write(f, answer, t);
          this.react(t);
        });
      }
    }
  }
}

function run(think: number, timerLateMs = 0): { client: Client; server: Server } {
  const world = new World({ seed: 1 });
  const client = new Client(1, 1, 1000);
  const server = new Server(0, world, think);
  client.timerLateMs = server.timerLateMs = timerLateMs;
  world.addNode(client);
  world.addNode(server);
  world.linkBoth(0, 1, { delayMs: ONE_WAY_MS });
  world.schedule(0, (now) => {
    client.flow = client.carrier.open(1, { src: socketAddrOf('10.0.0.1', 1000)!, dst: socketAddrOf('10.0.0.2', 80)!, optimistic: false }, now);
  });
  const r = world.run({ until: () => client.rtts.length === ROUNDS, maxTime: 60_000 });
  assert.ok(r.done, 'the rounds finish');
  return { client, server };
}

test('KCP carrier RR: the answer takes the held ACK along, one wake-up per round trip, none slower', () => {
  const think = 1;
  const { client } = run(think);
  for (const rtt of client.rtts) assert.equal(rtt, 2 * ONE_WAY_MS + think, 'every round trip is the path plus the think time');
  // The STATUS round, then one arrival instant per request: ACK and answer come together.
  assert.equal(client.wakes.size, 1 + ROUNDS);
  assert.equal(client.datagrams, client.wakes.size, 'and in one datagram: the ACK inside the answer (and the STATUS), not a bundle of its own ahead of it');
});

test('KCP carrier RR: an answer slower than ACK_DELAY_MS finds its request already acknowledged', () => {
  const think = ACK_DELAY_MS + 3;
  const { client } = run(think);
  for (const rtt of client.rtts) assert.equal(rtt, 2 * ONE_WAY_MS + think);
  // The ACK goes alone when the delay runs out: two arrivals per round trip, and no resend.
  assert.equal(client.wakes.size, 1 + 2 * ROUNDS);
  assert.equal(client.flow!.kcp.retransSegs, 0);
});

test("KCP carrier RR: a timer that fell due before the pass of a lone request or answer does not send its ACK alone", () => {
  // Late timers (a loaded host): KCP's interval tick is often due when the answer arrives, and the
  // driver runs it before the pass's ACK flush. It used to flush the owed ACK on its own, one datagram
  // ahead of the next request (2.1-2.3 datagrams per round trip on the bench instead of 2.0).
  const think = 1;
  const { client, server } = run(think, 3);
  for (const rtt of client.rtts) assert.equal(rtt, 2 * ONE_WAY_MS + think, 'no round trip waits for a timer');
  assert.equal(client.datagrams, 1 + ROUNDS, 'the server\'s ACKs ride in its answers');
  assert.equal(server.datagrams, 1 + ROUNDS, 'and the client\'s in its requests (the OPEN first)');
  assert.equal(client.flow!.kcp.retransSegs, 0);
});
