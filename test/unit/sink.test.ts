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
