/**
 * The wasm ABI constants (daemon/wasm/abi/) are generated from the Rust enums by wasm/gen-abi.mjs:
 * the committed files must be what the generator makes of the current sources, and a Rust change
 * without regeneration must be caught.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { EventKind, StatIndex } from '../../../daemon/wasm/abi/quic.js';
import { FlowStateCode, StackEvent } from '../../../daemon/wasm/abi/stack.js';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const SOURCES = ['wasm/gen-abi.mjs', 'wasm/src/abi.rs', 'wasm/quic/src/abi.rs', 'daemon/wasm/abi'];

const check = (root: string) => spawnSync(process.execPath, [join(root, 'wasm/gen-abi.mjs'), '--check'], { encoding: 'utf8' });

test('the committed ABI constants are what wasm/gen-abi.mjs makes of the Rust sources', () => {
  const r = check(ROOT);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(StackEvent.newFlow, 1);
  assert.equal(FlowStateCode.pending, 11);
  assert.equal(EventKind.streamReset, 9);
  assert.equal(StatIndex.mtu, 11);
});

test('a Rust enum changed without regenerating is caught, naming the file', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tstier-abi-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const p of SOURCES) cpSync(join(ROOT, p), join(dir, p), { recursive: true });
  const stack = join(dir, 'wasm/src/abi.rs');
  writeFileSync(stack, readFileSync(stack, 'utf8').replace('Readable = 2,', 'Readable = 7,'));
  const r = check(dir);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /daemon\/wasm\/abi\/stack\.ts is out of date/);
  // Regenerating fixes it.
  assert.equal(spawnSync(process.execPath, [join(dir, 'wasm/gen-abi.mjs')]).status, 0);
  assert.equal(check(dir).status, 0);
  assert.match(readFileSync(join(dir, 'daemon/wasm/abi/stack.ts'), 'utf8'), /readable: 7,/);
});
