// Ranks started in batches through the native helper (src/proxy/rank-batch.ts, `tsmpiexec-helper batch`), on
// the real kernel: each rank gets exactly what Node's spawn gave it (argv, environment, directory, its own
// session, stdout/stderr/PMI socket at 1/2/3, /dev/null at 0, nothing else open), its exact wait status, and
// nothing is lost when the helper itself dies. The job-level suites run every PMI_FD rank through it too.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BATCH_SIZE, encodeBatch, outcomeOfStatus, startBatch, type BatchRank } from '../../src/proxy/rank-batch.js';
import type { RankLaunch, RankProcessEvents } from '../../src/proxy/rank-process.js';
import type { RankOutcome } from '../../src/model/types.js';

const HELPER = path.resolve('dist/native/tsmpiexec-helper');
const built = fs.existsSync(HELPER);

interface Seen {
  out: string;
  err: string;
  outcome?: RankOutcome;
  settled: boolean;
  pid?: number;
}

const live: number[] = [];
afterEach(() => {
  for (const pid of live.splice(0)) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
});

function launch(rank: number, args: string[], over: Partial<RankLaunch> = {}): RankLaunch {
  return { rank, file: '/bin/sh', args: ['-c', ...args], cwd: '/', env: { PATH: '/usr/bin:/bin', RANK: String(rank) }, stdin: false, ...over };
}

function run(launches: RankLaunch[]): { seen: Seen[]; ranks: BatchRank[]; done: Promise<void>; pidsReported: Promise<void> } {
  const seen: Seen[] = launches.map(() => ({ out: '', err: '', settled: false }));
  let settledCount = 0;
  let resolveDone: () => void = () => undefined;
  let resolvePids: () => void = () => undefined;
  const done = new Promise<void>((r) => (resolveDone = r));
  const pidsReported = new Promise<void>((r) => (resolvePids = r));
  const events: RankProcessEvents[] = seen.map((s) => ({
    stdout: (d) => (s.out += d.toString()),
    stderr: (d) => (s.err += d.toString()),
    streamEnd: () => undefined,
    exited: (o) => (s.outcome = o),
    settled: () => {
      s.settled = true;
      if (++settledCount === launches.length) resolveDone();
    },
  }));
  const ranks = startBatch(
    HELPER,
    launches,
    events,
    (i, pid) => {
      seen[i]!.pid = pid;
      live.push(pid);
    },
    () => resolvePids(),
  );
  if (ranks === undefined) throw new Error(`${HELPER} could not be started`);
  return { seen, ranks, done, pidsReported };
}

const fail = (): never => {
  throw new Error('no event was expected');
};

describe('the batch request and wait statuses', () => {
  it('encodes argv, environment and directory as NUL-separated fields with counts', () => {
    const b = encodeBatch([{ rank: 0, file: '/bin/echo', args: ['a b', ''], cwd: '/w', env: { X: '1=2' }, stdin: false }]);
    expect(b.toString().split('\0')).toEqual(['1', '3', '/bin/echo', 'a b', '', '1', 'X=1=2', '/w', '']);
    expect(() => encodeBatch([{ rank: 0, file: '/bin/echo', args: ['a\0b'], cwd: '/', env: {}, stdin: false }])).toThrow(/NUL byte/);
  });

  it('reads exit codes and signals from raw wait statuses', () => {
    expect(outcomeOfStatus(0)).toEqual({ kind: 'exited', code: 0 });
    expect(outcomeOfStatus(3 << 8)).toEqual({ kind: 'exited', code: 3 });
    expect(outcomeOfStatus(9)).toEqual({ kind: 'signaled', signal: 'SIGKILL' });
    expect(outcomeOfStatus(11 | 0x80)).toEqual({ kind: 'signaled', signal: 'SIGSEGV' }); // core dumped
  });
});

