/** The fuzzing worker (see watchdog.ts): runs each named target and posts its result. */
import { parentPort, workerData } from 'node:worker_threads';
import { fuzzTarget } from './engine.js';
import { targetNamed } from './targets/index.js';
import { HEADER_INTS, MAX_RECORDED, type WorkerJob, type WorkerMessage } from './watchdog.js';

const job = workerData as WorkerJob;
const head = new Int32Array(job.shared, 0, HEADER_INTS);
const bytes = new Uint8Array(job.shared, HEADER_INTS * 4, MAX_RECORDED);

for (const [t, name] of job.targets.entries()) {
  Atomics.store(head, 1, t);
  const result = fuzzTarget(targetNamed(name), job.count, job.seed, {
    before(input, index) {
      bytes.set(input.length <= MAX_RECORDED ? input : input.subarray(0, MAX_RECORDED));
      head[2] = index;
      head[3] = input.length;
      Atomics.add(head, 0, 1);
    },
    onCrash: (crash) => parentPort!.postMessage({ crash } satisfies WorkerMessage),
  });
  parentPort!.postMessage({ result } satisfies WorkerMessage);
}
