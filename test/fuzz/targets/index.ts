/** Every fuzz target, by name (bench/fuzz.ts and the suite's short run both take them from here). */
import type { FuzzTarget } from '../engine.js';
import { kcptubeConfigTarget, kcptubeWireTarget, tomlTarget } from './config.js';
import { packetTarget } from './packet.js';
import { etHandshakeTarget, etPmTarget, etRouteTarget, flowFramesTarget, tcpFramesTarget } from './peer.js';
import { kcptubeCipherTarget, kcptunSessionTarget } from './sessions.js';
import { cryptTarget, fecTarget, kcpTarget, smuxTarget, snappyTarget } from './transport.js';

export const FUZZ_TARGETS: readonly FuzzTarget[] = [
  packetTarget, kcpTarget, fecTarget, cryptTarget, smuxTarget, snappyTarget,
  etPmTarget, etHandshakeTarget, etRouteTarget, tcpFramesTarget, flowFramesTarget,
  tomlTarget, kcptubeConfigTarget, kcptubeWireTarget, kcptubeCipherTarget, kcptunSessionTarget,
];

export function targetNamed(name: string): FuzzTarget {
  const t = FUZZ_TARGETS.find((x) => x.name === name);
  if (t === undefined) throw new Error(`no fuzz target "${name}" (${FUZZ_TARGETS.map((x) => x.name).join(', ')})`);
  return t;
}
