// Writable endpoints for merged rank output: our stdout/stderr (pipe, file, /dev/null or TTY) and output files.
// Pipes get a non-blocking handle so a slow reader pauses ranks (back-pressure) instead of freezing the event
// loop the way Node's blocking process.stdout does; the fd is set back to blocking before exit, because the
// O_NONBLOCK flag is shared with every other process holding the same pipe.
import fs from 'node:fs';
import net from 'node:net';
import tty from 'node:tty';
import type { Writable } from 'node:stream';

export interface Sink {
  /** false: buffered past the high-water mark; wait for 'drain' via onDrain. */
  write(data: Buffer): boolean;
  onDrain(fn: () => void): void;
  /** Resolves when everything written so far reached the OS; closes the fd if we opened it. */
  finish(): Promise<void>;
  /** Set when the reader went away (EPIPE) or the device failed (ENOSPC): writes are dropped from then on. */
  readonly failed: Error | undefined;
  readonly isTTY: boolean;
}

class StreamSink implements Sink {
  failed: Error | undefined;
  private drainFns: Array<() => void> = [];
  constructor(
    private readonly stream: Writable,
    readonly isTTY: boolean,
    private readonly owned: boolean,
    private readonly onFail: (e: Error) => void,
    /** called once, the first time a write has to queue (the OS buffer behind the stream is full) */
    private onFirstFull?: () => void,
  ) {
    stream.on('error', (e: Error) => {
      if (!this.failed) {
        this.failed = e;
        this.onFail(e);
      }
      this.fireDrain();
    });
    stream.on('drain', () => this.fireDrain());
  }
  private fireDrain(): void {
    const fns = this.drainFns;
    this.drainFns = [];
    for (const f of fns) f();
  }
  write(data: Buffer): boolean {
    if (this.failed) return true;
    const ok = this.stream.write(data);
    // a socket's write that completed at once has left nothing queued; what stays queued waits for the reader
    if (this.onFirstFull && this.stream.writableLength > 0) {
      const f = this.onFirstFull;
      this.onFirstFull = undefined;
      f();
    }
    return ok;
  }
  onDrain(fn: () => void): void {
    if (this.failed || !this.stream.writableNeedDrain) fn();
    else this.drainFns.push(fn);
  }
  finish(): Promise<void> {
    return new Promise((resolve) => {
      if (this.failed || this.stream.destroyed) return resolve();
      const done = (): void => {
        if (!this.owned) {
          // Give the shared fd back in blocking mode (see the header).
          const handle = (this.stream as unknown as { _handle?: { setBlocking?: (b: boolean) => void } })._handle;
          handle?.setBlocking?.(true);
        }
        resolve();
      };
      if (this.owned) {
        this.stream.once('error', () => resolve());
        this.stream.end(done);
      } else {
        this.stream.write(Buffer.alloc(0), () => done());
      }
    });
  }
}

/**
 * Back-pressure threshold of our own stdout/stderr when it is a file or a device: ranks pause only once this
 * much is queued. Node's fs stream writes in the thread pool, one write at a time, and queues what arrives
 * meanwhile; with a 1 MiB threshold the queue filled during every write, so reading the ranks stopped until it
 * returned and the job ran at half speed (4 ranks x 256 MiB to /dev/null: 643 ms, Hydra 503 ms; with 8 MiB
 * 476 ms). The bound holds per sink: one stdout and one stderr.
 */
export const FD_SINK_HIGH_WATER = 8 << 20;

/**
 * A sink on an inherited fd (1 or 2). `onPipeFull(fd)` is called once when the fd is a pipe and a write first
 * finds it full (the caller may grow the pipe: io/pipe-size.ts).
 */
export function fdSink(fd: number, onFail: (e: Error) => void, onPipeFull?: (fd: number) => void): Sink {
  if (tty.isatty(fd)) {
    return new StreamSink(new tty.WriteStream(fd), true, false, onFail);
  }
  const st = fs.fstatSync(fd);
  if (st.isFIFO() || st.isSocket()) {
    const sock = new net.Socket({ fd, readable: false, writable: true });
    const full = onPipeFull && st.isFIFO() ? () => onPipeFull(fd) : undefined;
    return new StreamSink(sock, false, false, onFail, full);
  }
  const ws = fs.createWriteStream('', { fd, autoClose: false, highWaterMark: FD_SINK_HIGH_WATER });
  return new StreamSink(ws, false, false, onFail);
}

/**
 * A sink on a file we create (output patterns). Mode 0600: output is the job owner's. Its threshold stays at
 * 1 MiB: a job may open one file per rank, and the threshold bounds memory per file.
 */
export function fileSink(path: string, onFail: (e: Error) => void): Sink {
  const ws = fs.createWriteStream(path, { flags: 'w', mode: 0o600, highWaterMark: 1 << 20 });
  return new StreamSink(ws, false, true, onFail);
}
