// Plans against fake cgroup trees: pure v2, hybrid (this project's machine), v1 with cpu/cpuacct split and
// joined, nothing writable; which files are created and written, which limits, and which kill method.
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { planIsolation } from '../../src/isolate/plan.js';
import { probeCapabilities } from '../../src/isolate/probe.js';
import type { IsolationPlan, IsolationRequest } from '../../src/isolate/types.js';
import { TsmpiError } from '../../src/util/errors.js';
import { makeFakeHost, type FakeHost, type FakeHostOptions, type Layout } from '../fixtures/isolate/fake-host.js';

const hosts: FakeHost[] = [];
afterEach(() => {
  for (const h of hosts.splice(0)) h.dispose();
});

function host(o: FakeHostOptions): FakeHost {
  const h = makeFakeHost(o);
  hosts.push(h);
  return h;
}

function req(over: Partial<IsolationRequest> = {}): IsolationRequest {
  return { jobId: 'j1', host: 'node1', mode: 'auto', limits: {}, ranks: [0, 1], inBatch: false, ...over };
}

function plan(h: FakeHost, r: IsolationRequest): IsolationPlan {
  return planIsolation(r, probeCapabilities(h.deps));
}

const writesOf = (h: FakeHost, p: IsolationPlan): Record<string, string> =>
  Object.fromEntries(p.writes.map((w) => [h.rel(w.path), w.value]));

describe('pure cgroup v2 with controllers', () => {
  it('enables controllers after moving itself to a leaf, sets memory.max/pids.max/cpu.max/oom.group per rank, kills with cgroup.kill', () => {
    const h = host({ layout: 'v2', v2Controllers: ['cpu', 'io', 'memory', 'pids'], mountNsOk: true });
    const p = plan(h, req({ limits: { memPerRankBytes: 1 << 26, pidsPerRank: 50, cpuPerRank: 1.5 } }));
    const own = h.own('v2');
    const job = `${own}/tsmpiexec-j1-node1`;
    expect(p.cgroup).toBe('v2');
    expect(p.notice).toBeUndefined();
    expect(p.enable).toEqual({ hier: 'v2', controllers: ['cpu', 'io', 'memory', 'pids'], moveSelfTo: `${own}/tsmpiexec-proxy-4242` });
    expect(p.mkdirs).toEqual([job, `${job}/rank-0`, `${job}/rank-1`, `${job}/holder`]);
    const w = writesOf(h, p);
    expect(w[h.rel(`${job}/cgroup.subtree_control`)]).toBe('+cpu +io +memory +pids');
    expect(w[h.rel(`${job}/rank-1/memory.max`)]).toBe(String(1 << 26));
    expect(w[h.rel(`${job}/rank-1/memory.oom.group`)]).toBe('1');
    expect(w[h.rel(`${job}/rank-1/pids.max`)]).toBe('50');
    expect(w[h.rel(`${job}/rank-0/cpu.max`)]).toBe('150000 100000');
    // the job cgroup's controllers must be on before the limits are written
    expect(p.writes[0]?.path).toBe(`${job}/cgroup.subtree_control`);
    expect(p.join[0]).toEqual([`${job}/rank-0/cgroup.procs`]);
    expect(p.kill).toEqual({ kind: 'cgroup.kill', hier: 'v2' });
    expect(p.accounting).toEqual({
      cpu: { hier: 'v2', kind: 'v2' },
      memory: { hier: 'v2', kind: 'v2' },
      pids: { hier: 'v2' },
      io: { hier: 'v2', kind: 'v2' },
    });
    expect(p.tmpMethod).toBe('holder');
    expect(p.holderJoin).toEqual([`${job}/holder/cgroup.procs`]);
    expect(p.tmpfsSize).toBe(2 * (1 << 26));
  });

  it('does not move itself when the controllers are already delegated and enabled', () => {
    const h = host({ layout: 'v2', v2Controllers: ['memory', 'pids'], v2Enabled: ['memory', 'pids'], v2OtherProcs: [7, 8] });
    const p = plan(h, req());
    expect(p.cgroup).toBe('v2');
    expect(p.enable?.moveSelfTo).toBeUndefined();
    expect(p.accounting.memory).toEqual({ hier: 'v2', kind: 'v2' });
    expect(p.accounting.io).toBeNull();
    expect(p.notice).toMatch(/block I\/O not measured/);
  });

  it('falls back to the v2 core when other processes share our cgroup (no-internal-process rule), and says so', () => {
    const h = host({ layout: 'v2', v2Controllers: ['memory', 'pids'], v2OtherProcs: [7] });
    const p = plan(h, req({ limits: { memPerRankBytes: 1 << 26 } }));
    expect(p.cgroup).toBe('v2');
    expect(p.enable).toBeUndefined();
    expect(p.accounting.memory).toBeNull();
    expect(p.kill.kind).toBe('cgroup.kill');
    expect(p.writes.some((w) => w.path.endsWith('memory.max'))).toBe(false);
    expect(p.notice).toMatch(/1 other processes share our cgroup/);
    expect(p.notice).toMatch(/memory limit not enforced/);
    expect(p.notice?.includes('\n')).toBe(false);
  });

  it('strict refuses a limit it cannot enforce, before anything is created', () => {
    const h = host({ layout: 'v2', v2Controllers: ['memory', 'pids'], v2OtherProcs: [7], mountNsOk: true });
    expect(() => plan(h, req({ mode: 'strict', limits: { memPerRankBytes: 1 << 26 } }))).toThrow(/memory limit not enforced/);
    expect(h.writes).toEqual([]);
  });
});

