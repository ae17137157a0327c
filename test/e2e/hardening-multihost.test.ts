// Hardening across hosts on the network-namespace test bed (test/testbed): the ssh connection to a host cut
// mid-job (its ssh client killed, or the host vanishing with its cable pulled), a rank abusing PMI on a remote
// host, and no secret in any command line of the ranks, proxies and ssh clients of a job on three hosts. Every
// process of a job carries the test's marker (the bed's hosts share this PID space), so leftovers are found on
// every host; cgroups, mounts and temp dirs are checked by the controller's pid in the job id.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, FIX, killLive, processesWithMarker, runTsmpiexec, type RunOptions, type RunResult } from '../helpers/run.js';
import { bedUp, type Bed } from '../helpers/testbed.js';
import { JobLeaks } from '../fixtures/hardening/leaks.js';

const EVIL = path.resolve('test/fixtures/hardening/pmi-evil.cjs');
const NODE = process.execPath;
const STACK = /\n\s+at /;
let bed: Bed;
const jobs = new JobLeaks();

async function run(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await runTsmpiexec(['-launcher-exec', bed.ssh, ...args], { wrap: bed.onLogin, timeoutMs: 60_000, ...opts });
  jobs.note(r);
  return r;
}

function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

beforeAll(() => {
  if (!fs.existsSync('dist/main.js')) throw new Error('dist/main.js is missing: run `make build` first (make test does)');
  if (!fs.existsSync(path.join(FIX, 'hello'))) throw new Error(`MPI fixtures are missing in ${FIX}`);
  bed = bedUp(3, 'tshd');
});

afterAll(() => {
  bed?.down();
});

afterEach(async () => {
  killLive();
  const left = await jobs.sweep(10_000, 5000);
  expect(left.processes, 'processes of the job left behind on some host').toEqual([]);
  expect(left.residue, 'cgroups, mounts or temp dirs of the job left behind').toEqual([]);
});

describe('secrets across hosts', () => {
  it('no environment value in the command line of any rank, proxy or ssh client, nor in --verbose', async () => {
    const secret = `tsmpi-secret-${randomUUID()}`;
    let lines: string[] = [];
    let ours = 0;
    let seen = '';
    const r = await run(['--verbose', '-hosts', 'h1,h2,h3', '-n', '3', 'sh', '-c', 'test -n "$TSMPI_HARDENING_SECRET" && echo "has it on $(hostname)"; sleep 3'], {
      env: { TSMPI_HARDENING_SECRET: secret },
      onStdout: (chunk) => {
        seen += chunk.toString();
        if (ours > 0 || (seen.match(/has it/g) ?? []).length < 3) return;
        // The controller, its ssh clients and the ranks have the secret in their environment; the remote proxies
        // do not (ssh passes no environment: the values travel on the channel), so take parents too.
        const all = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number);
        const withSecret = all.filter((p) => {
          try {
            return fs.readFileSync(`/proc/${p}/environ`).includes(secret);
          } catch {
            return false;
          }
        });
        const ppid = (p: number): number | undefined => {
          try {
            const st = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
            return Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
          } catch {
            return undefined;
          }
        };
        const family = new Set(withSecret);
        for (const p of withSecret) {
          const up = ppid(p);
          if (up !== undefined) family.add(up);
        }
        ours = withSecret.length;
        lines = [...family].map(cmdline);
      },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n').sort()).toEqual(['has it on h1', 'has it on h2', 'has it on h3']);
    // the controller, three ssh clients, three ranks, at least
    expect(ours).toBeGreaterThanOrEqual(7);
    expect(lines.some((l) => /\bssh\b.* h2 /.test(l)), lines.join('\n')).toBe(true);
    expect(lines.some((l) => /tsmpiexec\.js proxy/.test(l)), lines.join('\n')).toBe(true);
    for (const l of lines) expect(l).not.toContain(secret);
    expect(r.stderr).toMatch(/launcher ssh/);
    expect(r.stderr + r.stdout).not.toContain(secret);
  });
});

describe('PMI abuse on a remote host', () => {
  it('a rank on h2 sending garbage over PMI_FD: one line, status 76, the ranks on h1 and h3 are not left waiting', async () => {
    const r = await run(['-hosts', 'h1,h2,h3', '-n', '1', NODE, BIN, 'pmi-check', ':', '-n', '1', NODE, EVIL, 'garbage', ':', '-n', '1', NODE, BIN, 'pmi-check'], { timeoutMs: 45_000 });
    expect(r.code, r.stderr).toBe(76);
    expect(r.stderr).toMatch(/^tsmpiexec: PMI protocol error from rank 1 on h2: garbage: .*: terminating the other 2 ranks$/m);
    expect(r.stderr).not.toMatch(/exited without calling MPI_Finalize/);
    expect(r.stderr).not.toMatch(STACK);
  });
});

describe('the ssh connection to a host cut mid-job', () => {
  it('its ssh client killed: the job ends within seconds, naming the host (status 125)', async () => {
    let cut = 0;
    let ready = 0;
    const r = await run(['-hosts', 'h1,h2', '-n', '2', 'sh', '-c', 'echo up; sleep 60'], {
      onStdout: (chunk) => {
        ready += (chunk.toString().match(/up/g) ?? []).length;
        if (ready < 2 || cut) return;
        // the ssh client carrying h2's channel: a child of the controller, found by its command line
        const ssh = fs
          .readdirSync('/proc')
          .filter((d) => /^\d+$/.test(d))
          .map(Number)
          .find((p) => /^ssh .* h2 exec /.test(cmdline(p)) && cmdline(p).includes(bed.dir));
        if (ssh === undefined) return;
        cut = ssh;
        process.kill(ssh, 'SIGKILL');
      },
    });
    expect(cut, 'found the ssh client of h2').toBeGreaterThan(0);
    expect(r.code, r.stderr).toBe(125);
    expect(r.stderr).toMatch(/^tsmpiexec: lost the proxy on h2: /m);
    expect(r.ms, 'the ranks sleep 60 s').toBeLessThan(30_000);
    expect(r.stderr).not.toMatch(STACK);
  });

  // Last: the host does not come back.
  it('the host vanishes (cable pulled, then its processes killed): the job ends within seconds, naming the host', async () => {
    let vanished = false;
    let ready = 0;
    const r = await run(['-hosts', 'h1,h3', '-n', '2', 'sh', '-c', 'echo up; sleep 60'], {
      onStdout: (chunk) => {
        ready += (chunk.toString().match(/up/g) ?? []).length;
        if (ready < 2 || vanished) return;
        vanished = true;
        bed.script('vanish', 'h3');
      },
    });
    expect(vanished).toBe(true);
    expect(r.code, r.stderr).toBe(125);
    expect(r.stderr).toMatch(/^tsmpiexec: lost the proxy on h3: /m);
    // ssh notices the silence after ServerAliveInterval 2 s x 3; the ranks would sleep 60 s
    expect(r.ms).toBeLessThan(40_000);
    expect(r.stderr).not.toMatch(STACK);
    // The vanished host's proxy died with SIGKILL and could not remove its cgroups: the next job's janitor
    // (here, one on this host) sweeps cgroups whose owner is gone.
    const sweep = await run(['-n', '1', 'true'], { wrap: [], timeoutMs: 30_000 });
    expect(sweep.code).toBe(0);
    expect(processesWithMarker(r.marker)).toEqual([]);
  });
});
