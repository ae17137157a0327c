// Load across hosts: 16 test hosts at once (real sshd in network namespaces), MPI hello on every one of them,
// launched flat and as a tree; nothing of the job may be left on any host afterwards.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { FIX, killLive, leftovers, runTsmpiexec, type RunResult } from '../helpers/run.js';
import { bedUp, type Bed } from '../helpers/testbed.js';

const HOSTS = 16;
let bed: Bed;
let lastMarker: string | undefined;

async function run(args: string[]): Promise<RunResult> {
  const r = await runTsmpiexec(['-launcher-exec', bed.ssh, ...args], { wrap: bed.onLogin, timeoutMs: 120_000 });
  lastMarker = r.marker;
  return r;
}

beforeAll(() => {
  if (!fs.existsSync(path.join(FIX, 'hello'))) throw new Error(`MPI fixtures are missing in ${FIX}`);
  bed = bedUp(HOSTS, 'tss6');
}, 180_000);

afterAll(() => {
  bed?.down();
});

afterEach(async () => {
  killLive();
  if (lastMarker) {
    const left = await leftovers(lastMarker, 10_000);
    lastMarker = undefined;
    expect(left, 'processes of the job left behind on some host').toEqual([]);
  }
});

describe(`${HOSTS} test hosts at once`, () => {
  const hosts = Array.from({ length: HOSTS }, (_, i) => `h${i + 1}`).join(',');
  it.each([
    ['flat', ['--no-tree']],
    ['as a tree of width 4', ['--tree-width', '4']],
  ])('MPI hello on every host, launched %s', async (_how, extra) => {
    const r = await run([...extra, '-hosts', hosts, '-n', String(HOSTS), path.join(FIX, 'hello')]);
    expect(r.code, r.stderr).toBe(0);
    const seen = new Set(r.stdout.trim().split('\n').map((l) => / on (h\d+) /.exec(l)?.[1]));
    expect(seen.size).toBe(HOSTS);
    expect(r.stdout).toContain(`(allreduce sum ${(HOSTS * (HOSTS - 1)) / 2}, expected ${(HOSTS * (HOSTS - 1)) / 2})`);
  });
});
