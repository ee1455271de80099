import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EARLY_DATA_MAX, HANDSHAKE_MAX, Socks5Session, type Socks5Event } from '../../../daemon/socks5/session.js';
import { encodeUdpDatagram, parseUdpDatagram, Rep } from '../../../daemon/socks5/wire.js';

/** Everything the session wants sent, as one hex string, and its events. */
function drain(s: Socks5Session): { sent: string; events: Socks5Event[] } {
  const parts: Uint8Array[] = [];
  for (let p = s.pollTransmit(); p; p = s.pollTransmit()) parts.push(p);
  const events: Socks5Event[] = [];
  for (let e = s.pollEvent(); e; e = s.pollEvent()) events.push(e);
  return { sent: Buffer.concat(parts).toString('hex'), events };
}

const hex = (h: string): Uint8Array => Buffer.from(h.replace(/ /g, ''), 'hex');
const CONNECT_V4 = '05 01 00 01 0a 90 00 02 1f 90'; // 10.144.0.2:8080

test('no-auth CONNECT to an IPv4 address, fed one byte at a time', () => {
  const s = new Socks5Session();
  for (const b of hex(`05 01 00 ${CONNECT_V4}`)) s.input(Uint8Array.of(b));
  const r = drain(s);
  assert.equal(r.sent, '0500');
  assert.deepEqual(r.events, [{ type: 'request', cmd: 'connect', dst: { host: '10.144.0.2', port: 8080, atyp: 1 } }]);
  s.reply(Rep.Succeeded, { ip: '10.144.0.1', port: 1234 });
  assert.equal(drain(s).sent, '05000001' + '0a900001' + '04d2');
  assert.equal(s.closed, false);
});

test('bytes sent after the request are kept for the destination, bounded', () => {
  const s = new Socks5Session();
  s.input(hex(`05 01 00 ${CONNECT_V4} 47 45 54`));
  drain(s);
  s.input(hex('20'));
  assert.equal(Buffer.from(s.takeEarlyData()).toString(), 'GET ');
  s.input(new Uint8Array(EARLY_DATA_MAX + 1));
  assert.deepEqual(drain(s).events, [{ type: 'close', why: `more than ${EARLY_DATA_MAX} bytes before the reply` }]);
});

test('domain names and IPv6 addresses parse; UDP ASSOCIATE is a request too', () => {
  const s = new Socks5Session();
  s.input(hex('05 01 00 05 03 00 03 0b') /* UDP ASSOCIATE, domain of 11 bytes */);
  s.input(Buffer.from('example.com'));
  s.input(hex('00 35'));
  assert.deepEqual(drain(s).events, [{ type: 'request', cmd: 'udp-associate', dst: { host: 'example.com', port: 53, atyp: 3 } }]);
  const v6 = new Socks5Session();
  v6.input(hex('05 01 00 05 01 00 04 fd000000000000000000000000000001 0050'));
  assert.deepEqual(drain(v6).events, [{ type: 'request', cmd: 'connect', dst: { host: 'fd00::1', port: 80, atyp: 4 } }]);
});

test('a failure reply ends the session', () => {
  const s = new Socks5Session();
  s.input(hex(`05 01 00 ${CONNECT_V4}`));
  drain(s);
  s.reply(Rep.ConnectionRefused);
  assert.deepEqual(drain(s), { sent: '05050001000000000000', events: [{ type: 'close', why: 'replied 5' }] });
  assert.equal(s.closed, true);
});

