// Load across hosts: 16 test hosts at once (real sshd in network namespaces), MPI hello on every one of them,
// launched flat and as a tree, and a big PMI barrier gathered through the tree; nothing of the job may be left
// on any host afterwards.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
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

/** bench/c/pmi_bulk.c: a PMI-1 client without MPI that puts 16 KiB per rank before one barrier. */
const BULK = path.resolve('build/hardening/pmi_bulk');

beforeAll(() => {
  if (!fs.existsSync(path.join(FIX, 'hello'))) throw new Error(`MPI fixtures are missing in ${FIX}`);
  const src = path.resolve('bench/c/pmi_bulk.c');
  fs.mkdirSync(path.dirname(BULK), { recursive: true });
  if (!fs.existsSync(BULK) || fs.statSync(BULK).mtimeMs < fs.statSync(src).mtimeMs) {
    execFileSync('cc', ['-O2', '-Wall', '-o', BULK, src], { stdio: 'inherit', timeout: 60_000 });
  }
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

describe(`a big PMI barrier on ${HOSTS} test hosts, gathered through the launch tree`, () => {
  // 4 ranks per host, each putting 16 KiB (16 keys of 1 KiB) before one barrier: a 1 MiB epoch. Flat, the
  // controller sends that epoch to each of the 16 proxies; through a tree of width 4 only to the 4 it started.
  const PPN = 4;
  const hosts = Array.from({ length: HOSTS }, (_, i) => `h${i + 1}:${PPN}`).join(',');
  const written = (stderr: string): number => {
    const m = /control channels: (\d+) bytes written to the remote proxies, (\d+) bytes read from them/.exec(stderr);
    if (!m) throw new Error(`no control-channel line in:\n${stderr}`);
    return Number(m[1]);
  };

  it('the controller writes at most half the bytes with --tree-width 4 that it writes flat, and every rank reads the same values', async () => {
    const bytes: Record<string, number> = {};
    for (const [how, extra] of [
      ['flat', ['--no-tree']],
      ['tree', ['--tree-width', '4']],
    ] as const) {
      const r = await run([...extra, '--timing', '-hosts', hosts, '-n', String(HOSTS * PPN), BULK]);
      expect(r.code, `${how}: ${r.stderr}`).toBe(0);
      // rank 0 says so only when every rank read its peers' values (one on another host) exactly
      expect(r.stdout.trim(), how).toBe(`pmi-bulk ok size=${HOSTS * PPN} keys=16 bytes=1024`);
      bytes[how] = written(r.stderr);
      killLive();
      expect(await leftovers(r.marker, 10_000), `${how}: processes left behind`).toEqual([]);
    }
    const flat = bytes.flat as number;
    const tree = bytes.tree as number;
    // flat carries the 1 MiB epoch to 16 proxies: well over 16 MiB
    expect(flat).toBeGreaterThan(HOSTS * HOSTS * PPN * 16 * 1024);
    expect(tree * 2, `tree ${tree} bytes, flat ${flat} bytes`).toBeLessThanOrEqual(flat);
  });
});
