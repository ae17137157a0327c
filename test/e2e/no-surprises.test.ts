// Defaults that never silently break a job, through bin/tsmpiexec on this host: programs found with the
// launcher's PATH when the ranks have none, output directories checked before anything starts, host names
// longer than DNS allows refused in one line.
import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FIX, runHydra, trackedJobs } from '../helpers/run.js';

const jobs = trackedJobs();

afterEach(async () => {
  expect(await jobs.leftovers(), 'processes of the job left behind').toEqual([]);
});

describe('the environment asked for, and the program found anyway', () => {
  it('-genvnone: hostname is found with the launcher\'s PATH, and the rank sees no variable of the launcher\'s', async () => {
    const h = await jobs.run(['-genvnone', '-n', '1', 'hostname']);
    expect(h.stderr).toBe('');
    expect(h.code).toBe(0);
    expect(h.stdout.trim()).toBe(os.hostname());
    const e = await jobs.run(['-genvnone', '-n', '1', 'env'], { env: { SURPRISE_VAR: 'x' } });
    expect(e.code).toBe(0);
    const names = e.stdout.trim().split('\n').map((l) => l.split('=')[0]);
    expect(names).not.toContain('PATH');
    expect(names).not.toContain('HOME');
    expect(names).not.toContain('SURPRISE_VAR');
    expect(names).toContain('PMI_RANK');
  });

  it('-genvlist HOME: env is found, and the rank gets HOME and nothing else of the launcher\'s', async () => {
    const e = await jobs.run(['-genvlist', 'HOME', '-n', '1', 'env'], { env: { SURPRISE_VAR: 'x' } });
    expect(e.code).toBe(0);
    expect(e.stdout).toMatch(/^HOME=/m);
    expect(e.stdout).not.toMatch(/^(PATH|SURPRISE_VAR)=/m);
  });
});

describe('checked before anything starts', () => {
  it('-outfile-pattern into a missing directory: exit 2, one line and a hint, no rank started', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsmpi-nosurp-'));
    try {
      const flag = path.join(dir, 'started');
      const r = await jobs.run(['-outfile-pattern', 'nodir/o.%r', '-n', '2', 'sh', '-c', `touch ${flag}`], { cwd: dir });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^tsmpiexec: the directory of output file \S+\/nodir\/o\.0 does not exist \(-outfile-pattern nodir\/o\.%r\)/);
      expect(r.stderr).toMatch(/\nhint: create \S+nodir first/);
      expect(fs.existsSync(flag)).toBe(false);
      const e = await jobs.run(['-errfile-pattern', `${flag}/e.%r`, '-n', '1', 'true'], { cwd: dir });
      expect(e.code).toBe(2);
      expect(e.stderr).toContain('-errfile-pattern');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a host name longer than DNS allows: exit 2 with one line naming it', async () => {
    const label = 'n'.repeat(64);
    const r = await jobs.run(['-hosts', `${label}.example`, '-n', '1', 'true']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('has a part of 64 characters between dots; each part has at most 63');
  });
});

describe('one line per fact', () => {
  it('a failing rank is named once: by the notice when it fails, not again in the summary', async () => {
    const r = await jobs.run(['-n', '3', 'sh', '-c', 'exit 7']);
    expect(r.code).toBe(7);
    const lines = r.stderr.trim().split('\n');
    // every rank is accounted for exactly once over all lines ("rank 0 ... terminating", "ranks 1-2 ...")
    const named = lines.flatMap((l) => {
      const m = /^tsmpiexec: ranks? ([0-9,-]+) on /.exec(l);
      return (m?.[1] ?? '').split(',').flatMap((part) => {
        const [a, b] = part.split('-').map(Number);
        return b === undefined ? [a] : Array.from({ length: (b as number) - (a as number) + 1 }, (_, i) => (a as number) + i);
      });
    });
    expect(named.sort(), r.stderr).toEqual([0, 1, 2]);
  });

  it('one Ctrl-C on ranks that ignore it says that a second one kills at once; the second does', async () => {
    let child: import('node:child_process').ChildProcess | undefined;
    const p = jobs.run(['-n', '2', '-grace', '50', 'sh', '-c', "trap '' INT; echo up; exec sleep 60"], {
      onStdout: (_chunk, c) => {
        child = c;
      },
    });
    for (let i = 0; i < 200 && child === undefined; i++) await new Promise((res) => setTimeout(res, 25));
    await new Promise((res) => setTimeout(res, 300));
    child?.kill('SIGINT');
    await new Promise((res) => setTimeout(res, 1600));
    child?.kill('SIGINT');
    const r = await p;
    expect(r.stderr).toMatch(/interrupted: the ranks still running get 50 s to end before SIGKILL; press Ctrl-C again to kill them now/);
    expect(r.code).toBe(130);
    // killed by the second Ctrl-C, not after the 50 s grace
    expect(r.ms).toBeLessThan(30_000);
  });
});

