// Hardening on one host, through bin/tsmpiexec as a user runs it: faults from outside (a rank SIGKILLed by
// someone else, stdin closed, a full file system under -outfile-pattern), odd but legal input (100 000 program
// arguments, an argument list the kernel refuses), the environment of an outer launcher, and ranks that abuse
// the PMI wire protocol. Each case: one clear line, the documented status, no stack trace, no hang, and at the
// end nothing of the job left (processes, cgroups, mounts, temp dirs). The catalogue is docs/reliability.md.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, FIX, killLive, runTsmpiexec, type RunOptions, type RunResult } from '../helpers/run.js';
import { JobLeaks } from '../fixtures/hardening/leaks.js';

const isRoot = process.getuid?.() === 0;
const EVIL = path.resolve('test/fixtures/hardening/pmi-evil.cjs');
const NODE = process.execPath;
/** No PMI variables from whatever runs the tests (a test below sets its own). */
const NO_OUTER_PMI = { PMI_FD: '', PMI_PORT: '', PMI_ID: '', PMI_RANK: '', PMI_SIZE: '' };
const STACK = /\n\s+at /;
const jobs = new JobLeaks();
let work: string;

async function run(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await runTsmpiexec(args, { timeoutMs: 45_000, ...opts, env: { ...NO_OUTER_PMI, ...opts.env } });
  jobs.note(r);
  return r;
}

/** Every stderr line is ours (`tsmpiexec: ...`) or a rank's own; never a stack trace or an internal error. */
function expectClean(r: RunResult): void {
  expect(r.stderr).not.toMatch(STACK);
  expect(r.stderr).not.toMatch(/internal error|this is a bug/);
}

beforeAll(() => {
  if (!fs.existsSync('dist/main.js')) throw new Error('dist/main.js is missing: run `make build` first (make test does)');
  if (!fs.existsSync(path.join(FIX, 'hello'))) throw new Error(`MPI fixtures are missing in ${FIX}: is mpicc.mpich installed? (make system-deps)`);
  // Not under /tmp: ranks may run in a private /tmp and must still see these files.
  fs.mkdirSync('build', { recursive: true });
  work = fs.mkdtempSync(path.resolve('build/hardening-faults-'));
  return () => fs.rmSync(work, { recursive: true, force: true });
});

afterEach(async () => {
  killLive();
  const left = await jobs.sweep();
  expect(left.processes, 'processes of the job left behind').toEqual([]);
  expect(left.residue, 'cgroups, mounts or temp dirs of the job left behind').toEqual([]);
});