describe.runIf(built)('ranks started by the native helper', () => {
  it('gives each rank its argv, environment, directory, session and exactly fds 0-3', async () => {
    fs.mkdirSync('build', { recursive: true });
    const n = BATCH_SIZE;
    const script = 'printf "%s|" "$@"; echo; env | sort | tr "\\n" " "; echo; pwd; ls /proc/self/fd | sort -n | tr "\\n" " "; echo; [ "$(ps -o sid= -p $$ | tr -d " ")" = $$ ] && echo leader; readlink /proc/self/fd/0';
    const launches = Array.from({ length: n }, (_, i) => launch(i, [script, 'arg0', 'a b', '', `r${i}`], { cwd: i % 2 ? '/' : path.resolve('build') }));
    const { seen, ranks, done } = run(launches);
    expect(ranks.every((r) => r.pmi !== undefined)).toBe(true);
    await done;
    for (let i = 0; i < n; i++) {
      const s = seen[i]!;
      expect(s.outcome, `rank ${i}: ${s.err}`).toEqual({ kind: 'exited', code: 0 });
      const [args, env, cwd, fds, leader, stdin] = s.out.trim().split('\n');
      expect(args).toBe(`a b||r${i}|`);
      expect(env).toBe(`PATH=/usr/bin:/bin PWD=${cwd} RANK=${i} `);
      expect(cwd).toBe(i % 2 ? '/' : path.resolve('build'));
      // 0-3 and the one ls itself opens for /proc/self/fd
      expect(fds?.trim().split(' ')).toEqual(['0', '1', '2', '3', '4']);
      expect(leader).toBe('leader');
      expect(stdin).toBe('/dev/null');
    }
  });

  it('reports exact exit codes and signals, stdout and stderr apart', async () => {
    const launches = Array.from({ length: 10 }, (_, i) => launch(i, [`echo out$RANK; echo err$RANK >&2; if [ $RANK = 3 ]; then kill -SEGV $$; fi; exit $RANK`]));
    const { seen, done } = run(launches);
    await done;
    for (let i = 0; i < 10; i++) {
      expect(seen[i]!.out).toBe(`out${i}\n`);
      expect(seen[i]!.err).toBe(`err${i}\n`);
      expect(seen[i]!.outcome).toEqual(i === 3 ? { kind: 'signaled', signal: 'SIGSEGV' } : { kind: 'exited', code: i });
      expect(seen[i]!.settled).toBe(true);
    }
  });

  it('talks PMI over fd 3: the rank reads what the proxy wrote and answers', async () => {
    const { seen, ranks, done } = run([launch(0, ['read line <&3; echo "got $line"; echo "pong" >&3'])]);
    const pmi = ranks[0]!.pmi!;
    let back = '';
    pmi.on('data', (d: Buffer) => (back += d.toString()));
    pmi.write('ping\n');
    await done;
    expect(seen[0]!.out).toBe('got ping\n');
    expect(back).toBe('pong\n');
  });

  it('reports a program that cannot be exec\'d as not started, worded as Node words a failed spawn', async () => {
    const plain = path.resolve('build', `batch-not-executable-${process.pid}`);
    fs.mkdirSync('build', { recursive: true });
    fs.writeFileSync(plain, 'echo ran\n', { mode: 0o644 });
    try {
      const { seen, done } = run([
        { rank: 0, file: '/nonexistent/prog', args: [], cwd: '/', env: {}, stdin: false },
        { rank: 1, file: plain, args: [], cwd: '/', env: {}, stdin: false },
        // through the isolation wrapper's argv (run in the child itself): the program is named, not the helper
        { rank: 2, file: HELPER, args: ['exec', '--label', 'rank 2', '--', '/nonexistent/prog2'], cwd: '/', env: {}, stdin: false },
      ]);
      await done;
      expect(seen[0]!.outcome).toEqual({ kind: 'not-started', reason: 'ENOENT: spawn /nonexistent/prog ENOENT' });
      expect(seen[1]!.outcome).toEqual({ kind: 'not-started', reason: `EACCES: spawn ${plain} EACCES` });
      expect(seen[2]!.outcome).toEqual({ kind: 'not-started', reason: 'ENOENT: spawn /nonexistent/prog2 ENOENT' });
      for (const s of seen) expect(s.err).toBe('');
    } finally {
      fs.rmSync(plain, { force: true });
    }
  });

  it('says on the rank\'s stderr why an isolation step failed before exec (exit 126)', async () => {
    const { seen, done } = run([{ rank: 0, file: HELPER, args: ['exec', '--join', '/nonexistent/cgroup.procs', '--label', 'rank 0', '--', 'true'], cwd: '/', env: {}, stdin: false }]);
    await done;
    expect(seen[0]!.outcome).toEqual({ kind: 'exited', code: 126 });
    expect(seen[0]!.err).toBe('tsmpiexec: rank 0 cannot join cgroup /nonexistent/cgroup.procs: No such file or directory\n');
  });

  it('refuses a NUL byte in an argument before starting anything', async () => {
    const { seen, ranks, done } = run([launch(0, ['echo x', 'a\0b'])]);
    await done;
    expect(ranks[0]!.pmi).toBeUndefined();
    expect(seen[0]!.outcome).toMatchObject({ kind: 'not-started', reason: expect.stringMatching(/NUL byte/) });
  });

  it('delivers a signal sent before the helper reported the pid', async () => {
    const { seen, ranks, done } = run([launch(0, ['sleep 30'])]);
    ranks[0]!.signal('SIGTERM');
    await done;
    expect(seen[0]!.outcome).toEqual({ kind: 'signaled', signal: 'SIGTERM' });
  });

  it('is not used, and nothing is reported, when the helper cannot be started', () => {
    const events = [0].map(() => ({ stdout: fail, stderr: fail, streamEnd: fail, exited: fail, settled: fail }));
    expect(startBatch('/nonexistent/helper', [launch(0, ['true'])], events, fail, fail)).toBeUndefined();
  });

  it('kills the ranks and reports them when the helper itself is killed', async () => {
    const { seen, done, pidsReported } = run([launch(0, ['sleep 30']), launch(1, ['sleep 30'])]);
    await pidsReported;
    const helperPid = Number(fs.readFileSync(`/proc/${seen[0]!.pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
    expect(fs.readFileSync(`/proc/${helperPid}/comm`, 'utf8').trim()).toBe('tsmpiexec-helpe');
    process.kill(helperPid, 'SIGKILL');
    await done;
    const alive = (pid: number): boolean => {
      try {
        return !fs.readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z');
      } catch {
        return false;
      }
    };
    for (const s of seen) {
      expect(s.outcome).toEqual({ kind: 'signaled', signal: 'SIGKILL' });
      // its sockets closed as it began to exit: give the kernel a moment to finish
      for (let i = 0; i < 100 && alive(s.pid!); i++) await new Promise((r) => setTimeout(r, 20));
      expect(alive(s.pid!), `rank ${s.pid} outlived its helper`).toBe(false);
    }
  });
});
