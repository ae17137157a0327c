// Every MPI, not only MPICH: Debian's Open MPI 4.1 programs (built here with mpicc.openmpi) and Debian's mpi4py
// (built against Open MPI) run as one job under bin/tsmpiexec, on one host over PMI_FD, TCP and UNIX PMI
// transports, across test-bed hosts over ssh; and an MPI program whose ranks never reach our PMI server fails
// in one line instead of passing as N one-rank jobs.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FIX, hasCommand, killLive, leftovers, NO_OUTER_PMI, runHydra, runTsmpiexec, tmpEntries, type RunOptions, type RunResult } from '../helpers/run.js';
import { useBed } from '../helpers/testbed.js';

const has = hasCommand;
const fx = (name: string): string => path.join(FIX, name);
const LIB = path.resolve('dist/native/libtsmpiexec-pmi.so');
const PY = '/usr/bin/python3';
const MPI4PY = '/usr/lib/python3/dist-packages/mpi4py';
// Open MPI refuses to run as root unless told it may (CI runs as root); a user's job needs none of this.
const ROOT_OK = { OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1' };
// This file is about the PMI-1 route (Open MPI's flux component and our PMI library): where the PMIx server is
// built, auto would take PMIx instead (test/e2e/openmpi-pmix.test.ts), so it is withheld here.
const PMI1_ROUTE = { TSMPIEXEC_PMIX_SERVER: '' };
const missing = !has('mpicc.openmpi') ? 'Open MPI (mpicc.openmpi) is not installed' : !fs.existsSync(LIB) ? `the PMI library is not built (${LIB})` : undefined;
// CI installs Open MPI and a C compiler: there, nothing here may be skipped
const skip = missing !== undefined && process.env.CI !== 'true';

const MPI4PY_HELLO =
  'from mpi4py import MPI\n' +
  'c = MPI.COMM_WORLD\n' +
  's = c.allreduce(c.Get_rank() + 1)\n' +
  'print(f"mpi4py rank {c.Get_rank()} of {c.Get_size()} sum {s}", flush=True)\n';

let markers: string[] = [];
/** Launcher pids of this file's jobs: their temporary names carry them. */
const pids: string[] = [];
let tmpBefore: string[] = [];
let shmBefore: string[] = [];
let ompiTmpBefore: string[] = [];

async function run(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await runTsmpiexec(args, { timeoutMs: 60_000, ...opts, env: { ...NO_OUTER_PMI, ...ROOT_OK, ...PMI1_ROUTE, ...opts.env } });
  markers.push(r.marker);
  if (r.pid !== undefined) pids.push(String(r.pid));
  return r;
}

function hellos(out: string, n: number): void {
  const sum = (n * (n - 1)) / 2;
  for (let i = 0; i < n; i++) expect(out).toContain(`hello from rank ${i} of ${n} on `);
  expect(out.match(/allreduce sum (\d+), expected (\d+)/g)?.length).toBe(n);
  expect(out).not.toMatch(new RegExp(`allreduce sum (?!${sum},)`));
}

describe.skipIf(skip)('Open MPI and mpi4py as one job (skipped only without Open MPI or the PMI library, and CI unset)', () => {
  beforeAll(() => {
    if (missing) throw new Error(missing);
    if (!fs.existsSync(fx('ompi-hello'))) throw new Error(`Open MPI fixtures are missing in ${FIX}`);
    tmpBefore = tmpEntries();
    shmBefore = fs.readdirSync('/dev/shm');
    ompiTmpBefore = fs.readdirSync('/tmp').filter((e) => e.startsWith('ompi.'));
  });

  afterEach(async () => {
    killLive();
    const mine = markers;
    markers = [];
    for (const m of mine) expect(await leftovers(m, 10_000), 'processes of the job left behind').toEqual([]);
  });

  afterAll(() => {
    expect(tmpEntries().filter((e) => !tmpBefore.includes(e) && pids.some((p) => e.includes(p))), 'temporary files left behind').toEqual([]);
    // Open MPI's shared-memory segments live in the job's private /dev/shm and go with it
    expect(fs.readdirSync('/dev/shm').filter((e) => !shmBefore.includes(e) && /^(vader|sm_|ompi|opal)/.test(e))).toEqual([]);
    // and its session directories (/tmp/ompi.HOST.UID) in the job's private /tmp
    expect(fs.readdirSync('/tmp').filter((e) => e.startsWith('ompi.') && !ompiTmpBefore.includes(e))).toEqual([]);
  });

  it('Open MPI hello + allreduce at -n 2 and -n 4 over PMI_FD: every rank sees the whole world', async () => {
    for (const n of [2, 4]) {
      const r = await run(['-n', String(n), fx('ompi-hello')]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      hellos(r.stdout, n);
    }
  });

  it('Open MPI hello over -pmi-port (TCP) and --pmi-transport unix', async () => {
    for (const t of [['-pmi-port'], ['--pmi-transport', 'unix']]) {
      // a runtime directory of its own, so the unix socket's directory never shows up in another file's checks
      const xdg = fs.mkdtempSync(path.join(os.tmpdir(), 'ompi-xdg-'));
      const r = await run([...t, '-n', '4', fx('ompi-hello')], { env: { XDG_RUNTIME_DIR: xdg } });
      expect(fs.readdirSync(xdg), 'left in XDG_RUNTIME_DIR').toEqual([]);
      fs.rmSync(xdg, { recursive: true, force: true });
      expect(r.stderr, t.join(' ')).toBe('');
      expect(r.code).toBe(0);
      hellos(r.stdout, 4);
    }
  });

  it('passes 1 MiB messages around an Open MPI ring of 4 ranks', async () => {
    const r = await run(['-n', '4', fx('ompi-ring'), '2']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('ring: 4 ranks, 2 laps of 1048576 bytes, 0 bad');
  });

  it('carries Open MPI\'s values that hold spaces whole (the library encodes them; the server would refuse them raw)', async () => {
    const r = await run(['-n', '2', '-genv', 'TSMPIEXEC_PMI_DEBUG', '1', fx('ompi-hello')]);
    expect(r.code).toBe(0);
    hellos(r.stdout, 2);
    // the library's trace shows what went on the wire: encoded puts (a value that needed it starts %$)
    expect(r.stderr).toMatch(/value=%\$/);
    expect(r.stderr).not.toMatch(/refused/);
  });

  it('ends an Open MPI job whose rank calls MPI_Abort with that code', async () => {
    const r = await run(['-n', '3', fx('ompi-abort'), '9']);
    expect(r.code).toBe(9);
    expect(r.stderr).toMatch(/rank 1 on \S+ called MPI_Abort with code 9/);
  });

  it.runIf(fs.existsSync(MPI4PY))('mpi4py at -n 3: ranks 0..2 of 3 and a right allreduce (skipped only without Debian\'s mpi4py)', async () => {
    const r = await run(['-n', '3', PY, '-c', MPI4PY_HELLO]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n').sort()).toEqual([0, 1, 2].map((i) => `mpi4py rank ${i} of 3 sum 6`));
  });

  it.runIf(has('mpiexec.hydra'))('the same library runs Open MPI under mpiexec.hydra too (skipped only without mpiexec.hydra)', async () => {
    const marker = randomUUID();
    markers.push(marker);
    const res = await runHydra(['-n', '4', '-genv', 'FLUX_JOB_ID', '65537', '-genv', 'FLUX_PMI_LIBRARY_PATH', LIB, fx('ompi-hello')], marker, ROOT_OK);
    expect(res.code, res.stderr).toBe(0);
    hellos(res.stdout, 4);
  });

  it('--report accounts for every Open MPI rank', async () => {
    const r = await run(['--report', '-n', '2', fx('ompi-hello')]);
    expect(r.code).toBe(0);
    hellos(r.stdout, 2);
    expect(r.stderr).toMatch(/^RANK +HOST +EXIT/m);
    expect(r.stderr).toMatch(/^0 +\S+ +0 /m);
    expect(r.stderr).toMatch(/^1 +\S+ +0 /m);
  });

  it('--dry-run and --verbose say which MPI each program uses', async () => {
    const dry = await run(['--dry-run', '-n', '2', fx('ompi-hello'), ':', '-n', '1', fx('hello'), ':', '-n', '1', 'hostname']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain(`MPI of ${fx('ompi-hello')}: openmpi (libmpi.so.40)`);
    expect(dry.stdout).toContain(`MPI of ${fx('hello')}: mpich (libmpich.so.12)`);
    expect(dry.stdout).toContain('MPI of hostname: none (no MPI library linked)');
    const v = await run(['--verbose', '-n', '2', fx('ompi-hello')]);
    expect(v.code).toBe(0);
    expect(v.stderr).toContain(`MPI: ${fx('ompi-hello')}: Open MPI (libmpi.so.40); ranks load the PMI library through Open MPI's flux component`);
  });

  describe('never a silent singleton', () => {
    it('--mpi mpich forced on an Open MPI program: one line naming the cause, status 1, not 0', async () => {
      const r = await run(['--mpi', 'mpich', '-n', '2', fx('ompi-hello')]);
      expect(r.code).toBe(1);
      expect(r.stdout).toContain('hello from rank 0 of 1');
      const lines = r.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^tsmpiexec: rank \d on \S+ \(\S+ompi-hello, an MPI program\) ended without ever contacting the PMI server: it ran as a one-rank job of its own, not as rank \d of 2; it uses Open MPI \(libmpi\.so\.40\): leave out --mpi mpich$/);
    });

    it('the library withheld: one line before anything starts, no rank runs', async () => {
      const r = await run(['-n', '2', fx('ompi-hello')], { env: { TSMPIEXEC_PMI_LIBRARY: '' } });
      expect(r.code).toBe(125);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^tsmpiexec: Open MPI ranks join a job only through tsmpiexec's PMI library, and TSMPIEXEC_PMI_LIBRARY is empty/);
      expect(r.stderr).toMatch(/hint: /);
    });

    it('Open MPI told not to use its flux component (OMPI_MCA_pmix=^flux): the job fails, never passes as singletons', async () => {
      const r = await run(['-n', '2', '-genv', 'OMPI_MCA_pmix', '^flux', fx('ompi-hello')]);
      expect(r.code).not.toBe(0);
      expect(r.stdout).not.toContain('of 1 on');
    });

    it.runIf(fs.existsSync(MPI4PY))('mpi4py with the library withheld at -n 3 does not pass (skipped only without Debian\'s mpi4py)', async () => {
      const r = await run(['-n', '3', PY, '-c', MPI4PY_HELLO], { env: { TSMPIEXEC_PMI_LIBRARY: '' } });
      expect(r.code).not.toBe(0);
      expect(r.stdout).toBe('');
    });

    it('non-MPI programs and one-rank MPI jobs are not affected', async () => {
      const h = await run(['-n', '4', 'hostname']);
      expect(h.code).toBe(0);
      expect(h.stdout.trim().split('\n')).toHaveLength(4);
      const one = await run(['--mpi', 'mpich', '-n', '1', fx('ompi-hello')]);
      expect(one.code).toBe(0);
      expect(one.stdout).toContain('hello from rank 0 of 1');
      const py = await run(['-n', '2', PY, '-c', 'print("plain python")']);
      expect(py.code).toBe(0);
    });
  });
});

describe.skipIf(skip)('Open MPI across test-bed hosts (skipped only without Open MPI or the PMI library, and CI unset)', () => {
  const onBed = useBed(2, 'tsom', { ...NO_OUTER_PMI, ...ROOT_OK, ...PMI1_ROUTE }, () => missing).run;

  it('runs Open MPI hello at -n 4 on two hosts over ssh, over PMI_FD and TCP', async () => {
    for (const t of [[], ['-pmi-port']]) {
      const r = await onBed([...t, '-hosts', 'h1,h2', '-n', '4', fx('ompi-hello')]);
      expect(r.stderr, t.join(' ')).toBe('');
      expect(r.code).toBe(0);
      hellos(r.stdout, 4);
      for (let i = 0; i < 4; i++) expect(r.stdout).toContain(`hello from rank ${i} of 4 on h${(i % 2) + 1} `);
    }
  });

  it('passes the ring across the hosts', async () => {
    const r = await onBed(['-hosts', 'h1:2,h2:2', '-n', '4', fx('ompi-ring'), '2']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('ring: 4 ranks, 2 laps of 1048576 bytes, 0 bad');
  });

  it.runIf(fs.existsSync(MPI4PY))('runs mpi4py at -n 3 across the hosts (skipped only without Debian\'s mpi4py)', async () => {
    const r = await onBed(['-hosts', 'h1,h2', '-n', '3', PY, '-c', MPI4PY_HELLO]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n').sort()).toEqual([0, 1, 2].map((i) => `mpi4py rank ${i} of 3 sum 6`));
  });
});