describe('a deterministic exit status', () => {
  it('ranks exiting 0..3 after MPI_Finalize: nobody is killed, and the status is 3 every time', async () => {
    const prog = path.join(FIX, 'finalize-exit');
    if (!fs.existsSync(prog)) throw new Error(`MPI fixtures are missing in ${FIX}`);
    const codes: number[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await jobs.run(['-n', '4', prog]);
      codes.push(r.code ?? -1);
      expect(r.stderr, r.stderr).not.toMatch(/SIGTERM|terminating/);
      // the end summary still names every rank that did not exit 0, once
      for (const k of [1, 2, 3]) expect(r.stderr).toMatch(new RegExp(`^tsmpiexec: rank ${k} on \\S+: exited with code ${k}$`, 'm'));
    }
    expect(codes).toEqual([3, 3, 3, 3, 3, 3]);
  });
});

describe('--report-json tells the whole story', () => {
  it('carries the command line, the exit status, start and end times, and each rank\'s outcome', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsmpi-rj-'));
    try {
      const out = path.join(dir, 'r.json');
      const before = Date.now();
      const r = await jobs.run(['--report-json', out, '-n', '2', 'sh', '-c', 'exit $((PMI_RANK * 5))']);
      expect(r.code).toBe(5);
      const rep = JSON.parse(fs.readFileSync(out, 'utf8')) as {
        command_line: string[];
        exit_status: number;
        started_at: string;
        ended_at: string;
        ranks: Array<{ rank: number; outcome: string; exit_code: number | null; signal: string | null; start_ms: number | null; end_ms: number | null }>;
      };
      expect(rep.command_line).toEqual(['tsmpiexec', '--report-json', out, '-n', '2', 'sh', '-c', 'exit $((PMI_RANK * 5))']);
      expect(rep.exit_status).toBe(5);
      const t0 = Date.parse(rep.started_at);
      const t1 = Date.parse(rep.ended_at);
      expect(t0).toBeGreaterThanOrEqual(before - 1000);
      expect(t1).toBeGreaterThanOrEqual(t0);
      const byRank = new Map(rep.ranks.map((x) => [x.rank, x]));
      expect(byRank.get(1)).toMatchObject({ outcome: 'exited', exit_code: 5 });
      const zero = byRank.get(0);
      // rank 0 either exited 0 first or was ended by the SIGTERM that rank 1's failure sent
      expect(String(zero?.outcome === 'exited' ? zero.exit_code : zero?.signal)).toMatch(/^(0|SIGTERM)$/);
      for (const x of rep.ranks) expect(x.end_ms ?? -1).toBeGreaterThanOrEqual(x.start_ms ?? 0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('options job scripts carry over', () => {
  it('Hydra\'s options without effect here run the job and say so in one line; -print-all-exitcodes names every rank', async () => {
    const r = await jobs.run(['-rmk', 'slurm', '-iface', 'eth0', '-disable-x', '-print-all-exitcodes', '-n', '2', 'sh', '-c', 'exit 0']);
    expect(r.code).toBe(0);
    const lines = r.stderr.trim().split('\n');
    expect(lines[0]).toBe("tsmpiexec: -rmk, -iface, -disable-x: accepted from other launchers' job scripts; they have no effect here");
    expect(lines.slice(1).sort()).toEqual([`tsmpiexec: rank 0 on ${os.hostname()}: exited with code 0`, `tsmpiexec: rank 1 on ${os.hostname()}: exited with code 0`]);
  });

  it('-prepend-pattern prefixes every line with %r %h %g %p, as Hydra does for the same command', async () => {
    const args = ['-prepend-pattern', '[%r|%h|%g|%p%%] ', '-n', '2', 'sh', '-c', 'echo out; echo err >&2', ':', '-n', '1', 'sh', '-c', 'echo b'];
    const r = await jobs.run(args);
    expect(r.code, r.stderr).toBe(0);
    const h = os.hostname();
    expect(r.stdout.trim().split('\n').sort()).toEqual([`[0|${h}|0|0%] out`, `[1|${h}|0|0%] out`, `[2|${h}|0|0%] b`]);
    expect(r.stderr.trim().split('\n').sort()).toEqual([`[0|${h}|0|0%] err`, `[1|${h}|0|0%] err`]);
    const marker = `hydra-${process.pid}`;
    jobs.track(marker);
    const hy = await runHydra(args, marker);
    expect(hy.code).toBe(0);
    expect(hy.stdout.trim().split('\n').sort()).toEqual(r.stdout.trim().split('\n').sort());
    expect(hy.stderr.trim().split('\n').sort()).toEqual(r.stderr.trim().split('\n').sort());
  });

  it('--timestamp-output starts every line with the time it arrived, before the -l label', async () => {
    const before = new Date().toISOString();
    const r = await jobs.run(['--timestamp-output', '-l', '-n', '2', 'sh', '-c', 'echo a; echo b >&2']);
    const after = new Date().toISOString();
    expect(r.code, r.stderr).toBe(0);
    const lines = [...r.stdout.trim().split('\n'), ...r.stderr.trim().split('\n')];
    expect(lines).toHaveLength(4);
    for (const l of lines) {
      const m = /^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)\] \[[01]\] [ab]$/.exec(l);
      expect(m, l).not.toBeNull();
      expect((m?.[1] ?? '') >= before && (m?.[1] ?? '') <= after, l).toBe(true);
    }
  });

  it('Open MPI\'s -x and --mca reach the ranks', async () => {
    const r = await jobs.run(['-genvnone', '-x', 'HOME', '-x', 'GREETING=hello there', '--mca', 'btl', 'self', '-n', '1', 'env']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^HOME=/m);
    expect(r.stdout).toContain('GREETING=hello there\n');
    expect(r.stdout).toContain('OMPI_MCA_btl=self\n');
    expect(r.stdout).not.toMatch(/^PATH=/m);
  });
});

describe('files under /tmp', () => {
  it('files the ranks leave in their private /tmp are counted in one line; --tmp host keeps them in the host\'s', async () => {
    const name = `tsmpi-left-${process.pid}-${Date.now()}`;
    const r = await jobs.run(['-n', '2', 'sh', '-c', `printf 12345 > /tmp/${name}.$PMI_RANK`]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(`tsmpiexec: files left in the private /tmp on ${os.hostname()}: 2 files (10 B), removed with it; --tmp host keeps the ranks' files in the host's /tmp\n`);
    expect(fs.existsSync(`/tmp/${name}.0`)).toBe(false);
    const h = await jobs.run(['--tmp', 'host', '-n', '1', 'sh', '-c', `printf kept > /tmp/${name}.host`]);
    try {
      expect(h.code).toBe(0);
      expect(h.stderr).toBe('');
      expect(fs.readFileSync(`/tmp/${name}.host`, 'utf8')).toBe('kept');
    } finally {
      fs.rmSync(`/tmp/${name}.host`, { force: true });
    }
    // a job that leaves nothing says nothing
    const quiet = await jobs.run(['-n', '2', 'sh', '-c', 'echo x > /tmp/scratch.$PMI_RANK; rm /tmp/scratch.$PMI_RANK']);
    expect(quiet.stderr).toBe('');
  });

  it('a file of the host\'s /tmp that the command line names is there for the ranks, at the same path', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsmpi-named-'));
    try {
      fs.writeFileSync(path.join(dir, 'in.txt'), 'data from the host\n');
      const r = await jobs.run(['-n', '2', 'cat', path.join(dir, 'in.txt')]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toBe('data from the host\ndata from the host\n');
      // and a path relative to a working directory under /tmp
      const rel = await jobs.run(['-wdir', dir, '-n', '1', 'cat', 'in.txt']);
      expect(rel.code).toBe(0);
      expect(rel.stdout).toBe('data from the host\n');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('bounded PMI storage', () => {
  const EVIL = path.resolve('test/fixtures/hardening/pmi-evil.cjs');
  const NODE = process.execPath;

  it('a rank over --kvs-max-keys gets an error reply, one line names it and the limit, the job ends with 76', async () => {
    const r = await jobs.run(['-grace', '1', '--kvs-max-keys', '1000', '-n', '1', NODE, EVIL, 'flood', '2000', '10', ':', '-n', '2', NODE, path.resolve('bin/tsmpiexec.js'), 'pmi-check']);
    expect(r.stdout).toMatch(/^evil: put 1000 refused: cmd=put_result rc=-1 msg=KVS_limit_of_1000_keys_reached$/m);
    expect(r.code, r.stderr).toBe(76);
    const lines = r.stderr.split('\n').filter((l) => l.includes('KVS limit'));
    expect(lines, r.stderr).toEqual([`tsmpiexec: rank 0 on ${os.hostname()} put more than the job's PMI KVS limit of 1000 keys (hint: raise it with --kvs-max-keys): terminating the other 2 ranks`]);
  });

  it('300,000 puts of 1,000 bytes: refused at the 64 MiB default, and the launcher stays small (GNU time\'s peak RSS)', async () => {
    const r = await jobs.run(['-grace', '1', '-n', '1', NODE, EVIL, 'flood', '300000', '1000'], { wrap: ['/usr/bin/time', '-f', 'peak-rss-kib=%M'], timeoutMs: 120_000 });
    const refused = /^evil: put (\d+) refused: .*KVS_limit_of_67108864_bytes_reached$/m.exec(r.stdout);
    expect(refused, r.stdout + r.stderr).not.toBeNull();
    // 64 MiB of keys and values: about 66,000 puts of 1,000-odd bytes
    expect(Number(refused?.[1])).toBeGreaterThan(60_000);
    expect(Number(refused?.[1])).toBeLessThan(70_000);
    expect(r.stderr).toMatch(/put more than the job's PMI KVS limit of 64 MiB \(hint: raise it with --kvs-max-bytes\)/);
    expect(r.stderr).toMatch(/exited with non-zero status 76/);
    const rss = Number(/peak-rss-kib=(\d+)/.exec(r.stderr)?.[1]);
    // before the limit, the same flood grew the launcher past 1.3 GB
    expect(rss).toBeGreaterThan(0);
    expect(rss).toBeLessThan(400 * 1024);
  });

  it('--kvs-max-bytes raises the limit: the same 70,000 puts all land and the barrier completes', async () => {
    const r = await jobs.run(['--kvs-max-bytes', '128M', '-n', '1', NODE, EVIL, 'flood', '70000', '1000'], { timeoutMs: 120_000 });
    expect(r.stdout).toContain('evil: 70000 puts accepted');
    expect(r.stdout).toContain('evil: barrier: cmd=barrier_out rc=0');
    expect(r.code, r.stderr).toBe(0);
  });

  it('a bad limit is refused before anything starts', async () => {
    const r = await jobs.run(['--kvs-max-keys', '0', '-n', '1', 'true']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^tsmpiexec: --kvs-max-keys needs a positive whole number, got '0'/);
    expect(r.stderr).toMatch(/^hint: /m);
  });
});

describe('argv[0] as typed', () => {
  const PRINT = ['-e', 'console.log(process.argv0)'];

  it.each([
    ['the default (isolated, ranks started by the native helper)', [], {}],
    ['--isolate off -bind-to none, no native helper (Node starts the ranks)', ['--isolate', 'off', '-bind-to', 'none'], { TSMPIEXEC_NATIVE: '0' }],
    ['--isolate off with the native helper', ['--isolate', 'off'], {}],
    ['a rank with stdin and one without, bound to cores', ['-bind-to', 'core'], {}],
  ])('%s: node, not its resolved path', async (_name, extra, env) => {
    const r = await jobs.run([...extra, '-n', '2', 'node', ...PRINT], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual(['node', 'node']);
  });

  it('./prog stays ./prog, and the program is still the one in the working directory', async () => {
    const dir = fs.mkdtempSync(path.join(os.homedir(), '.tsmpi-argv0-'));
    try {
      fs.symlinkSync(process.execPath, path.join(dir, 'mynode'));
      const r = await jobs.run(['-wdir', dir, '-n', '1', './mynode', '-e', 'console.log(process.argv0, process.execPath === require("fs").realpathSync(process.argv0))']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe('./mynode true');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the documented fallback: without the native helper, a wrapper (sh for isolation, taskset for binding) passes the resolved path', async () => {
    for (const extra of [[], ['--isolate', 'off', '-bind-to', 'core']]) {
      const r = await jobs.run([...extra, '-n', '1', 'node', ...PRINT], { env: { TSMPIEXEC_NATIVE: '0' } });
      expect(r.code, r.stderr).toBe(0);
      expect(path.isAbsolute(r.stdout.trim()), r.stdout).toBe(true);
      expect(path.basename(r.stdout.trim())).toBe('node');
    }
  });
});