describe('hybrid (v2 core + v1 controllers, as on the project machine)', () => {
  const blockDevices = [
    { name: 'vda', dev: '254:0', size: 1000 },
    { name: 'vdb', dev: '254:16', size: 5 },
    { name: 'loop0', dev: '7:0', size: 0 },
  ];

  it('joins v2 for membership/kill/cpu and v1 memory, pids, blkio for limits and accounting', () => {
    const h = host({ layout: 'hybrid', mountNsOk: true, blockDevices });
    const p = plan(h, req({ limits: { memPerRankBytes: 1 << 27, pidsPerRank: 20 } }));
    const j = (key: string): string => `${h.own(key)}/tsmpiexec-j1-node1`;
    expect(p.cgroup).toBe('hybrid');
    expect(p.notice).toBeUndefined();
    expect(p.join[1]).toEqual([
      `${j('v2')}/rank-1/cgroup.procs`,
      `${j('blkio')}/rank-1/cgroup.procs`,
      `${j('memory')}/rank-1/cgroup.procs`,
      `${j('pids')}/rank-1/cgroup.procs`,
    ]);
    expect(j('memory')).toContain('/memory/process_api/abc123/');
    expect(p.kill).toEqual({ kind: 'cgroup.kill', hier: 'v2' });
    expect(p.accounting.cpu).toEqual({ hier: 'v2', kind: 'v2' });
    expect(p.accounting.io).toEqual({ hier: 'blkio', kind: 'v1-blkio' });
    const w = writesOf(h, p);
    expect(w[h.rel(`${j('memory')}/rank-0/memory.limit_in_bytes`)]).toBe(String(1 << 27));
    expect(w[h.rel(`${j('pids')}/rank-0/pids.max`)]).toBe('20');
    // one no-op read and write rule per non-empty device, on the job cgroup (children inherit the counting)
    expect(p.writes.filter((x) => x.what === 'no-op blkio rule').map((x) => [h.rel(x.path), x.value])).toEqual([
      [h.rel(`${j('blkio')}/blkio.throttle.read_bps_device`), '254:0 1099511627776'],
      [h.rel(`${j('blkio')}/blkio.throttle.write_bps_device`), '254:0 1099511627776'],
      [h.rel(`${j('blkio')}/blkio.throttle.read_bps_device`), '254:16 1099511627776'],
      [h.rel(`${j('blkio')}/blkio.throttle.write_bps_device`), '254:16 1099511627776'],
    ]);
    // freezer, cpu and cpuacct are not needed here
    expect(Object.keys(p.jobDirs).sort()).toEqual(['blkio', 'memory', 'pids', 'v2']);
    expect(p.holderJoin).toEqual([`${j('v2')}/holder/cgroup.procs`]);
  });

  it('ranks whose I/O comes with their exit (the native helper) join the job\'s blkio cgroup instead of their own', () => {
    const h = host({ layout: 'hybrid', mountNsOk: true, blockDevices });
    const j = (key: string): string => `${h.own(key)}/tsmpiexec-j1-node1`;
    const withHelper = probeCapabilities({ ...h.deps, nativeHelper: () => '/opt/tsmpiexec-helper' });
    const p = planIsolation(req({ ranks: [0, 1], ioAtExit: [1] }), withHelper);
    expect(p.ioAtExitHier).toBe('blkio');
    expect(p.join[1]).toEqual([
      `${j('v2')}/rank-1/cgroup.procs`,
      `${j('blkio')}/cgroup.procs`,
      `${j('memory')}/rank-1/cgroup.procs`,
      `${j('pids')}/rank-1/cgroup.procs`,
    ]);
    expect(p.rankDirs[1]).not.toHaveProperty('blkio');
    expect(p.mkdirs).not.toContain(`${j('blkio')}/rank-1`);
    // rank 0 starts without the helper (it reads stdin): it keeps a blkio cgroup of its own
    expect(p.join[0]).toContain(`${j('blkio')}/rank-0/cgroup.procs`);
    // the job's cgroup still counts every rank's I/O for the host figures
    expect(p.writes.some((x) => x.path === `${j('blkio')}/blkio.throttle.read_bps_device`)).toBe(true);
    // without the helper nobody reports I/O at exit: every rank has its own
    const q = plan(h, req({ ranks: [0, 1], ioAtExit: [1] }));
    expect(q.ioAtExitHier).toBeUndefined();
    expect(q.join[1]).toContain(`${j('blkio')}/rank-1/cgroup.procs`);
  });

  it('adds the v1 cpu hierarchy only when a CPU limit is asked for', () => {
    const h = host({ layout: 'hybrid' });
    const p = plan(h, req({ ranks: [3], limits: { cpuPerRank: 0.5 } }));
    const d = `${h.own('cpu')}/tsmpiexec-j1-node1/rank-3`;
    expect(p.join[3]).toContain(`${d}/cgroup.procs`);
    const w = writesOf(h, p);
    expect(w[h.rel(`${d}/cpu.cfs_period_us`)]).toBe('100000');
    expect(w[h.rel(`${d}/cpu.cfs_quota_us`)]).toBe('50000');
  });
});

