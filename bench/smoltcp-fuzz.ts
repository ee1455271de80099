/**
 * Robustness run of the userspace TCP stack: feeds millions of malformed, truncated and mutated
 * IP packets (the unit test's generator) while an application opens, uses and aborts flows.
 * Reports traps (must be 0), escaped exceptions (must be 0) and linear memory before/after.
 *
 *   node dist/bench/smoltcp-fuzz.js [packets=1000000] [seed=1]
 */
import { SmoltcpStack } from '../daemon/intercept/smoltcp/stack.js';
import { runFuzz } from '../test/unit/smoltcp/fuzz.js';

const packets = Number(process.argv[2] ?? 1_000_000);
const seed = Number(process.argv[3] ?? 1);
const stack = await SmoltcpStack.create();
const memoryAtStart = stack.memoryBytes();
const started = performance.now();
const r = runFuzz(stack, packets, seed);
const seconds = (performance.now() - started) / 1000;
const mib = (b: number): string => (b / 1048576).toFixed(2) + ' MiB';
console.log(`smoltcp fuzz: ${r.packets} packets, seed ${seed}, ${seconds.toFixed(1)} s (${(r.packets / seconds / 1000).toFixed(0)}k packets/s)`);
console.log(`  crashes (traps): ${r.crashes}   escaped exceptions: ${r.thrown}   calls on just-ended flows: ${r.closedRaces}`);
console.log(`  new flows: ${r.newFlows}   events: ${JSON.stringify(r.events)}`);
console.log(`  stats: ${JSON.stringify(stack.stats())}`);
console.log(`  memory: start ${mib(memoryAtStart)}, after warm-up ${mib(r.memoryAfterWarmup)}, end ${mib(r.memoryAtEnd)}`);
process.exitCode = r.crashes === 0 && r.thrown === 0 ? 0 : 1;
