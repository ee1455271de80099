/**
 * One SOCKS5 client connection's handshake as a sans-IO state machine (RFC 1928; RFC 1929
 * username/password when credentials are configured): feed it the client's bytes with input(),
 * send what pollTransmit() returns, act on pollEvent(). After a `request` event the owner decides
 * (dial, associate) and calls reply(); a success leaves the connection to the owner, who takes any
 * bytes the client sent early with takeEarlyData().
 *
 * Bad input always gets the most specific answer SOCKS has, then the connection ends:
 *  - a greeting that is not SOCKS5, or offers no method we accept: 05 FF (no acceptable methods);
 *  - wrong credentials or a bad auth message: 01 01;
 *  - a request that is not version 5: general failure; BIND or an unknown command: command not
 *    supported; an unknown address type: address type not supported; an empty domain name: general
 *    failure.
 * Memory is bounded: the handshake's messages have a maximum length by construction (no more than
 * HANDSHAKE_MAX bytes are ever held), and early data past EARLY_DATA_MAX ends the connection.
 */
import { timingSafeEqual } from 'node:crypto';
import { Atyp, encodeReply, readAddress, Rep, SOCKS_VERSION, type SocksAddr } from './wire.js';

export const enum Method {
  NoAuth = 0,
  UserPass = 2,
  NoAcceptable = 0xff,
}

const AUTH_VERSION = 1;
export const enum Cmd {
  Connect = 1,
  Bind = 2,
  UdpAssociate = 3,
}

/** Greeting (2 + 255) + auth (3 + 255 + 255) + request (6 + 256): no valid handshake holds more. */
export const HANDSHAKE_MAX = 1030;
/** Bytes the client may send after its CONNECT before our reply, kept for the destination. */
export const EARLY_DATA_MAX = 64 * 1024;

export interface Credentials {
  username: string;
  password: string;
}

export type Socks5Event =
  | { type: 'request'; cmd: 'connect' | 'udp-associate'; dst: SocksAddr }
  /** The session is over (after any bytes still in pollTransmit); `why` is for logs. */
  | { type: 'close'; why: string };

type State = 'greeting' | 'auth' | 'request' | 'deciding' | 'open' | 'closed';

export class Socks5Session {
  private state: State = 'greeting';
  private buf: Uint8Array = new Uint8Array(0);
  private readonly out: Uint8Array[] = [];
  private readonly events: Socks5Event[] = [];

  constructor(private readonly credentials: Credentials | null = null) {}

  get closed(): boolean {
    return this.state === 'closed';
  }

  input(data: Uint8Array): void {
    if (this.state === 'closed' || this.state === 'open') return;
    this.buf = this.buf.length === 0 ? Uint8Array.from(data) : concat(this.buf, data);
    if (this.state === 'deciding') {
      if (this.buf.length > EARLY_DATA_MAX) this.close(`more than ${EARLY_DATA_MAX} bytes before the reply`);
      return;
    }
    while (this.step());
    const state = this.state as State; // step() moved it on
    if (state !== 'deciding' && state !== 'closed' && this.buf.length > HANDSHAKE_MAX) {
      this.close('handshake too long');
    }
  }

  pollTransmit(): Uint8Array | null {
    return this.out.shift() ?? null;
  }

  pollEvent(): Socks5Event | null {
    return this.events.shift() ?? null;
  }

  /** Answers the pending request. Anything but success ends the session. */
  reply(rep: Rep, bind?: { ip: string; port: number }): void {
    if (this.state !== 'deciding') return;
    this.out.push(encodeReply(rep, bind));
    if (rep === Rep.Succeeded) this.state = 'open';
    else this.close(`replied ${rep}`);
  }

  /** What the client sent after its request (before our reply); empty once taken. */
  takeEarlyData(): Uint8Array {
    const b = this.buf;
    this.buf = new Uint8Array(0);
    return b;
  }

  /** Parses one message if it is complete; true if it did (and another may follow). */
  private step(): boolean {
    switch (this.state) {
      case 'greeting': return this.greeting();
      case 'auth': return this.auth();
      case 'request': return this.request();
      default: return false;
    }
  }

  private greeting(): boolean {
    const b = this.buf;
    if (b.length < 1) return false;
    if (b[0] !== SOCKS_VERSION) return this.refuseMethods(`not SOCKS5 (first byte ${b[0]})`);
    if (b.length < 2 || b.length < 2 + b[1]!) return false;
    const methods = b.subarray(2, 2 + b[1]!);
    const want = this.credentials ? Method.UserPass : Method.NoAuth;
    if (!methods.includes(want)) return this.refuseMethods(`no acceptable method among [${[...methods].join(',')}]`);
    this.consume(2 + b[1]!);
    this.out.push(Uint8Array.of(SOCKS_VERSION, want));
    this.state = want === Method.UserPass ? 'auth' : 'request';
    return true;
  }

  private refuseMethods(why: string): false {
    this.out.push(Uint8Array.of(SOCKS_VERSION, Method.NoAcceptable));
    this.close(why);
    return false;
  }

  private auth(): boolean {
    const b = this.buf;
    if (b.length < 2) return false;
    const ulen = b[1]!;
    if (b.length < 3 + ulen) return false;
    const plen = b[2 + ulen]!;
    if (b.length < 3 + ulen + plen) return false;
    const ok = b[0] === AUTH_VERSION && this.credentials !== null
      && same(b.subarray(2, 2 + ulen), this.credentials.username)
      && same(b.subarray(3 + ulen, 3 + ulen + plen), this.credentials.password);
    this.consume(3 + ulen + plen);
    this.out.push(Uint8Array.of(AUTH_VERSION, ok ? 0 : 1));
    if (!ok) {
      this.close(b[0] === AUTH_VERSION ? 'wrong username or password' : `auth version ${b[0]}`);
      return false;
    }
    this.state = 'request';
    return true;
  }

  private request(): boolean {
    const b = this.buf;
    if (b.length < 4) return false;
    if (b[0] !== SOCKS_VERSION) return this.fail(Rep.GeneralFailure, `request version ${b[0]}`);
    const r = readAddress(b, 3);
    if (r === 'bad-atyp') return this.fail(Rep.AddressTypeNotSupported, `address type ${b[3]}`);
    if (r === 'short') return false;
    const cmd = b[1];
    if (cmd !== Cmd.Connect && cmd !== Cmd.UdpAssociate) return this.fail(Rep.CommandNotSupported, `command ${cmd}`);
    if (r.addr.atyp === Atyp.Domain && r.addr.host.length === 0) return this.fail(Rep.GeneralFailure, 'empty domain name');
    this.consume(r.next);
    this.state = 'deciding';
    this.events.push({ type: 'request', cmd: cmd === Cmd.Connect ? 'connect' : 'udp-associate', dst: r.addr });
    return false;
  }

  private fail(rep: Rep, why: string): false {
    this.out.push(encodeReply(rep));
    this.close(why);
    return false;
  }

  private consume(n: number): void {
    this.buf = this.buf.subarray(n);
  }

  private close(why: string): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.buf = new Uint8Array(0);
    this.events.push({ type: 'close', why });
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Constant-time for equal lengths, so a wrong password's timing says nothing of how wrong it is. */
function same(got: Uint8Array, want: string): boolean {
  const w = Buffer.from(want, 'utf8');
  return got.length === w.length && timingSafeEqual(got, w);
}