describe('cgroup v1 only', () => {
  it('split cpu/cpuacct: CPU time from the cpuacct hierarchy, kill with the freezer', () => {
    const h = host({ layout: 'v1-split' });
    const p = plan(h, req({ limits: { memPerRankBytes: 1 << 26 } }));
    expect(p.cgroup).toBe('v1');
    expect(p.kill).toEqual({ kind: 'freezer', hier: 'freezer' });
    expect(p.accounting.cpu).toEqual({ hier: 'cpuacct', kind: 'v1-cpuacct' });
    expect(Object.keys(p.jobDirs).sort()).toEqual(['blkio', 'cpuacct', 'freezer', 'memory', 'pids']);
    const w = p.writes.map((x) => x.path);
    expect(w.filter((x) => x.endsWith('/memory.limit_in_bytes'))).toHaveLength(2);
    expect(w.some((x) => x.includes('/cpu/'))).toBe(false);
  });

  it('joined cpu,cpuacct: one directory serves both accounting and the CPU limit', () => {
    const h = host({ layout: 'v1-joined' });
    const p = plan(h, req({ ranks: [0], limits: { cpuPerRank: 2 } }));
    expect(p.accounting.cpu).toEqual({ hier: 'cpu,cpuacct', kind: 'v1-cpuacct' });
    const d = `${h.own('cpu,cpuacct')}/tsmpiexec-j1-node1/rank-0`;
    expect(p.join[0]?.filter((x) => x === `${d}/cgroup.procs`)).toHaveLength(1);
    expect(writesOf(h, p)[h.rel(`${d}/cpu.cfs_quota_us`)]).toBe('200000');
  });
});

