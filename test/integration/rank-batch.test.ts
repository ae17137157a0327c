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
import { rmdirWhenFree } from '../helpers/run.js';

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

  it('joins a file every rank of the batch joins once itself, before the first fork, instead of once per rank', async () => {
    // a plain file stands in for a v1 cgroup.procs: a join writes the joiner's pid into it
    fs.mkdirSync('build', { recursive: true });
    const shared = path.resolve('build', `batch-shared-${process.pid}`);
    const own = [0, 1, 2].map((i) => path.resolve('build', `batch-own-${process.pid}-${i}`));
    for (const f of [shared, ...own]) fs.writeFileSync(f, '');
    try {
      const launches = [0, 1, 2].map((i) => ({
        rank: i, file: HELPER, args: ['exec', '--join', own[i]!, '--join', shared, '--label', `rank ${i}`, '--', 'true'], cwd: '/', env: {}, stdin: false,
      }));
      const { seen, done } = run(launches);
      await done;
      const helperPid = Number(fs.readFileSync(shared, 'utf8').trim());
      expect(seen.map((x) => x.pid)).not.toContain(helperPid);
      expect(helperPid).toBeGreaterThan(0);
      // each rank still joins what is its own
      own.forEach((f, i) => expect(Number(fs.readFileSync(f, 'utf8').trim())).toBe(seen[i]!.pid));
      // one rank alone joins everything itself (its file may be a cgroup of its own, which must not count the helper)
      for (const f of [shared, own[0]!]) fs.writeFileSync(f, '');
      const one = run([launches[0]!]);
      await one.done;
      expect(Number(fs.readFileSync(shared, 'utf8').trim())).toBe(one.seen[0]!.pid);
    } finally {
      for (const f of [shared, ...own]) fs.rmSync(f, { force: true });
    }
  });

  it('reports the storage I/O of each rank and the children it waited for with its exit', async () => {
    fs.mkdirSync('build', { recursive: true });
    const file = path.resolve('build', `batch-io-${process.pid}`);
    try {
      // 2 MiB written to the disk by a child the rank waits for; rank 1 does no I/O at all
      const { ranks, done } = run([launch(0, [`dd if=/dev/zero of=${file} bs=1M count=2 conv=fsync status=none; rm -f ${file}`]), launch(1, ['true'])]);
      await done;
      expect(ranks[0]!.exitIo?.writeBytes).toBeGreaterThanOrEqual(2 * 2 ** 20);
      expect(ranks[1]!.exitIo).toEqual({ readBytes: 0, writeBytes: 0 });
    } finally {
      fs.rmSync(file, { force: true });
    }
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

/** A v1 hierarchy and the cgroup2 mount of this host, from mountinfo (undefined where there is none). */
function mountOf(fstype: 'cgroup2' | 'pids'): string | undefined {
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [left, right] = line.split(' - ');
    if (left === undefined || right === undefined) continue;
    const [type, , opts] = right.split(' ');
    const mount = left.split(' ')[4];
    if (fstype === 'cgroup2' && type === 'cgroup2') return mount;
    if (fstype === 'pids' && type === 'cgroup' && (opts ?? '').split(',').includes('pids')) return mount;
  }
  return undefined;
}

const ownCgroup = (key: string): string => {
  const line = fs.readFileSync('/proc/self/cgroup', 'utf8').split('\n').find((l) => (key === '' ? l.startsWith('0::') : l.split(':')[1] === key));
  return line?.split(':')[2] ?? '/';
};

const v2Mount = mountOf('cgroup2');
const pidsMount = mountOf('pids');
const root = process.getuid?.() === 0;
describe.runIf(built && root && v2Mount !== undefined && pidsMount !== undefined)(
  'cgroups of batch ranks (root, a cgroup2 mount and a v1 pids hierarchy: else skipped)',
  () => {
    it('puts each rank into its own cgroup2 cgroup, and all into the v1 cgroup they share, which the helper joins once and leaves', async () => {
      const v2Job = path.join(v2Mount!, ownCgroup(''), `tsmpiexec-batchtest-${process.pid}`);
      const v1Job = path.join(pidsMount!, ownCgroup('pids'), `tsmpiexec-batchtest-${process.pid}`);
      const made = [v2Job, `${v2Job}/r0`, `${v2Job}/r1`, `${v2Job}/r2`, v1Job];
      for (const d of made) fs.mkdirSync(d);
      const gate = path.resolve('build', `batch-gate-${process.pid}`);
      fs.mkdirSync('build', { recursive: true });
      try {
        const launches = [0, 1, 2].map((i) => ({
          rank: i,
          file: HELPER,
          args: ['exec', '--join', `${v2Job}/r${i}/cgroup.procs`, '--join', `${v1Job}/cgroup.procs`, '--label', `rank ${i}`, '--', '/bin/sh', '-c', `while [ ! -e ${gate} ]; do sleep 0.05; done; cat /proc/self/cgroup`],
          cwd: '/',
          env: { PATH: '/usr/bin:/bin' },
          stdin: false,
        }));
        const { seen, done, pidsReported } = run(launches);
        await pidsReported;
        const helperPid = Number(fs.readFileSync(`/proc/${seen[0]!.pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
        // once every rank is started the helper goes back to where it came from (the shared cgroup's parent)
        const helperPids = (): string => {
          try {
            return fs.readFileSync(`/proc/${helperPid}/cgroup`, 'utf8').split('\n').find((l) => l.split(':')[1] === 'pids') ?? '';
          } catch {
            return 'gone';
          }
        };
        for (let i = 0; i < 100 && helperPids().includes('tsmpiexec-batchtest'); i++) await new Promise((r) => setTimeout(r, 20));
        expect(helperPids()).not.toContain('tsmpiexec-batchtest');
        const inShared = fs.readFileSync(`${v1Job}/cgroup.procs`, 'utf8').trim().split('\n').map(Number);
        for (const x of seen) expect(inShared).toContain(x.pid);
        expect(inShared).not.toContain(helperPid);
        // the helper never entered any rank's cgroup2 cgroup
        expect(fs.readFileSync(`/proc/${helperPid}/cgroup`, 'utf8')).not.toContain('tsmpiexec-batchtest');
        fs.writeFileSync(gate, '');
        await done;
        fs.rmSync(gate, { force: true });
        for (let i = 0; i < 3; i++) {
          const s = seen[i]!;
          expect(s.outcome, s.err).toEqual({ kind: 'exited', code: 0 });
          const lines = s.out.trim().split('\n');
          expect(lines.find((l) => l.startsWith('0::'))).toBe(`0::${path.join(ownCgroup(''), `tsmpiexec-batchtest-${process.pid}`, `r${i}`)}`);
          expect(lines.find((l) => l.split(':')[1] === 'pids')).toContain(`tsmpiexec-batchtest-${process.pid}`);
        }
      } finally {
        // a failed check above leaves the ranks waiting: let them end, so their cgroups can go
        fs.writeFileSync(gate, '');
        for (const d of made.reverse()) {
          await rmdirWhenFree(d, 50);
        }
        fs.rmSync(gate, { force: true });
      }
    });
  },
);