test('garbage (an HTTP request) gets "no acceptable methods" and the end', () => {
  const s = new Socks5Session();
  s.input(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
  const r = drain(s);
  assert.equal(r.sent, '05ff');
  assert.equal(r.events.length, 1);
  assert.match((r.events[0] as { why: string }).why, /not SOCKS5/);
  s.input(hex(CONNECT_V4)); // ignored once closed
  assert.deepEqual(drain(s), { sent: '', events: [] });
});

test('only unknown methods offered: 05 FF; no-auth offered when a password is required: 05 FF', () => {
  const s = new Socks5Session();
  s.input(hex('05 03 03 80 fe'));
  assert.equal(drain(s).sent, '05ff');
  const p = new Socks5Session({ username: 'u', password: 'p' });
  p.input(hex('05 01 00'));
  assert.equal(drain(p).sent, '05ff');
});

test('username/password: right ones open the request phase, wrong ones get 01 01', () => {
  const creds = { username: 'alice', password: 's3cret' };
  const ok = new Socks5Session(creds);
  ok.input(hex('05 02 00 02'));
  ok.input(hex('01 05') as Uint8Array);
  ok.input(Buffer.concat([Buffer.from('alice'), hex('06'), Buffer.from('s3cret'), hex(CONNECT_V4)]));
  const r = drain(ok);
  assert.equal(r.sent, '0502' + '0100');
  assert.equal(r.events[0]!.type, 'request');
  const bad = new Socks5Session(creds);
  bad.input(Buffer.concat([hex('05 01 02 01 05'), Buffer.from('alice'), hex('06'), Buffer.from('s3creT')]));
  assert.deepEqual(drain(bad), { sent: '0502' + '0101', events: [{ type: 'close', why: 'wrong username or password' }] });
});

test('request errors: BIND and unknown commands, unknown address types, wrong version, empty domain', () => {
  const cases: Array<[string, Rep]> = [
    ['05 02 00 01 0a 00 00 01 00 50', Rep.CommandNotSupported],
    ['05 09 00 01 0a 00 00 01 00 50', Rep.CommandNotSupported],
    ['05 01 00 07 0a 00 00 01 00 50', Rep.AddressTypeNotSupported],
    ['04 01 00 01 0a 00 00 01 00 50', Rep.GeneralFailure],
    ['05 01 00 03 00 00 50', Rep.GeneralFailure],
  ];
  for (const [req, rep] of cases) {
    const s = new Socks5Session();
    s.input(hex(`05 01 00 ${req}`));
    const r = drain(s);
    assert.equal(r.sent.slice(0, 8), `0500050${rep}`, req);
    assert.equal(r.events.at(-1)!.type, 'close', req);
    assert.equal(s.closed, true);
  }
});

test('the longest auth message is held while partial and ends within HANDSHAKE_MAX bytes', () => {
  const s = new Socks5Session({ username: 'u', password: 'p' });
  s.input(hex('05 01 02'));
  // An auth message claiming 255-byte fields, dribbled: each is complete at 513 bytes, so stop short.
  s.input(hex('01 ff'));
  s.input(new Uint8Array(255));
  s.input(hex('ff'));
  s.input(new Uint8Array(200));
  assert.equal(s.closed, false, 'still a legal partial message');
  s.input(new Uint8Array(HANDSHAKE_MAX)); // completes it (wrong credentials), rest is discarded
  assert.equal(s.closed, true);
});

test('random garbage never throws and always ends in a close with a reply', () => {
  let seed = 7;
  const rnd = (): number => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 16;
  for (let i = 0; i < 2000; i++) {
    const s = new Socks5Session(i % 2 ? { username: 'a', password: 'b' } : null);
    const junk = Uint8Array.from({ length: 1 + (rnd() % 2048) }, () => rnd() & 0xff);
    if (i % 3 === 0) junk[0] = 5;
    s.input(junk);
    const r = drain(s);
    if (s.closed) assert.ok(r.sent.length > 0, 'a closing session said why');
  }
});

test('UDP relay datagrams: round trip; fragments and bad headers are dropped', () => {
  const d = encodeUdpDatagram({ ip: '10.144.0.2', port: 7 }, Buffer.from('echo'));
  assert.deepEqual(parseUdpDatagram(d), { dst: { host: '10.144.0.2', port: 7, atyp: 1 }, payload: Buffer.from('echo') });
  const frag = Uint8Array.from(d);
  frag[2] = 1;
  assert.equal(parseUdpDatagram(frag), null);
  assert.equal(parseUdpDatagram(hex('00 00 00 09 01 02')), null);
  assert.equal(parseUdpDatagram(hex('00 00 00 01 0a')), null);
});