describe('faults from outside', () => {
  it('a rank SIGKILLed by someone else: status 137, the rank and the signal named, the others terminated', async () => {
    const pidFile = path.join(work, 'rank1.pid');
    let killed = false;
    const r = await run(['-n', '3', 'sh', '-c', `if [ $PMI_RANK = 1 ]; then echo $$ > ${pidFile}; fi; echo up; sleep 60`], {
      onStdout: () => {
        if (killed || !fs.existsSync(pidFile)) return;
        const pid = Number(fs.readFileSync(pidFile, 'utf8'));
        if (!pid) return;
        killed = true;
        process.kill(pid, 'SIGKILL');
      },
    });
    expect(killed).toBe(true);
    expect(r.code).toBe(137);
    expect(r.stderr).toMatch(/^tsmpiexec: rank 1 on \S+ was killed by SIGKILL \(signal 9\): terminating the other 2 ranks$/m);
    expect(r.ms, 'the others were not waited for (they sleep 60 s)').toBeLessThan(30_000);
    expectClean(r);
  });

  it('stdin closed at once: ranks reading stdin get EOF and the job ends', async () => {
    const r = await run(['-l', '--stdin', 'all', '-n', '2', 'sh', '-c', 'n=$(wc -c); echo "read $n bytes"'], { timeoutMs: 30_000 });
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n').sort().filter(Boolean)).toEqual(['[0] read 0 bytes', '[1] read 0 bytes']);
    expect(r.stderr).toBe('');
  });

  it('no stdin at all (fd 0 closed when tsmpiexec starts): EOF for the rank, no hang, no error', async () => {
    const r = await run(['-l', '-n', '2', 'sh', '-c', 'cat; echo "eof $PMI_RANK"'], { wrap: ['sh', '-c', 'exec "$@" <&-', 'sh'], timeoutMs: 30_000 });
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n').sort().filter(Boolean)).toEqual(['[0] eof 0', '[1] eof 1']);
    expectClean(r);
  });

  /** Runs tsmpiexec in a private mount namespace where `dir` is a 1 MiB tmpfs (the host never sees the mount). */
  const onFullFs = (dir: string, redirect = ''): string[] => [
    'unshare', '--mount', '--propagation', 'private', 'sh', '-c', `mount -t tmpfs -o size=1m tsmpi-hardening-full '${dir}' && exec "$@"${redirect}`, 'sh',
  ];
  const FLOOD = ['sh', '-c', 'head -c 8000000 /dev/zero | tr "\\0" a | fold -w 100'];

  it.runIf(isRoot)('-outfile-pattern on a full file system: one line naming the file and ENOSPC, status 74, no crash', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsmpi-full-'));
    try {
      const r = await run(['-n', '4', '-outfile-pattern', `${dir}/out.%r`, ...FLOOD], { wrap: onFullFs(dir) });
      expect(r.code).toBe(74);
      const lines = r.stderr.split('\n').filter((l) => /cannot write/.test(l));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(new RegExp(`^tsmpiexec: cannot write rank output to ${dir}/out\\.\\d: ENOSPC$`));
      expect(r.ms, 'the flooding ranks were stopped').toBeLessThan(30_000);
      expectClean(r);
      expect(fs.readdirSync(dir), 'the tmpfs lived only in the private mount namespace').toEqual([]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  // A write error other than EPIPE on tsmpiexec's own stdout or stderr is lost output: status 74, as for
  // -outfile-pattern (it used to be taken for a vanished reader, 141, or ignored, 0).
  it.runIf(isRoot)('stdout redirected to a full file system: status 74 and a line naming ENOSPC', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsmpi-full-'));
    try {
      const r = await run(['-n', '2', ...FLOOD], { wrap: onFullFs(dir, ` > '${dir}/stdout'`) });
      expect(r.code).toBe(74);
      expect(r.stderr).toMatch(/^tsmpiexec: cannot write .*ENOSPC/m);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it.runIf(isRoot)('stderr redirected to a full file system: status 74, not a silent 0', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsmpi-full-'));
    try {
      const r = await run(['-n', '2', 'sh', '-c', `${FLOOD[2]} >&2`], { wrap: onFullFs(dir, ` 2> '${dir}/stderr'`) });
      expect(r.code).toBe(74);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('odd but legal input', () => {
  it('100 000 program arguments reach every rank', async () => {
    const args = Array.from({ length: 100_000 }, (_, i) => `a${i}`);
    const r = await run(['-n', '2', 'sh', '-c', 'echo "$# $1 ${100000}"', 'sh', ...args]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('100000 a0 a99999\n'.repeat(2));
    expect(r.stderr).toBe('');
  });

  it('an argument list the kernel refuses (E2BIG, ~5 MB from a config file): one line naming E2BIG, status 125', async () => {
    const cfg = path.join(work, 'huge.cfg');
    const words = Array.from({ length: 300_000 }, (_, i) => `argument-number-${i}`).join(' ');
    fs.writeFileSync(cfg, `-n 2 sh -c "echo never" ${words}\n`);
    const r = await run(['-configfile', cfg]);
    expect(r.code, r.stderr).toBe(125);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^tsmpiexec: rank \d on \S+ could not be started: spawn E2BIG/m);
    for (const l of r.stderr.trim().split('\n')) expect(l).toMatch(/^tsmpiexec: /);
    expectClean(r);
  });
});

describe('inside an outer launcher (its PMI_* variables and PMI fd are inherited)', () => {
  const OUTER = { PMI_FD: '99', PMI_PORT: 'elsewhere.invalid:1', PMI_RANK: '5', PMI_SIZE: '9', PMI_ID: '5', PMI_KVSNAME: 'kvs_outer', PMI_JOBID: 'outer', PMI_SPAWNED: '1' };
  /** Like Hydra: a real socket-ish fd 99 is open when tsmpiexec starts. */
  const withFd99 = ['bash', '-c', 'exec 99</dev/null; exec "$@"', 'bash'];

  it.each([['PMI_FD', []], ['-pmi-port', ['-pmi-port']]])('MPI hello over %s talks to our server, with our ranks and size', async (_t, extra) => {
    const r = await run([...extra, '-n', '3', path.join(FIX, 'hello')], { env: OUTER, wrap: withFd99 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (let i = 0; i < 3; i++) expect(r.stdout).toContain(`hello from rank ${i} of 3 on ${os.hostname()} (allreduce sum 3, expected 3)`);
  });

  it('pmi-check ranks see our PMI_FD, not the outer 99', async () => {
    const r = await run(['-n', '2', NODE, BIN, 'pmi-check'], { env: OUTER, wrap: withFd99 });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^pmi-check: rank 1 of 2 on \S+ \(pid \d+, PMI_FD\)/m);
    expect(r.stdout).toMatch(/^pmi-check: OK: 2 ranks/m);
  });
});

describe('a rank that abuses the PMI wire protocol over PMI_FD (the others run pmi-check)', () => {
  const cases: Array<[string, RegExp]> = [
    ['garbage', /garbage: neither a PMI-1 line nor a PMI-2 length header/],
    ['oversized', /PMI-1 line longer than 65536 bytes/],
    ['v2-unknown', /unknown PMI-2 command bogus/],
  ];
  it.each(cases)('%s: the connection is dropped with one line, the job ends at once with status 76 (a PMI protocol error)', async (mode, why) => {
    // pmi-check's own reply timeout (60 s) is longer than the test's deadline: a hang fails the test.
    const r = await run(['-n', '1', NODE, EVIL, mode, ':', '-n', '2', NODE, BIN, 'pmi-check'], { timeoutMs: 45_000 });
    expect(r.code, r.stderr).toBe(76);
    const pmiLines = r.stderr.split('\n').filter((l) => l.includes('PMI protocol error'));
    expect(pmiLines, r.stderr).toHaveLength(1);
    expect(pmiLines[0]).toMatch(/^tsmpiexec: PMI protocol error from rank 0 on \S+: /);
    expect(pmiLines[0]).toMatch(why);
    expect(pmiLines[0]).toMatch(/: terminating the other 2 ranks$/);
    // the rank's own end afterwards is not a second story
    expect(r.stderr).not.toMatch(/exited without calling MPI_Finalize|SIGPIPE/);
    expectClean(r);
  });

  it('commands before init are refused with an error reply; the same connection then completes a normal exchange', async () => {
    const r = await run(['-n', '1', NODE, EVIL, 'order', BIN, ':', '-n', '2', NODE, BIN, 'pmi-check']);
    expect(r.stdout).toMatch(/^evil: refused before init: true \(cmd=barrier_out rc=-1 .*\| cmd=get_result rc=-1 .*\| cmd=finalize_ack rc=-1 /m);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^pmi-check: OK: 3 ranks/m);
    expect(r.stderr).toBe('');
  });
});
