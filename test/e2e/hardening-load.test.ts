// Load on one host through bin/tsmpiexec: 1024 ranks of a PMI-1 client without MPI (bench/c/pmi_exchange.c,
// compiled here with cc), the same with too few file descriptors (one clean line, no crash), and 200 consecutive
// short jobs of every kind (PMI over fd, UNIX and TCP, failing ranks, output files) after which nothing of any
// of them is left on the host: no process, cgroup, mount, temp dir, /dev/shm entry or PMI socket.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, killLive, runTsmpiexec, type RunOptions, type RunResult } from '../helpers/run.js';
import { JobLeaks } from '../fixtures/hardening/leaks.js';

const NO_OUTER_PMI = { PMI_FD: '', PMI_PORT: '', PMI_ID: '', PMI_RANK: '', PMI_SIZE: '' };
const jobs = new JobLeaks();
let work: string;
let exchange: string;

async function run(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await runTsmpiexec(args, { timeoutMs: 60_000, ...opts, env: { ...NO_OUTER_PMI, ...opts.env } });
  jobs.note(r);
  return r;
}

/** Soft and hard RLIMIT_NOFILE of this process. */
function nofile(): { soft: number; hard: number } {
  const line = fs.readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files')) ?? '';
  const [soft, hard] = line.replace('Max open files', '').trim().split(/\s+/).map((v) => (v === 'unlimited' ? Infinity : Number(v)));
  return { soft: soft ?? 0, hard: hard ?? 0 };
}

const withNofile = (n: number): string[] => ['bash', '-c', `ulimit -n ${n} && exec "$@"`, 'bash'];

beforeAll(() => {
  if (!fs.existsSync('dist/main.js')) throw new Error('dist/main.js is missing: run `make build` first (make test does)');
  fs.mkdirSync('build/hardening', { recursive: true });
  work = fs.mkdtempSync(path.resolve('build/hardening/load-'));
  exchange = path.resolve('build/hardening/pmi_exchange');
  const src = path.resolve('bench/c/pmi_exchange.c');
  if (!fs.existsSync(exchange) || fs.statSync(exchange).mtimeMs < fs.statSync(src).mtimeMs) {
    execFileSync('cc', ['-O2', '-Wall', '-o', exchange, src], { stdio: 'inherit', timeout: 60_000 });
  }
});

afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

afterEach(async () => {
  killLive();
  const left = await jobs.sweep(10_000, 10_000);
  expect(left.processes, 'processes of the job left behind').toEqual([]);
  expect(left.residue, 'cgroups, mounts or temp dirs of the job left behind').toEqual([]);
});

describe('many ranks on one host', () => {
  const { hard } = nofile();
  // ~4 descriptors per rank in the launcher (the bench README); raise the soft limit as far as the hard one allows.
  it.runIf(hard >= 8192)('1024 ranks: PMI init, 8 puts, barrier, 64 gets, barrier, finalize, every value checked', async () => {
    const r = await run(['-n', '1024', exchange], { wrap: withNofile(Math.min(hard, 65536)), timeoutMs: 240_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('pmi-exchange ok size=1024 gets=64\n');
  });

  it('1024 ranks with only 1024 file descriptors: the ranks that cannot start are named (EMFILE), status 125, no crash', async () => {
    const r = await run(['-n', '1024', exchange], { wrap: withNofile(1024), timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(125);
    expect(r.stderr).toMatch(/^tsmpiexec: .*could not be started: EMFILE/m);
    expect(r.stderr).not.toMatch(/\n\s+at |internal error|Unhandled/);
    for (const l of r.stderr.trim().split('\n')) expect(l).toMatch(/^tsmpiexec: /);
  });
});

describe('200 consecutive short jobs', () => {
  it('each ends as it should, and afterwards nothing of any of them is left on the host', async () => {
    const xdg = fs.mkdtempSync(path.join(work, 'xdg-'));
    fs.chmodSync(xdg, 0o700);
    const out = path.join(work, 'out');
    fs.mkdirSync(out);
    /** Every process of every job inherits this, on top of runTsmpiexec's per-run marker. */
    const soak = randomUUID();
    const kinds: Array<{ args: string[]; code: number; check?: (r: RunResult) => void }> = [
      { args: ['-n', '2', 'true'], code: 0 },
      { args: ['-n', '2', exchange], code: 0, check: (r) => expect(r.stdout).toBe('pmi-exchange ok size=2 gets=8\n') },
      // pmi_exchange speaks PMI_FD only; pmi-check also PMI_PORT
      { args: ['--pmi-transport', 'unix', '-n', '2', process.execPath, BIN, 'pmi-check'], code: 0, check: (r) => expect(r.stdout).toMatch(/^pmi-check: OK: 2 ranks/m) },
      { args: ['--pmi-transport', 'tcp', '-n', '2', process.execPath, BIN, 'pmi-check'], code: 0, check: (r) => expect(r.stdout).toMatch(/^pmi-check: OK: 2 ranks/m) },
      { args: ['-n', '2', 'sh', '-c', 'if [ $PMI_RANK = 1 ]; then exit 3; fi; sleep 30'], code: 3 },
      { args: ['-outfile-pattern', `${out}/%r`, '-n', '2', 'sh', '-c', 'echo $PMI_RANK'], code: 0, check: () => expect(fs.readFileSync(`${out}/1`, 'utf8')).toBe('1\n') },
    ];
    const runs = 200;
    for (let i = 0; i < runs; i++) {
      const k = kinds[i % kinds.length] as (typeof kinds)[number];
      const r = await runTsmpiexec(k.args, { timeoutMs: 60_000, env: { ...NO_OUTER_PMI, XDG_RUNTIME_DIR: xdg, TSMPI_HARDENING_SOAK: soak } });
      if (r.pid !== undefined) jobs.pids.push(r.pid);
      expect(r.code, `run ${i} (${k.args.join(' ')}): ${r.stderr}`).toBe(k.code);
      k.check?.(r);
    }
    expect(jobs.pids).toHaveLength(runs);
    // processes: none of the 200 jobs' (the afterEach also checks cgroups, mounts, temp dirs, /dev/shm of all 200)
    const soakers = (): string[] =>
      fs.readdirSync('/proc').filter((d) => {
        if (!/^\d+$/.test(d)) return false;
        try {
          return fs.readFileSync(`/proc/${d}/environ`).includes(`TSMPI_HARDENING_SOAK=${soak}`);
        } catch {
          return false;
        }
      });
    let survivors = soakers();
    for (let t = 0; t < 50 && survivors.length > 0; t++) {
      await new Promise((r) => setTimeout(r, 100));
      survivors = soakers();
    }
    expect(survivors, 'processes of the 200 jobs still running').toEqual([]);
    expect(fs.readdirSync(xdg), 'PMI socket directories left in XDG_RUNTIME_DIR').toEqual([]);
    // (A listening socket cannot outlive the job without a process of the job holding it: the check above
    // covers TCP; UNIX sockets would also leave their directory in XDG_RUNTIME_DIR.)
  }, 400_000);
});
