// Bring the network-namespace test bed (test/testbed/testbed.sh) up and down from a test file: real sshd
// "hosts" h1..hN plus a login host h0 where tsmpiexec runs.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { killLive, leftovers, runTsmpiexec, type RunResult } from './run.js';

const SCRIPT = path.resolve('test/testbed/testbed.sh');

export interface Bed {
  dir: string;
  prefix: string;
  hosts: string[];
  ssh: string;
  /** argv prefix that runs a command on the login host h0 */
  onLogin: string[];
  script(...args: string[]): string;
  down(): void;
}

export function bedUp(n: number, prefix: string): Bed {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `tsmpi-bed-${prefix}-`));
  const script = (...args: string[]): string =>
    execFileSync('bash', [SCRIPT, ...args, '--dir', dir], { encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    script('up', String(n), '--prefix', prefix);
  } catch (e) {
    try {
      script('down');
    } catch {
      /* best effort */
    }
    throw e;
  }
  return {
    dir,
    prefix,
    hosts: Array.from({ length: n }, (_, i) => `h${i + 1}`),
    ssh: `ssh -F ${dir}/ssh_config`,
    onLogin: ['bash', SCRIPT, 'exec', 'h0', '--dir', dir, '--'],
    script,
    down: () => {
      script('down');
    },
  };
}

/**
 * Inside a describe: a test bed of n hosts for its tests, and `run` for tsmpiexec on its login host (over the
 * bed's ssh, with `env`). Every job's processes are looked for on every host after each test. `precheck` names
 * what is missing, failing the block before the bed is made.
 */
export function useBed(n: number, prefix: string, env: Record<string, string>, precheck?: () => string | undefined): { run(args: string[]): Promise<RunResult> } {
  let bed: Bed | undefined;
  const marks: string[] = [];
  beforeAll(() => {
    const missing = precheck?.();
    if (missing) throw new Error(missing);
    bed = bedUp(n, prefix);
  });
  afterAll(() => bed?.down());
  afterEach(async () => {
    killLive();
    for (const m of marks.splice(0)) expect(await leftovers(m, 10_000), 'processes left behind on some host').toEqual([]);
  });
  return {
    async run(args) {
      const b = bed as Bed;
      const r = await runTsmpiexec(['-launcher-exec', b.ssh, ...args], { wrap: b.onLogin, timeoutMs: 90_000, env });
      marks.push(r.marker);
      return r;
    },
  };
}
