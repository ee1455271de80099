/**
 * The application's end of the one pipe (socket-pipe.ts), as the pipe needs it: bytes and a FIN in,
 * bytes and a FIN out with back-pressure, a close and a reset. A kernel socket is adapted by
 * socketEnd(); a userspace-stack flow (intercept/smoltcp/driver.ts) implements it directly on the
 * stack, with no Node stream in between.
 */
import type { Socket } from 'node:net';

/** What the application's end reports to its pipe. */
export interface AppEvents {
  /** Bytes from the application; the receiver keeps the chunk. */
  data(chunk: Uint8Array): void;
  /** The application's FIN, after its last byte. */
  end(): void;
  /** Room again after write() said the application's buffer was full. */
  drain(): void;
  /** The end is gone; `hadError`: by a reset or failure. A close before both FINs is a reset too. */
  close(hadError: boolean): void;
}

export interface AppEnd {
  /** Starts reporting to `on`; bytes only after resume(). */
  bind(on: AppEvents): void;
  /** Queues bytes for the application (keeping the view); false: its buffer is full, wait for drain. */
  write(data: Uint8Array): boolean;
  /** Stop and restart reporting bytes (back-pressure toward the application). */
  pause(): void;
  resume(): void;
  /** Our FIN, after the bytes written. */
  end(): void;
  /** Both directions ended: close once our FIN is out. */
  closeSoon(): void;
  /** Close now; bytes or a FIN still outstanding make it a reset. */
  destroy(): void;
  /** Abort: the application sees an RST. */
  reset(): void;
  readonly destroyed: boolean;
  /** end() was called. */
  readonly writableEnded: boolean;
  /** end() was called and every byte before it was handed on. */
  readonly writableFinished: boolean;
  /** Batching of one burst's writes (a socket's writev); optional. */
  cork?(): void;
  uncork?(): void;
}

/** What a terminator hands the proxy: a kernel socket, or an end that is already an AppEnd. */
export type AppStream = Socket | AppEnd;

export function appEnd(s: AppStream): AppEnd {
  return 'bind' in s ? s : socketEnd(s);
}

/** Aborts an application's end so its peer sees an RST. */
export function resetApp(s: AppStream): void {
  if (s.destroyed) return;
  if ('bind' in s) s.reset();
  else s.resetAndDestroy();
}

/** A kernel socket as an AppEnd (its events one for one; no Nagle delay on what the pipe writes). */
export function socketEnd(s: Socket): AppEnd {
  return {
    bind(on: AppEvents): void {
      s.setNoDelay(true);
      s.on('data', on.data);
      s.on('end', on.end);
      s.on('drain', on.drain);
      s.on('error', () => undefined); // 'close' follows with hadError
      s.on('close', on.close);
    },
    write: (d) => s.write(d),
    pause: () => void s.pause(),
    resume: () => void s.resume(),
    end: () => void s.end(),
    closeSoon: () => s.destroySoon(),
    destroy: () => void s.destroy(),
    reset: () => resetApp(s),
    cork: () => s.cork(),
    uncork: () => s.uncork(),
    get destroyed() {
      return s.destroyed;
    },
    get writableEnded() {
      return s.writableEnded;
    },
    get writableFinished() {
      return s.writableFinished;
    },
  };
}
