// Bad input through the real binary: every option of the table with missing, empty, negative, zero, non-numeric
// and absurd values (the cases test/unit/fuzz-cli.test.ts checks on parseArgs, generated from OPTIONS), host
// files with garbage, only comments, duplicates and unresolvable names, broken batch-system variables, and
// absurd job sizes. Each: one line `tsmpiexec: ...` (plus a `hint:` line), a documented status, no stack trace,
// no hang, nothing started, nothing left behind.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { OPTIONS } from '../../src/cli/options.js';
import { MAX_JOB_RANKS } from '../../src/placement/place.js';
import { killLive, runTsmpiexec, type RunOptions, type RunResult } from '../helpers/run.js';
import { badValueCases } from '../fixtures/hardening/option-cases.js';
import { JobLeaks } from '../fixtures/hardening/leaks.js';

/** Statuses a refused command line may have (README "Exit status"): 2 usage, 125 the program or a host could not be started. */
const REFUSED = [2, 125];
const jobs = new JobLeaks();
let work: string;
/** A program that must never run: status 2 means nothing was launched, and 125 names this path. */
let never: string;

async function run(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  // NO_COLOR: the checks below look for control characters in what reaches the terminal
  const r = await runTsmpiexec(args, { timeoutMs: 30_000, ...opts, env: { NO_COLOR: '1', ...opts.env } });
  jobs.note(r);
  return r;
}

/** One error line, possibly a hint line; no stack, nothing on stdout, a documented status. */
function expectRefused(r: RunResult, what: string): void {
  expect(REFUSED, `${what}: status ${r.code}, stderr ${r.stderr}`).toContain(r.code);
  expect(r.stderr, what).not.toMatch(/\n\s+at /);
  expect(r.stderr, what).not.toMatch(/internal error|this is a bug/);
  expect(r.stdout, what).toBe('');
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines[0], what).toMatch(/^tsmpiexec: /);
  if (r.code === 2) {
    expect(lines.length, `${what}: ${r.stderr}`).toBeLessThanOrEqual(2);
    if (lines[1] !== undefined) expect(lines[1], what).toMatch(/^hint: /);
  } else {
    for (const l of lines) expect(l, what).toMatch(/^(tsmpiexec|hint): /);
  }
  // control characters of the input never reach the terminal
  expect(r.stderr.replace(/\n/g, ''), what).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
}

beforeAll(() => {
  if (!fs.existsSync('dist/main.js')) throw new Error('dist/main.js is missing: run `make build` first (make test does)');
  fs.mkdirSync('build', { recursive: true });
  work = fs.mkdtempSync(path.resolve('build/hardening-input-'));
  never = path.join(work, 'never-run');
});

afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

afterEach(async () => {
  killLive();
  const left = await jobs.sweep();
  expect(left.processes, 'processes left behind').toEqual([]);
  expect(left.residue, 'cgroups, mounts or temp dirs left behind').toEqual([]);
});

