import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FD_SINK_HIGH_WATER, fdSink } from '../../src/io/sink.js';

const CHUNK = 64 * 1024;
const chunk = (i: number): Buffer => Buffer.alloc(CHUNK, 97 + (i % 26));

describe('fdSink on a file or device', () => {
  const opened: number[] = [];
  let dir: string | undefined;
  afterEach(() => {
    for (const fd of opened.splice(0)) fs.closeSync(fd);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  // Ranks are read only while the sink accepts: a write in the thread pool must not stop reading. All writes
  // below happen in one tick, so the first is in flight while the rest queue behind it.
  it('keeps accepting while a write is in flight, up to its threshold, then asks to wait', async () => {
    const fd = fs.openSync('/dev/null', 'w');
    opened.push(fd);
    const sink = fdSink(fd, () => undefined);
    const below = Math.floor((FD_SINK_HIGH_WATER - 1) / CHUNK);
    expect(below).toBeGreaterThanOrEqual(64); // at least 4 MiB: a 1 MiB threshold halved stdout throughput
    const accepted = Array.from({ length: below }, (_, i) => sink.write(chunk(i)));
    const over = sink.write(chunk(below));
    // Let the queue empty before any assertion: the fd is closed (and its number reused) after this test.
    await new Promise<void>((resolve) => sink.onDrain(resolve));
    await sink.finish();
    expect(accepted.filter((a) => !a).length).toBe(0);
    expect(over).toBe(false);
    expect(sink.failed).toBeUndefined();
  });

  it('writes everything queued to a regular file, in order', async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsmpiexec-sink-'));
    const file = path.join(dir, 'out');
    const fd = fs.openSync(file, 'w', 0o600);
    opened.push(fd);
    const sink = fdSink(fd, () => undefined);
    const n = 96;
    for (let i = 0; i < n; i++) sink.write(chunk(i));
    await sink.finish();
    const got = fs.readFileSync(file);
    expect(got.length).toBe(n * CHUNK);
    for (let i = 0; i < n; i++) expect(got[i * CHUNK]).toBe(97 + (i % 26));
  });
});

describe('fdSink on a pipe', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  // A FIFO opened read-write is a pipe nobody drains: what does not fit stays queued in the socket.
  const fifo = (): number => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsmpiexec-sink-'));
    const p = path.join(dir, 'fifo');
    expect(spawnSync('mkfifo', ['-m', '600', p]).status).toBe(0);
    return fs.openSync(p, 'r+');
  };

  it('calls onPipeFull once, with the fd, when a write first has to wait for the reader', async () => {
    const fd = fifo();
    const calls: number[] = [];
    const sink = fdSink(fd, () => undefined, (f) => calls.push(f));
    sink.write(Buffer.alloc(1024, 97));
    expect(calls).toEqual([]); // it fitted
    for (let i = 0; i < 4; i++) sink.write(chunk(i)); // 256 KiB into a 64 KiB pipe
    expect(calls).toEqual([fd]);
    sink.write(chunk(5));
    expect(calls).toEqual([fd]);
    // drain the pipe so the socket can finish, then close it
    const drain = Buffer.alloc(1 << 20);
    const reader = fs.openSync(path.join(dir as string, 'fifo'), fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    let got = 0;
    const want = 1024 + 5 * CHUNK;
    const finished = sink.finish();
    for (let i = 0; i < 500 && got < want; i++) {
      try {
        got += fs.readSync(reader, drain, 0, drain.length, null);
      } catch {
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    await finished;
    fs.closeSync(reader);
    expect(got).toBe(want);
  });

  it('is not called for a file', async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsmpiexec-sink-'));
    const fd = fs.openSync(path.join(dir, 'out'), 'w', 0o600);
    const calls: number[] = [];
    const sink = fdSink(fd, () => undefined, (f) => calls.push(f));
    for (let i = 0; i < 40; i++) sink.write(chunk(i));
    await sink.finish();
    fs.closeSync(fd);
    expect(calls).toEqual([]);
  });
});
