// End to end on one host: bin/tsmpiexec runs real MPICH 4.0.2 programs (compiled by the global setup with
// mpicc.mpich) and plain programs, as a user would; after every test nothing of the job may be left running.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { FIX, killLive, leftovers, runTsmpiexec, tmpEntries, type RunResult } from '../helpers/run.js';

const fx = (name: string): string => path.join(FIX, name);
let lastMarker: string | undefined;

async function run(args: string[], opts: Parameters<typeof runTsmpiexec>[1] = {}): Promise<RunResult> {
  const r = await runTsmpiexec(args, opts);
  lastMarker = r.marker;
  return r;
}

beforeAll(() => {
  if (!fs.existsSync('dist/main.js')) throw new Error('dist/main.js is missing: run `make build` first (make test does)');
  if (!fs.existsSync(fx('hello'))) throw new Error(`MPI fixtures are missing in ${FIX}: is mpicc.mpich installed? (make system-deps)`);
});

afterEach(async () => {
  killLive();
  if (lastMarker) {
    const left = await leftovers(lastMarker);
    lastMarker = undefined;
    expect(left, 'processes of the job left behind').toEqual([]);
  }
});

describe('MPI programs', () => {
  it.each([1, 4, 16])('hello + allreduce at -n %i', async (n) => {
    const r = await run(['-n', String(n), fx('hello')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n').sort();
    expect(lines).toHaveLength(n);
    for (let i = 0; i < n; i++) {
      expect(r.stdout).toContain(`hello from rank ${i} of ${n} on ${os.hostname()} (allreduce sum ${(n * (n - 1)) / 2}, expected ${(n * (n - 1)) / 2})`);
    }
  });

  it('passes 1 MiB messages around a ring', async () => {
    const r = await run(['-n', '4', fx('ring'), '3']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('ring: 4 ranks, 3 laps of 1048576 bytes, 0 bad');
  });

  it('runs MPMD segments with their own appnum and arguments', async () => {
    const r = await run(['-n', '1', fx('ring'), '1', ':', '-n', '2', fx('ring'), '1']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('ring: 3 ranks, 1 laps');
  });

  it('labels lines with -l', async () => {
    const r = await run(['-l', '-n', '3', fx('hello')]);
    for (let i = 0; i < 3; i++) expect(r.stdout).toMatch(new RegExp(`^\\[${i}\\] hello from rank ${i} of 3`, 'm'));
  });

  it('MPI_Abort kills every rank and returns the abort code', async () => {
    const r = await run(['-n', '4', fx('abort'), '7'], { timeoutMs: 20000 });
    expect(r.code).toBe(7);
    expect(r.stderr).toMatch(/rank 1 on \S+ called MPI_Abort with code 7/);
    // the other ranks sat in a barrier followed by sleep(60): they must be gone, not waited for
    expect(r.ms).toBeLessThan(15000);
  });

  it('returns the exit code of a failing rank and terminates the others', async () => {
    const r = await run(['-n', '4', '-genv', 'FAIL_RANK', '2', fx('exitcode'), '3', '60'], { timeoutMs: 20000 });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/rank 2 on \S+ exited with code 3: terminating the other 3 ranks/);
    // said once: the summary names only the others (killed by the SIGTERM), not rank 2 again
    expect(r.stderr).toMatch(/^tsmpiexec: ranks 0-1,3 on \S+: killed by SIGTERM \(signal 15\)$/m);
    expect(r.stderr.match(/rank 2 /g)).toHaveLength(1);
  });
});

describe('signals', () => {
  const cases: Array<[NodeJS.Signals, number]> = [
    ['SIGINT', 130],
    ['SIGTERM', 143],
    ['SIGHUP', 129],
    ['SIGQUIT', 131],
    ['SIGUSR1', 0],
    ['SIGUSR2', 0],
  ];
  it.each(cases)('forwards %s to every rank; their last output still arrives', async (sig, status) => {
    let ready = 0;
    let sent = false;
    const r = await run(['-n', '3', fx('sigrank')], {
      timeoutMs: 30000,
      onStdout: (chunk, child) => {
        ready += (chunk.toString().match(/ready/g) ?? []).length;
        if (ready === 3 && !sent) {
          sent = true;
          child.kill(sig);
        }
      },
    });
    expect(sent).toBe(true);
    const num = os.constants.signals[sig];
    for (let i = 0; i < 3; i++) expect(r.stdout).toContain(`rank ${i} got signal ${num}`);
    expect(r.code).toBe(status);
  });

  it('escalates to SIGKILL after the grace period for a rank that ignores SIGTERM', async () => {
    let sent = false;
    const r = await run(['--grace', '1', '-n', '2', 'sh', '-c', 'trap "" TERM; echo up; sleep 60'], {
      timeoutMs: 20000,
      onStdout: (chunk, child) => {
        if (!sent && (chunk.toString().match(/up/g) ?? []).length >= 1) {
          sent = true;
          setTimeout(() => child.kill('SIGTERM'), 300);
        }
      },
    });
    expect(r.code).toBe(143);
    expect(r.ms).toBeLessThan(15000);
  });
});

describe('second interrupt', () => {
  it('a second Ctrl-C kills at once, without waiting for the grace period', async () => {
    let sent = 0;
    const r = await run(['--grace', '60', '-n', '2', 'sh', '-c', 'trap "" INT TERM; echo up; sleep 100'], {
      timeoutMs: 20000,
      onStdout: (chunk, child) => {
        if (sent === 0 && chunk.toString().includes('up')) {
          sent = 1;
          child.kill('SIGINT');
          setTimeout(() => child.kill('SIGINT'), 300);
        }
      },
    });
    expect(r.code).toBe(130);
    expect(r.ms).toBeLessThan(15000);
  });
});

describe('nothing reachable, nothing left', () => {
  it('ranks do not outlive a SIGKILLed tsmpiexec (the reaper kills their process groups)', async () => {
    let ready = 0;
    const r = await run(['-n', '3', 'sh', '-c', 'sleep 120 & echo up; wait'], {
      timeoutMs: 20000,
      onStdout: (chunk, child) => {
        ready += (chunk.toString().match(/up/g) ?? []).length;
        if (ready === 3) {
          ready++;
          child.kill('SIGKILL');
        }
      },
    });
    expect(r.signal).toBe('SIGKILL');
    lastMarker = undefined;
    expect(await leftovers(r.marker, 10_000)).toEqual([]);
  });

  it('opens no listening socket and leaves no temporary file', async () => {
    const before = tmpEntries();
    const xdg = fs.mkdtempSync(path.join(os.tmpdir(), 'single-xdg-'));
    let seen = '';
    const r = await run(['-n', '2', 'sh', '-c', 'echo up; sleep 1'], {
      env: { XDG_RUNTIME_DIR: xdg },
      onStdout: (_c, child) => {
        if (!seen) seen = execFileSync('ss', ['-lnpxt'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes(`pid=${child.pid},`)).join('\n') || 'none';
      },
    });
    expect(r.code).toBe(0);
    expect(seen).toBe('none');
    // nothing of this job's (its names carry the launcher's pid); other test files' jobs come and go meanwhile
    expect(tmpEntries().filter((e) => !before.includes(e) && e.includes(String(r.pid)))).toEqual([]);
    // its CPU claims went into its XDG_RUNTIME_DIR, and the last job out removed them
    const left = fs.readdirSync(xdg);
    fs.rmSync(xdg, { recursive: true, force: true });
    expect(left).toEqual([]);
  });
});

describe('output', () => {
  it('4 ranks flooding stdout: every line intact, none lost, in order per rank', async () => {
    const N = 20000;
    const r = await run(['-n', '4', fx('flood'), String(N)], { timeoutMs: 60000 });
    expect(r.code).toBe(0);
    const next = [0, 0, 0, 0];
    const lines = r.stdout.split('\n');
    expect(lines.pop()).toBe('');
    expect(lines).toHaveLength(4 * N);
    for (const line of lines) {
      const m = /^rank=(\d) line=(\d+) pad=([a-z]*) end=(\d+)$/.exec(line);
      expect(m, `mangled line: ${line.slice(0, 80)}`).not.toBeNull();
      if (!m) continue;
      const rank = Number(m[1]);
      const i = Number(m[2]);
      expect(i).toBe(next[rank]);
      expect(Number(m[4])).toBe(i);
      expect(m[3]).toBe(String.fromCharCode(97 + rank).repeat((i * 7919 + rank * 31) % 200));
      next[rank] = i + 1;
    }
    expect(next).toEqual([N, N, N, N]);
  });

  it('never loses the last unterminated line, and stays binary-safe', async () => {
    const r = await run(['-n', '1', 'sh', '-c', 'printf "first\\nno newline at the end"']);
    expect(r.stdout).toBe('first\nno newline at the end');
    const bin = await run(['-n', '1', 'head', '-c', '65536', '/dev/urandom'], {});
    expect(bin.stdoutBuf.length).toBe(65536);
  });

  it('writes per-rank files with -outfile-pattern and -errfile-pattern', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outpat-'));
    try {
      const r = await run(['-n', '3', '-outfile-pattern', `${dir}/out.%r.%g`, '-errfile-pattern', `${dir}/err.%r`, 'sh', '-c', 'echo out $PMI_RANK; echo err $PMI_RANK >&2']);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe('');
      for (let i = 0; i < 3; i++) {
        expect(fs.readFileSync(`${dir}/out.${i}.0`, 'utf8')).toBe(`out ${i}\n`);
        expect(fs.readFileSync(`${dir}/err.${i}`, 'utf8')).toBe(`err ${i}\n`);
        expect(fs.statSync(`${dir}/out.${i}.0`).mode & 0o077).toBe(0);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('ends the job when its stdout reader goes away (| head -1)', async () => {
    let closed = false;
    const r = await run(['-n', '2', 'sh', '-c', 'while :; do echo line $PMI_RANK; done'], {
      timeoutMs: 20000,
      onStdout: (_c, child) => {
        if (!closed) {
          closed = true;
          child.stdout?.destroy();
        }
      },
    });
    expect(r.code).toBe(141);
    expect(r.stderr).not.toMatch(/EPIPE|internal error/);
  });
});

describe('stdin', () => {
  it('sends 100 MB of stdin to rank 0 intact; other ranks read /dev/null', async () => {
    const size = 100 * 1024 * 1024;
    const data = Buffer.alloc(size);
    for (let i = 0; i < size; i += 4096) data.writeUInt32LE((i * 2654435761) >>> 0, i);
    const md5 = createHash('md5').update(data).digest('hex');
    const r = await run(['-l', '-n', '2', 'sh', '-c', 'md5sum'], { input: data, timeoutMs: 60000 });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`[0] ${md5}  -`);
    expect(r.stdout).toContain('[1] d41d8cd98f00b204e9800998ecf8427e  -');
  });

  it('--stdin all gives every rank the input; --stdin none gives nobody', async () => {
    const all = await run(['-l', '--stdin', 'all', '-n', '3', 'wc', '-c'], { input: 'hello\n' });
    for (let i = 0; i < 3; i++) expect(all.stdout).toContain(`[${i}] 6`);
    const none = await run(['-l', '--stdin', 'none', '-n', '2', 'wc', '-c'], { input: 'hello\n' });
    expect(none.stdout).toContain('[0] 0');
    const two = await run(['-l', '--stdin', '1', '-n', '2', 'wc', '-c'], { input: 'hello\n' });
    expect(two.stdout).toContain('[1] 6');
    expect(two.stdout).toContain('[0] 0');
  });
});

describe('environment and options', () => {
  it('passes -genv and hides an outer launcher\'s PMI variables', async () => {
    const r = await run(['-genv', 'FOO', 'bar baz', '-n', '2', 'sh', '-c', 'echo "$FOO|$PMI_PORT|$PMI_ID|$PMI_RANK|$PMI_SIZE|$PMI_FD|$MPI_LOCALRANKID|$MPI_LOCALNRANKS"'], {
      env: { PMI_PORT: 'elsewhere:1', PMI_ID: '5' },
    });
    const lines = r.stdout.trim().split('\n').sort();
    expect(lines).toEqual(['bar baz|||0|2|3|0|2', 'bar baz|||1|2|3|1|2']);
  });

  it('runs in -wdir', async () => {
    const r = await run(['-wdir', '/usr', '-n', '1', 'pwd']);
    expect(r.stdout).toBe('/usr\n');
  });

  it('times out with the documented status', async () => {
    const r = await run(['-timeout', '1', '-n', '2', 'sleep', '30'], { timeoutMs: 20000 });
    expect(r.code).toBe(124);
    expect(r.stderr).toMatch(/timed out after 1 s/);
    const env = await run(['-n', '1', 'sleep', '30'], { env: { MPIEXEC_TIMEOUT: '1' }, timeoutMs: 20000 });
    expect(env.code).toBe(124);
  });

  it('names the signal that killed a rank', async () => {
    const r = await run(['-n', '2', 'sh', '-c', 'if [ $PMI_RANK = 1 ]; then kill -SEGV $$; else sleep 30; fi'], { timeoutMs: 20000 });
    expect(r.code).toBe(139);
    expect(r.stderr).toMatch(/rank 1 on \S+ was killed by SIGSEGV/);
  });

  it('treats a rank that initialized PMI but never finalized as a failure', async () => {
    const script = `
      const net = require('net'); const s = new net.Socket({ fd: 3 });
      s.write('cmd=init pmi_version=1 pmi_subversion=1\\n');
      s.once('data', () => process.exit(0));`;
    const r = await run(['-n', '2', process.execPath, '-e', script], { timeoutMs: 20000 });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/exited without calling MPI_Finalize/);
  });

  it('prints the placement with --dry-run and launches nothing', async () => {
    const r = await run(['--dry-run', '-hosts', 'a:2,b', '-n', '5', '/nonexistent/prog']);
    expect(r.code).toBe(0);
    // slots a,a,b then wrap: a gets 0,1,3,4 and b gets 2
    expect(r.stdout).toMatch(/^a\s+4\s+0-1,3-4$/m);
    expect(r.stdout).toMatch(/^b\s+1\s+2$/m);
    const j = await run(['--dry-run', '--json', '-n', '2', 'x']);
    expect(JSON.parse(j.stdout).size).toBe(2);
  });

  it('runs every host of a host list locally with -launcher fork (one in-process proxy each)', async () => {
    const r = await run(['-launcher', 'fork', '-hosts', 'n1:2,n2:2', '-n', '4', fx('hello')]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(4);
  });
});

describe('bad input: one clear line, non-zero exit, nothing launched', () => {
  const cases: Array<[string, string[], number, RegExp]> = [
    ['unknown option', ['-npp', '2', 'true'], 2, /unknown option -npp.*-np/],
    ['-n 0', ['-n', '0', 'true'], 2, /-n/],
    ['-n -1', ['-n', '-1', 'true'], 2, /-n/],
    ['-n abc', ['-n', 'abc', 'true'], 2, /abc/],
    ['-genv without a value', ['-genv', 'FOO'], 2, /-genv/],
    ['missing program', ['-n', '2', './does-not-exist'], 125, /program not found \(\.\/does-not-exist\)/],
    ['non-executable program', ['-n', '1', 'package.json'], 125, /program not found in PATH \(package\.json\)/],
    ['non-executable program by path', ['-n', '1', './package.json'], 125, /not executable \(\.\/package\.json\)/],
    ['no program at all', ['-n', '2'], 2, /program/],
    ['--stdin beyond the job', ['--stdin', '5', '-n', '2', 'true'], 2, /--stdin/],
  ];
  it.each(cases)('%s', async (_name, args, status, pattern) => {
    const r = await run(args);
    expect(r.code).toBe(status);
    const lines = r.stderr.trim().split('\n');
    expect(lines[0]).toMatch(/^tsmpiexec: /);
    expect(lines[0]).toMatch(pattern);
    expect(lines.length).toBeLessThanOrEqual(2);
    if (lines[1] !== undefined) expect(lines[1]).toMatch(/^hint: /);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.stdout).toBe('');
  });

  it('names the line of a malformed host file', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hf-'));
    try {
      fs.writeFileSync(`${dir}/hosts`, '# cluster\nn1:2\nn2 slots=x\n');
      const r = await run(['-f', `${dir}/hosts`, '-n', '2', 'true']);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`${dir}/hosts:3`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