/** Runs `fn` over `items`, `width` at a time (the whole table takes a few seconds instead of a minute). */
async function pool<T>(items: readonly T[], width: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

describe('every option of the table with bad values, through bin/tsmpiexec', () => {
  it('each case is refused (or, where the value is legal, fails only on the missing program) with one clean line', async () => {
    const cases = badValueCases(OPTIONS);
    expect(cases.length).toBeGreaterThan(150);
    const accepted: string[] = [];
    await pool(cases, 4, async (c) => {
      const argv = c.argv.map((a) => (a === './a' ? never : a === 'hosts' ? path.join(work, 'hosts') : a));
      const r = await run(argv, { env: c.env ?? {} });
      expectRefused(r, c.title);
      if (c.expect === 'error') expect(r.code, `${c.title}: ${r.stderr}`).toBe(2);
      if (r.code !== 2) accepted.push(c.title);
      if (r.code === 125) expect(r.stderr, c.title).toContain(never);
    });
    // The legal-but-odd values that got as far as looking for the program: only 'either' cases.
    for (const t of accepted) expect(cases.find((c) => c.title === t)?.expect, t).toBe('either');
    // about 200 whole launches, four at a time, on a 2-CPU machine that runs other test files meanwhile
  }, 240_000);
});

describe('host lists and host files', () => {
  const hostFile = (name: string, text: string | Buffer): string => {
    const p = path.join(work, name);
    fs.writeFileSync(p, text);
    return p;
  };

  const refused: Array<[string, () => string[], RegExp]> = [
    ['an empty -hosts ,', () => ['-hosts', ',', never], /empty host list/],
    ['-hosts with only blanks', () => ['-hosts', '  ', never], /empty host list/],
    ['a host file with a garbage line', () => ['-f', hostFile('garbage', 'n1\nn2 cpus=4\n'), never], /garbage:2: unknown word 'cpus=4'/],
    ['a host file of binary junk', () => ['-f', hostFile('binary', Buffer.from([0, 1, 2, 0x1b, 0x5b, 0x32, 0x4a, 0xff, 0x0a])), never], /binary:1: host name '\\x00\\x01\\x02\\x1b\[2J/],
    ['a host file of only comments', () => ['-f', hostFile('comments', '# nothing\n\n   # here\n'), never], /host file names no host/],
    ['an empty host file', () => ['-f', hostFile('empty', ''), never], /host file names no host/],
    ['a host file that is a directory', () => ['-f', work, never], /cannot read host file: EISDIR/],
    ['a missing host file', () => ['-f', path.join(work, 'missing'), never], /cannot read host file: ENOENT/],
    ['a host range in a host file', () => ['-f', hostFile('range', 'n[1-4]\n'), never], /range:1: .*range/],
  ];
  it.each(refused)('%s', async (title, argv, why) => {
    const r = await run(argv());
    expectRefused(r, title);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(why);
  });

  it('duplicates in a host file merge into one host with the slots added up', async () => {
    const r = await run(['--dry-run', '-f', hostFile('dups', 'a:2\nb\na\na slots=3\n'), never]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^a\s+6\s+0-5$/m);
    expect(r.stdout).toMatch(/^b\s+1\s+6$/m);
  });

  it('an unresolvable host name: the launch fails within the bound, naming the host (status 125)', async () => {
    const r = await run(['-f', hostFile('unresolvable', 'no-such-host.invalid:2\n'), '-n', '1', 'true'], { timeoutMs: 60_000 });
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/^tsmpiexec: cannot start the proxy on no-such-host\.invalid: /m);
    expectRefused(r, 'unresolvable');
  });
});

describe('absurd sizes and broken batch-system variables', () => {
  const refused: Array<[string, string[], Record<string, string>, RegExp]> = [
    ['-n 2147483647 (a C int, too many to plan)', ['-n', '2147483647', 'true'], {}, new RegExp(`at most ${MAX_JOB_RANKS}`)],
    ['--dry-run -n 2147483647', ['--dry-run', '-n', '2147483647', 'true'], {}, new RegExp(`at most ${MAX_JOB_RANKS}`)],
    ['two segments adding up past the limit', ['-n', String(MAX_JOB_RANKS), 'true', ':', '-n', '1', 'true'], {}, /the -n of the segments/],
    ['a slot count of 2147483647 without -n', ['-hosts', 'a:2147483647', '--dry-run', 'true'], {}, /slot counts/],
    ['SLURM_JOB_NODELIST unclosed', ['--dry-run', 'true'], { SLURM_JOB_ID: '7', SLURM_JOB_NODELIST: 'n[1-', SLURM_TASKS_PER_NODE: '2' }, /SLURM_JOB_NODELIST: unclosed/],
    ['SLURM_TASKS_PER_NODE garbage', ['--dry-run', 'true'], { SLURM_JOB_ID: '7', SLURM_JOB_NODELIST: 'n[1-2]', SLURM_TASKS_PER_NODE: '2(x' }, /SLURM_TASKS_PER_NODE/],
    ['SLURM_JOB_NODELIST of 10^6 hosts', ['--dry-run', 'true'], { SLURM_JOB_ID: '7', SLURM_JOB_NODELIST: 'n[1-1000000]', SLURM_TASKS_PER_NODE: '1(x1000000)' }, /more than/],
    ['PBS_NODEFILE missing', ['--dry-run', 'true'], { PBS_JOBID: '3', PBS_NODEFILE: '/nonexistent/nodefile' }, /PBS_NODEFILE: cannot read/],
  ];
  it.each(refused)('%s', async (title, argv, env, why) => {
    const r = await run(argv, { env });
    expectRefused(r, title);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(why);
    expect(r.ms, 'refused before anything was planned').toBeLessThan(20_000);
  });

  it('-ppn 2147483647 and a huge slot count with a small -n run normally', async () => {
    const r = await run(['-ppn', '2147483647', '-n', '2', 'true']);
    expect(r.code).toBe(0);
    const d = await run(['--dry-run', '-hosts', 'a:2147483647,b:2147483647', '-n', '3', 'true']);
    expect(d.code).toBe(0);
    expect(d.stdout).toMatch(/^a\s+3\s+0-2$/m);
  });
});
