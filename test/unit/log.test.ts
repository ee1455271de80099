import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { createLogger, setLogLevel, setLogSink } from '../../daemon/log.js';
import { TstierError } from '../../daemon/errors.js';

const lines: string[] = [];
setLogSink((line) => lines.push(line));
afterEach(() => { lines.length = 0; setLogLevel('info'); });

describe('log', () => {
  it('writes one line per event: ISO time, level, scope, message, fields', () => {
    setLogLevel('info');
    const log = createLogger('peer');
    log.info('session up', { peer: 7, uri: 'udp://10.0.0.2:11010', note: 'two words' });
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO {2}\[peer\] session up peer=7 uri=udp:\/\/10\.0\.0\.2:11010 note="two words"\n$/);
  });
  it('drops events below the level and reports enabled()', () => {
    setLogLevel('warn');
    const log = createLogger('x');
    log.info('hidden');
    log.debug('hidden');
    log.warn('shown');
    log.error('shown');
    assert.deepEqual(lines.map((l) => l.split(' ')[1]), ['WARN', 'ERROR']);
    assert.equal(log.enabled('info'), false);
    assert.equal(log.enabled('error'), true);
    setLogLevel('trace');
    log.trace('now shown');
    assert.equal(lines.length, 3);
  });
  it('keeps multi-line messages, errors and odd values on one line and never throws', () => {
    const log = createLogger('x');
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    log.error('first\nsecond', { err: new TstierError('TSTIER_E_AUTH', 'bad\nsecret'), cyclic, big: 10n, nothing: undefined });
    assert.equal(lines.length, 1);
    assert.equal(lines[0]!.indexOf('\n'), lines[0]!.length - 1);
    assert.match(lines[0]!, /first\\nsecond err="TSTIER_E_AUTH: bad\\nsecret" cyclic=\[object Object\] big=10 nothing=undefined/);
  });
});
