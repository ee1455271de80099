/**
 * kcptube relay mode: client → relay → server. Tunnels from clients are accepted with the
 * [listener] settings; each gets its own tunnel towards the server with the [forwarder] settings
 * (own KCP mode, cipher, FEC, port range), and connections are spliced record by record. The
 * relay answers the client's HELLO with its own range and sends its own HELLO onwards.
 * Back-pressure crosses the relay: when one side's KCP window is full, the other side stops
 * reading, so its peer's window closes in turn.
 */
import type { KcptubeSide } from './config.js';
import { Acceptor } from './acceptor.js';
import { TunnelDialer, resolveDestination } from './dialer.js';
import type { TubeContext } from './log.js';
import type { TubeEvent } from './session.js';
import type { Conn, Tunnel } from './tunnel.js';

/** One direction of a spliced connection: what arrives on `from` is written to `to`. */
class SpliceConn implements Conn {
  other: SpliceConn | null = null;
  private blocked = false;

  constructor(
    private readonly from: Tunnel,
    private readonly to: Tunnel,
    private readonly id: number,
  ) {
    from.conns.set(id, this);
  }

  data(d: Uint8Array): void {
    const s = this.to.session;
    s.write(this.id, d);
    if (!s.canWrite() && !this.blocked) {
      this.blocked = true;
      this.from.sinkFull(true);
    }
    this.to.kick();
  }

  fin(): void {
    this.to.session.fin(this.id);
    this.to.kick();
  }

  reset(): void {
    this.to.session.reset(this.id);
    this.to.kick();
    this.drop();
    this.other?.drop();
  }

  /** `from`'s window opened: our partner may read from its side again. */
  writable(): void {
    this.other?.unblock();
  }

  private unblock(): void {
    if (!this.blocked) return;
    this.blocked = false;
    this.from.sinkFull(false);
  }

  tunnelEnded(): void {
    this.drop();
  }

  private drop(): void {
    this.unblock();
    this.from.conns.delete(this.id);
  }
}

export class KcptubeRelay {
  private readonly acceptor: Acceptor;
  private dialer: TunnelDialer | null = null;
  /** Listener tunnel id → its forwarder tunnel. */
  private readonly pairs = new Map<number, Tunnel>();

  constructor(
    listener: KcptubeSide,
    private readonly forwarder: KcptubeSide,
    private readonly ctx: TubeContext,
  ) {
    this.acceptor = new Acceptor(listener, ctx, {
      onTunnel: (t) => this.onTunnel(t),
      onEvent: (t, e) => this.onEvent(t, e),
      onEnded: (t) => {
        this.pairs.get(t.sid)?.close();
        this.pairs.delete(t.sid);
      },
    });
  }

  async start(): Promise<void> {
    const dest = await resolveDestination(this.forwarder);
    this.dialer = new TunnelDialer(this.forwarder, dest, this.ctx);
    await this.acceptor.start();
    this.ctx.log.line(`relay up, forwarding to ${dest.address} ports ${this.forwarder.destinationPorts!.start}-${this.forwarder.destinationPorts!.end}`);
  }

  private onTunnel(inbound: Tunnel): void {
    const outbound = this.dialer!.dial({
      onEnded: () => {
        // The server side ended: end the client side too (unless it already has).
        if (this.pairs.get(inbound.sid) === outbound) {
          this.pairs.delete(inbound.sid);
          inbound.close();
        }
      },
    });
    this.pairs.set(inbound.sid, outbound);
  }

  private onEvent(inbound: Tunnel, e: TubeEvent): void {
    const outbound = this.pairs.get(inbound.sid);
    if (e.type !== 'open' || outbound === undefined) return;
    outbound.session.open(e.conn, e.protocol);
    const there = new SpliceConn(inbound, outbound, e.conn);
    const back = new SpliceConn(outbound, inbound, e.conn);
    there.other = back;
    back.other = there;
    outbound.kick();
  }

  stop(): void {
    this.acceptor.stop();
    this.dialer?.closeAll();
  }
}
