// stdin forwarding with back-pressure: read only as fast as the slowest target rank consumes (1 GB must go
// through; Hydra gives up at 1 MB). Ranks that do not get stdin have /dev/null, never a pipe without EOF.
import fs from 'node:fs';
import net from 'node:net';
import tty from 'node:tty';
import type { Readable, Writable } from 'node:stream';

/** Open an inherited fd for reading without touching process.stdin; undefined if the fd is closed. */
export function fdSource(fd: number): Readable | undefined {
  let st: fs.Stats;
  try {
    st = fs.fstatSync(fd);
  } catch {
    return undefined;
  }
  if (tty.isatty(fd)) return new tty.ReadStream(fd);
  if (st.isFIFO() || st.isSocket()) return new net.Socket({ fd, readable: true, writable: false });
  return fs.createReadStream('', { fd, autoClose: false, highWaterMark: 1 << 20 });
}

export interface StdinForwarder {
  stop(): void;
}

export function forwardStdin(source: Readable, targets: Writable[]): StdinForwarder {
  let live = targets.filter((t) => !t.destroyed);
  const waitingOn = new Set<Writable>();
  const usable = (t: Writable): boolean => !t.destroyed && !t.writableEnded;
  const stop = (): void => {
    source.removeAllListeners('data');
    source.destroy();
    const handle = (source as unknown as { _handle?: { setBlocking?: (b: boolean) => void } })._handle;
    handle?.setBlocking?.(true);
  };
  const release = (t: Writable): void => {
    if (waitingOn.delete(t) && waitingOn.size === 0) source.resume();
  };
  const drop = (t: Writable): void => {
    live = live.filter((x) => x !== t);
    release(t);
    if (live.length === 0) stop();
  };
  for (const t of live) {
    t.on('error', () => drop(t));
    t.once('close', () => drop(t));
  }
  if (live.length === 0) {
    stop();
    return { stop };
  }
  source.on('data', (chunk: Buffer) => {
    for (const t of live) {
      if (!usable(t)) continue;
      if (!t.write(chunk) && !waitingOn.has(t)) {
        waitingOn.add(t);
        t.once('drain', () => release(t));
      }
    }
    if (waitingOn.size > 0) source.pause();
  });
  const endAll = (): void => {
    for (const t of live) if (usable(t)) t.end();
  };
  source.once('end', endAll);
  source.on('error', endAll);
  return { stop };
}
