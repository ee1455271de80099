/**
 * A kcptun session as one of the simulator's endpoints: datagrams out of its pipeline (each buffer
 * recycled once the world has copied it, as after a sendmmsg), its wake-ups, and a hook for the
 * application on top, which each user writes (test/sim/pipeline.test.ts, bench/kcptun-sim.ts).
 */
import { KcptunSession, type KcptunSessionConfig, type KcptunSessionEvent } from '../../daemon/transport/session/kcptun-session.js';
import type { KcptunSnmp } from '../../daemon/transport/session/snmp.js';
import type { SimEndpoint } from './world.js';

/** kcptun's default KCP tuning (its `normal` mode, window 128/512 at the client, 1024 at the server). */
export function kcptunDefaultTuning(role: 'client' | 'server'): Pick<KcptunSessionConfig,
  'mtu' | 'sndWnd' | 'rcvWnd' | 'nodelay' | 'interval' | 'resend' | 'nc' | 'ackNoDelay'> {
  return {
    mtu: 1350,
    sndWnd: role === 'client' ? 128 : 1024,
    rcvWnd: role === 'client' ? 512 : 1024,
    nodelay: 0,
    interval: 30,
    resend: 2,
    nc: 1,
    ackNoDelay: false,
  };
}

export abstract class KcptunSimNode implements SimEndpoint {
  readonly session: KcptunSession;
  private lastOut: Uint8Array | null = null;

  constructor(cfg: KcptunSessionConfig, readonly snmp: KcptunSnmp, now: number) {
    this.session = new KcptunSession(cfg, snmp, now);
  }

  abstract input(datagram: Uint8Array, now: number): void;

  pollTransmit(): Uint8Array | null {
    // The world copied the last one: its buffer is reused, as after a sendmmsg (byte-exactness in
    // the pipeline test then also checks that no datagram or parity shard is recycled while queued).
    if (this.lastOut !== null) this.session.recycleTransmit(this.lastOut);
    this.lastOut = this.session.pollTransmit();
    return this.lastOut;
  }

  pollTimeout(): number {
    return this.session.pollTimeout();
  }

  handleTimeout(now: number): void {
    this.session.handleTimeout(now);
    this.step(now);
  }

  /** One pass of the application: events, then its streams, until nothing moves (at most 8 rounds). */
  protected step(now: number): void {
    const s = this.session;
    for (let round = 0; round < 8; round++) {
      s.pump(now);
      let any = false;
      for (let e = s.pollEvent(); e !== null; e = s.pollEvent()) {
        any = true;
        this.onEvent(e);
      }
      if (this.moveStreams()) any = true;
      if (!any) break;
    }
    s.pump(now);
  }

  protected abstract onEvent(e: KcptunSessionEvent): void;
  /** Writes what the streams can take and reads what they hold: true when anything moved. */
  protected abstract moveStreams(): boolean;
}
