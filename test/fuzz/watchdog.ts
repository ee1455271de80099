/**
 * Runs fuzz targets in a worker thread and watches it: a parser that loops forever cannot be
 * interrupted from inside, so the worker records each input in shared memory before running it,
 * and when its progress counter stalls for `hangMs` the worker is terminated and the input that
 * hung is reported as a crash like any other.
 */
import { Worker } from 'node:worker_threads';
import { toHex, type FuzzCrash, type FuzzResult } from './engine.js';

/** [0] inputs started, [1] target index, [2] input index, [3] input length; then the input bytes. */
export const HEADER_INTS = 4;
export const MAX_RECORDED = 256 * 1024;

export interface WorkerJob {
  targets: string[];
  count: number;
  seed: number;
  shared: SharedArrayBuffer;
}

/** What the worker posts: each crash as it happens, and each target's result. */
export type WorkerMessage = { crash: FuzzCrash } | { result: FuzzResult };

export interface WatchOptions {
  targets: string[];
  count: number;
  seed: number;
  /** A stall this long is a hang. */
  hangMs?: number;
  /** Called as each target finishes. */
  onResult?: (r: FuzzResult) => void;
  /** Called at once for each crash (the result lists it again). */
  onCrash?: (c: FuzzCrash) => void;
  /** Called every `progressMs` with the running target and its inputs so far (long runs). */
  onProgress?: (target: string, inputs: number) => void;
  progressMs?: number;
}

export function runWatched(o: WatchOptions): Promise<FuzzResult[]> {
  const shared = new SharedArrayBuffer(HEADER_INTS * 4 + MAX_RECORDED);
  const head = new Int32Array(shared, 0, HEADER_INTS);
  const job: WorkerJob = { targets: o.targets, count: o.count, seed: o.seed, shared };
  const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: job });
  const results: FuzzResult[] = [];
  const hangMs = o.hangMs ?? 10_000;
  return new Promise((resolve, reject) => {
    let last = -1;
    let lastChange = performance.now();
    let settled = false;
    let nextProgress = performance.now() + (o.progressMs ?? Infinity);
    const timer = setInterval(() => {
      if (o.onProgress && performance.now() >= nextProgress) {
        nextProgress += o.progressMs!;
        o.onProgress(o.targets[Atomics.load(head, 1)]!, Atomics.load(head, 2) + 1);
      }
      const progress = Atomics.load(head, 0);
      if (progress !== last) {
        last = progress;
        lastChange = performance.now();
        return;
      }
      if (performance.now() - lastChange < hangMs) return;
      const target = o.targets[Atomics.load(head, 1)]!;
      const len = Atomics.load(head, 3);
      const bytes = new Uint8Array(shared, HEADER_INTS * 4, Math.min(len, MAX_RECORDED)).slice();
      const crash: FuzzCrash = {
        target, seed: o.seed, index: Atomics.load(head, 2),
        error: `hang: no progress for ${hangMs} ms${len > MAX_RECORDED ? ` (input of ${len} bytes, first ${MAX_RECORDED} shown)` : ''}`,
        hex: toHex(bytes),
      };
      results.push({ target, inputs: Atomics.load(head, 2) + 1, crashes: [crash], ms: 0 });
      finish(() => resolve(results));
      void worker.terminate();
    }, Math.min(250, hangMs / 4));
    const finish = (then: () => void): void => {
      if (settled) return;
      settled = true;
      clearInterval(timer);
      then();
    };
    worker.on('message', (m: WorkerMessage) => {
      if ('crash' in m) {
        o.onCrash?.(m.crash);
        return;
      }
      results.push(m.result);
      o.onResult?.(m.result);
    });
    worker.on('error', (e) => finish(() => reject(e)));
    worker.on('exit', () => finish(() => resolve(results)));
  });
}
