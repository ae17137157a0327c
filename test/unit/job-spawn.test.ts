// Job.spawn (MPI_Comm_spawn) with stand-in proxies that record what they are asked to start: where the children
// go (as the world ranks were, or the hosts of the info key host), how each is started (PMI variables, the
// spawner's segment environment, wdir, path), the group the proxies get (preputs, mapping, parent), refused
// requests, and the job ending only when the children have settled too. The real thing: e2e/pmi-spawn.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseArgs } from '../../src/cli/parse.js';
import type { JobOutcome, JobRequest } from '../../src/model/types.js';
import type { PmiGroupInfo } from '../../src/pmi/types.js';
import { place } from '../../src/placement/place.js';
import type { RankLaunch } from '../../src/proxy/rank-process.js';
import { Job, type ProxySpec } from '../../src/run/job.js';
import type { ProxyHandle } from '../../src/run/proxy-handle.js';
import type { SpawnRequest } from '../../src/pmi/spawn.js';
import type { Sink } from '../../src/io/sink.js';

let dir: string;
let prog: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'job-spawn-'));
  fs.mkdirSync(path.join(dir, 'bin'));
  fs.mkdirSync(path.join(dir, 'work'));
  prog = path.join(dir, 'bin', 'child');
  fs.writeFileSync(prog, '#!/bin/sh\n', { mode: 0o755 });
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const sink = (): Sink & { text: string } => {
  const s = {
    text: '',
    write(d: Buffer) {
      s.text += d.toString();
      return true;
    },
    onDrain() {},
    finish: () => Promise.resolve(),
    failed: undefined,
    isTTY: false,
  };
  return s;
};

interface Fake {
  spec: ProxySpec;
  added: Array<{ group: PmiGroupInfo; launches: RankLaunch[] }>;
  refuse?: string;
}

/** A job on hosts a:2,b:2 (4 ranks: a a b b) whose proxies only record. */
function makeJob(argv: string[] = ['-hosts', 'a:2,b:2', '-n', '4', '-env', 'SEG', 'zero', prog]) {
  const r = parseArgs(argv, { PATH: '/usr/bin:/bin' }, () => '');
  if (r.kind !== 'run') throw new Error('not a run');
  const req: JobRequest = r.request;
  const plan = place({ request: req, hosts: [{ name: 'a', slots: 2 }, { name: 'b', slots: 2 }], hostSource: { kind: 'cmdline' }, kvsname: 'kvs_1_t', defaultNp: 4 });
  const fakes: Fake[] = [];
  const err = sink();
  const job = new Job(req, plan, {
    env: { PATH: '/usr/bin:/bin' },
    cwd: dir,
    stdout: sink(),
    stderr: err,
    openFile: () => sink(),
    stdinSource: () => undefined,
    notice: (l) => err.write(Buffer.from(`${l}\n`)),
    makeProxy: (spec): ProxyHandle => {
      const f: Fake = { spec, added: [] };
      fakes.push(f);
      return {
        host: spec.host,
        start() {},
        signal() {},
        killAll() {},
        resumeOutput() {},
        stdinOf: () => undefined,
        destroyStreams() {},
        addRanks: async (group, launches) => {
          if (f.refuse !== undefined) return f.refuse;
          f.added.push({ group, launches });
          return undefined;
        },
      };
    },
  });
  const done = job.run();
  /** every rank the fakes know of ends with exit 0, having finalized */
  const endAll = (): void => {
    for (const f of fakes) {
      const ids = [...f.spec.launches.map((l) => l.rank), ...f.added.flatMap((a) => a.launches.map((l) => l.rank))];
      for (const id of ids) {
        f.spec.events.started(id, 1000 + id);
        f.spec.events.outputEnd(id, 'stdout');
        f.spec.events.outputEnd(id, 'stderr');
        f.spec.events.exited(id, { kind: 'exited', code: 0 });
        f.spec.events.settled(id, { kind: 'exited', code: 0 }, 'finalized');
      }
    }
  };
  return { job, fakes, done, endAll, err };
}