describe('no writable cgroups', () => {
  const all = ['v2', 'cpu', 'cpuacct', 'memory', 'pids', 'freezer', 'blkio', 'devices'];

  it('unprivileged, outside a pod: cgroup none, marker sweep, 0700 TMPDIR, one line that says why', () => {
    const h = host({ layout: 'hybrid', uid: 65534, denied: all, podOk: true });
    const p = plan(h, req({ limits: { pidsPerRank: 10 } }));
    expect(p.cgroup).toBe('none');
    expect(p.kill).toEqual({ kind: 'marker-sweep' });
    expect(p.accounting.cpu).toEqual({ kind: 'sampled' });
    expect(p.tmp).toBe('tmpdir');
    expect(p.mkdirs).toEqual([]);
    expect(p.notice).toMatch(/^isolation on node1: /);
    expect(p.notice).toMatch(/not started through podCommand/);
    expect(p.notice).toMatch(/no cgroups \(mkdir in .*unified: EACCES/);
    expect(p.notice).toMatch(/pids limit not enforced/);
    expect(p.notice?.split('\n')).toHaveLength(1);
  });

  it('inside a pod: private /tmp, kill by sweeping the PID namespace', () => {
    const h = host({ layout: 'hybrid', uid: 1000, denied: all, inPod: 'j1' });
    const p = plan(h, req());
    expect(p.tmp).toBe('private');
    expect(p.tmpMethod).toBe('pod');
    expect(p.kill).toEqual({ kind: 'pod-sweep' });
    expect(p.notice).toMatch(/containment by the PID-namespace pod/);
  });

  it('strict throws a TsmpiError with code isolation and names the reason', () => {
    const h = host({ layout: 'v1-split', uid: 1000, denied: all });
    let err: unknown;
    try {
      plan(h, req({ mode: 'strict' }));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TsmpiError);
    expect((err as TsmpiError).code).toBe('isolation');
    expect((err as TsmpiError).message).toMatch(/no cgroups/);
    expect((err as TsmpiError).message).toMatch(/user namespaces unavailable/);
  });
});

describe('request checks and off', () => {
  it('off plans nothing at all', () => {
    const h = host({ layout: 'hybrid', mountNsOk: true });
    const p = plan(h, req({ mode: 'off', limits: { memPerRankBytes: 1 } }));
    expect(p).toMatchObject({ cgroup: 'none', tmp: 'none', mkdirs: [], writes: [], kill: { kind: 'none' } });
  });

  it.each(['a/b', '..', '', 'x y', 'j;rm'])('rejects job id %j', (jobId) => {
    const h = host({ layout: 'hybrid' });
    expect(() => plan(h, req({ jobId }))).toThrow(TsmpiError);
  });

  it('rejects nonsense limits', () => {
    const h = host({ layout: 'hybrid' });
    expect(() => plan(h, req({ limits: { memPerRankBytes: -5 } }))).toThrow(/memory limit/);
    expect(() => plan(h, req({ limits: { pidsPerRank: 1.5 } }))).toThrow(/pids limit/);
  });
});

describe('invariants over random requests and layouts', () => {
  const layouts: Array<{ layout: Layout; v2Controllers?: string[] }> = [
    { layout: 'v2', v2Controllers: ['cpu', 'io', 'memory', 'pids'] },
    { layout: 'hybrid' },
    { layout: 'v1-split' },
    { layout: 'v1-joined' },
  ];
  const fakes = layouts.map((l) => {
    const h = makeFakeHost({ ...l, mountNsOk: true });
    return { h, caps: probeCapabilities(h.deps) };
  });

  it('every path stays inside our own cgroups, carries the job name, and parents come before children', () => {
    try {
      fc.assert(
        fc.property(
          fc.integer({ min: 0, max: 3 }),
          fc.stringMatching(/^[A-Za-z0-9_-]{1,20}$/),
          fc.string({ minLength: 1, maxLength: 20 }),
          fc.uniqueArray(fc.integer({ min: 0, max: 500 }), { minLength: 1, maxLength: 6 }),
          fc.record({ memPerRankBytes: fc.option(fc.integer({ min: 1 << 20, max: 2 ** 40 }), { nil: undefined }), pidsPerRank: fc.option(fc.integer({ min: 1, max: 1000 }), { nil: undefined }) }),
          (li, jobId, hostName, ranks, limits) => {
            const { h, caps } = fakes[li]!;
            const p = planIsolation({ jobId, host: hostName, mode: 'auto', limits, ranks, inBatch: true }, caps);
            const owns = Object.values(p.ownDirs);
            const all = [...p.mkdirs, ...p.writes.map((w) => w.path), ...Object.values(p.join).flat()];
            for (const x of all) {
              expect(owns.some((o) => x.startsWith(`${o}/tsmpiexec-${jobId}-`))).toBe(true);
              expect(x.startsWith(h.root)).toBe(true);
            }
            for (const [i, d] of p.mkdirs.entries()) {
              const parent = d.slice(0, d.lastIndexOf('/'));
              if (p.mkdirs.includes(parent)) expect(p.mkdirs.indexOf(parent)).toBeLessThan(i);
            }
            for (const r of ranks) expect(p.join[r]).toHaveLength(Object.keys(p.jobDirs).length);
          },
        ),
        { numRuns: 200 },
      );
    } finally {
      for (const f of fakes) f.h.dispose();
    }
  });
});