const request = (over: Partial<SpawnRequest> = {}): SpawnRequest => ({
  parentKvsname: 'kvs_1_t',
  parentRank: 0,
  commands: [{ command: prog, args: ['x'], maxprocs: 3, info: [] }],
  preput: [['PARENT_ROOT_PORT_NAME', 'port-0']],
  protocol: 1,
  ...over,
});

describe('Job.spawn', () => {
  it('places children as the world ranks were and starts them as a new group with the preputs', async () => {
    const { job, fakes, done, endAll } = makeJob();
    const res = await job.spawn(request());
    expect(res).toEqual({ ok: true, kvsname: 'kvs_1_t_spawn1' });
    const [a, b] = fakes as [Fake, Fake];
    // children 0 and 1 go where world ranks 0 and 1 are (a), child 2 where world rank 2 is (b)
    expect(a.added[0]?.launches.map((l) => [l.rank, l.pmi?.rank])).toEqual([[4, 0], [5, 1]]);
    expect(b.added[0]?.launches.map((l) => [l.rank, l.pmi?.rank])).toEqual([[6, 2]]);
    const g = a.added[0]?.group as PmiGroupInfo;
    expect(g).toMatchObject({ kvsname: 'kvs_1_t_spawn1', size: 3, localCount: 2, spawned: true, parentKvsname: 'kvs_1_t', initialKvs: [['PARENT_ROOT_PORT_NAME', 'port-0']] });
    expect(g.processMapping).toBe('(vector,(0,1,2),(1,1,1))');
    expect(b.added[0]?.group.localCount).toBe(1);
    const l = a.added[0]?.launches[1] as RankLaunch;
    expect(l.file).toBe(prog);
    expect(l.args).toEqual(['x']);
    expect(l.stdin).toBe(false);
    expect(l.pmi).toEqual({ kvsname: 'kvs_1_t_spawn1', rank: 1, appnum: 0 });
    expect(l.env).toMatchObject({ PMI_RANK: '1', PMI_SIZE: '3', PMI_SPAWNED: '1', PMI_FD: '3', MPI_LOCALRANKID: '1', MPI_LOCALNRANKS: '2', SEG: 'zero' });
    // the job ends only once the children settled too
    let ended = false;
    void done.then(() => (ended = true));
    for (const id of [0, 1, 2, 3]) {
      const f = id < 2 ? a : b;
      f.spec.events.exited(id, { kind: 'exited', code: 0 });
      f.spec.events.settled(id, { kind: 'exited', code: 0 }, 'finalized');
    }
    await new Promise((r) => setTimeout(r, 20));
    expect(ended).toBe(false);
    endAll();
    const out: JobOutcome = await done;
    expect(out.causes).toEqual([]);
    expect(out.ranks.map((r) => [r.rank, r.host, r.spawn])).toEqual([
      [0, 'a', undefined],
      [1, 'a', undefined],
      [2, 'b', undefined],
      [3, 'b', undefined],
      [4, 'a', { group: 1, rank: 0 }],
      [5, 'a', { group: 1, rank: 1 }],
      [6, 'b', { group: 1, rank: 2 }],
    ]);
  });

  it('honours the info keys host, wdir and path, and gives each command its appnum', async () => {
    const { job, fakes, done, endAll } = makeJob();
    const res = await job.spawn(
      request({
        commands: [
          { command: 'child', args: [], maxprocs: 2, info: [['host', 'b'], ['path', path.join(dir, 'bin')], ['wdir', 'work']] },
          { command: prog, args: [], maxprocs: 1, info: [['host', 'a']] },
        ],
      }),
    );
    expect(res.ok).toBe(true);
    const [a, b] = fakes as [Fake, Fake];
    expect(b.added[0]?.launches.map((l) => [l.rank, l.file, l.cwd, l.pmi?.appnum])).toEqual([
      [4, prog, path.join(dir, 'work'), 0],
      [5, prog, path.join(dir, 'work'), 0],
    ]);
    expect(a.added[0]?.launches.map((l) => [l.rank, l.pmi?.rank, l.pmi?.appnum])).toEqual([[6, 2, 1]]);
    endAll();
    await done;
  });

  it('children of a spawn by a rank of the second segment inherit that segment\'s environment; a second spawn is group 2', async () => {
    const { job, fakes, done, endAll } = makeJob(['-hosts', 'a:2,b:2', '-n', '2', '-env', 'SEG', 'zero', prog, ':', '-n', '2', '-env', 'SEG', 'one', prog]);
    expect((await job.spawn(request({ parentRank: 3, commands: [{ command: prog, args: [], maxprocs: 1, info: [] }] }))).ok).toBe(true);
    const res2 = await job.spawn(request({ commands: [{ command: prog, args: [], maxprocs: 1, info: [] }] }));
    expect(res2).toEqual({ ok: true, kvsname: 'kvs_1_t_spawn2' });
    const a = fakes[0] as Fake;
    expect(a.added.map((x) => [x.launches[0]?.rank, x.launches[0]?.env.SEG])).toEqual([
      [4, 'one'],
      [5, 'zero'],
    ]);
    endAll();
    await done;
  });

  it('refuses bad requests with a reason and one line, starting nothing', async () => {
    const { job, fakes, done, endAll, err } = makeJob();
    const cases: Array<[Partial<SpawnRequest>, RegExp]> = [
      [{ commands: [{ command: prog, args: [], maxprocs: 1, info: [['host', 'c']] }] }, /host c is not one of the job's hosts \(a, b\)/],
      [{ commands: [{ command: prog, args: [], maxprocs: 1, info: [['hostfile', '/etc/hosts']] }] }, /hostfile is not supported/],
      [{ commands: [{ command: '/nonexistent/x', args: [], maxprocs: 1, info: [] }] }, /program not found/],
      [{ commands: [{ command: prog, args: [], maxprocs: 0, info: [] }] }, /spawn of no processes/],
      [{ commands: [{ command: prog, args: [], maxprocs: 70000, info: [] }] }, /would pass the limit of 65536/],
      [{ commands: [{ command: prog, args: [], maxprocs: 1, info: [['wdir', 'no-such-dir']] }] }, /no-such-dir/],
    ];
    for (const [over, why] of cases) {
      const res = await job.spawn(request(over));
      expect(res.ok).toBe(false);
      if (!res.ok) expect(res.error).toMatch(why);
    }
    expect(fakes.every((f) => f.added.length === 0)).toBe(true);
    expect(err.text.split('\n').filter((l) => l.startsWith('MPI_Comm_spawn from rank 0 failed: '))).toHaveLength(cases.length);
    endAll();
    const out = await done;
    expect(out.causes).toEqual([]);
    expect(out.ranks).toHaveLength(4);
  });

  it('a proxy that cannot start its share, while another did: the spawn fails and the job ends (launch failure)', async () => {
    const { job, fakes, done, endAll } = makeJob();
    (fakes[1] as Fake).refuse = 'no room';
    const res = await job.spawn(request());
    expect(res).toEqual({ ok: false, error: 'cannot start the spawned processes on b: no room' });
    endAll();
    const out = await done;
    expect(out.causes[0]).toMatchObject({ kind: 'launch-failed', host: 'b' });
    expect(out.ranks.find((r) => r.rank === 6)?.outcome).toEqual({ kind: 'not-started', reason: 'no room' });
  });

  it('a proxy that cannot start anything of a spawn fails only the spawn', async () => {
    const { job, fakes, done, endAll } = makeJob();
    for (const f of fakes) f.refuse = 'no room';
    const res = await job.spawn(request());
    expect(res.ok).toBe(false);
    endAll();
    const out = await done;
    expect(out.causes).toEqual([]);
  });
});
