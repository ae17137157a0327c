// The CPU sets of a job's cgroups when its ranks are bound (issue #22): planned against fake v1 and v2 trees,
// applied, joined, shared by ranks of the same CPUs, extended for spawned ranks and removed; and the notice where there is no cpuset controller.
import * as fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { setupIsolation } from '../../src/isolate/setup.js';
import { planIsolation } from '../../src/isolate/plan.js';
import { probeCapabilities } from '../../src/isolate/probe.js';
import type { IsolationPlan, IsolationRequest } from '../../src/isolate/types.js';
import { fakeHostsOfTest, makeFakeHost, type FakeHost, type FakeHostOptions } from '../fixtures/isolate/fake-host.js';

const host = fakeHostsOfTest();
function req(over: Partial<IsolationRequest> = {}): IsolationRequest {
  return { jobId: 'j3', host: 'n1', mode: 'auto', limits: {}, ranks: [0, 1], inBatch: false, cpus: { 0: [2], 1: [3, 7] }, ...over };
}
const plan = (h: FakeHost, r: IsolationRequest): IsolationPlan => planIsolation(r, probeCapabilities(h.deps));
const read = (p: string): string => fs.readFileSync(p, 'utf8').trim();
const writesOf = (h: FakeHost, p: IsolationPlan): Array<[string, string]> => p.writes.map((w) => [h.rel(w.path), w.value]);

describe('planning', () => {
  it('v1: the job gets the union, each CPU set one cgroup, all with our memory nodes, before anything joins', () => {
    const h = host({ layout: 'hybrid', cpuset: { cpus: '0-7', mems: '0-1' } });
    const p = plan(h, req());
    const job = `${h.own('cpuset')}/tsmpiexec-j3-n1`;
    expect(p.cpuset).toEqual({ hier: 'cpuset', version: 1, jobCpus: '2-3,7', mems: '0-1', ranks: { 0: '2', 1: '3,7' } });
    expect(p.mkdirs).toEqual(expect.arrayContaining([job, `${job}/cpus-2`, `${job}/cpus-3_7`]));
    expect(p.mkdirs.filter((d) => d.startsWith(`${job}/rank-`))).toEqual([]);
    const w = writesOf(h, p).filter(([path]) => path.includes('/cpuset/'));
    expect(w).toEqual([
      [h.rel(`${job}/cpuset.cpus`), '2-3,7'],
      [h.rel(`${job}/cpuset.mems`), '0-1'],
      [h.rel(`${job}/cpus-2/cpuset.cpus`), '2'],
      [h.rel(`${job}/cpus-2/cpuset.mems`), '0-1'],
      [h.rel(`${job}/cpus-3_7/cpuset.cpus`), '3,7'],
      [h.rel(`${job}/cpus-3_7/cpuset.mems`), '0-1'],
    ]);
    expect(p.writes.filter((w) => w.path.includes('/cpuset/')).every((w) => w.critical === true)).toBe(true);
    expect(p.join[1]).toContain(`${job}/cpus-3_7/cgroup.procs`);
    expect(p.notice ?? '').not.toMatch(/cpuset/);
  });

  it('v1: ranks on the same CPUs share one cpuset cgroup; ranks on all of the job\'s CPUs join the job\'s', () => {
    const h = host({ layout: 'hybrid', cpuset: { cpus: '0-7', mems: '0' } });
    // four ranks wrapped round two cores, and one with both
    const p = plan(h, req({ ranks: [0, 1, 2, 3, 4], cpus: { 0: [0], 1: [1], 2: [0], 3: [1], 4: [0, 1] } }));
    const job = `${h.own('cpuset')}/tsmpiexec-j3-n1`;
    const cpusetDirs = p.mkdirs.filter((d) => d.startsWith(`${job}/`));
    expect(cpusetDirs).toEqual([`${job}/cpus-0`, `${job}/cpus-1`]);
    expect(p.join[0]).toContain(`${job}/cpus-0/cgroup.procs`);
    expect(p.join[2]).toContain(`${job}/cpus-0/cgroup.procs`);
    expect(p.join[3]).toContain(`${job}/cpus-1/cgroup.procs`);
    expect(p.join[4]).toContain(`${job}/cgroup.procs`);
    // the figures' hierarchies keep a cgroup per rank
    expect(p.mkdirs).toEqual(expect.arrayContaining([`${h.own('memory')}/tsmpiexec-j3-n1/rank-2`]));
    expect(p.writes.filter((w) => w.path.startsWith(`${job}/cpus-0/`)).map((w) => w.value)).toEqual(['0', '0']);
  });

  it('v2: cpuset is enabled with the other controllers and only cpus are written (mems come from the parent)', () => {
    const h = host({ layout: 'v2', v2Controllers: ['cpuset', 'memory', 'pids'], cpuset: { cpus: '0-7', mems: '0' } });
    const p = plan(h, req());
    const job = `${h.own('v2')}/tsmpiexec-j3-n1`;
    expect(p.enable?.controllers).toEqual(['cpuset', 'memory', 'pids']);
    expect(p.cpuset).toEqual({ hier: 'v2', version: 2, jobCpus: '2-3,7', ranks: { 0: '2', 1: '3,7' } });
    const w = writesOf(h, p);
    expect(w[0]).toEqual([h.rel(`${job}/cgroup.subtree_control`), '+cpuset +memory +pids']);
    expect(w).toEqual(expect.arrayContaining([
      [h.rel(`${job}/cpuset.cpus`), '2-3,7'],
      [h.rel(`${job}/rank-0/cpuset.cpus`), '2'],
      [h.rel(`${job}/rank-1/cpuset.cpus`), '3,7'],
    ]));
    expect(w.some(([path]) => path.endsWith('cpuset.mems'))).toBe(false);
  });

  it('unbound jobs plan no cpuset (v2 does not even enable it)', () => {
    const h = host({ layout: 'v2', v2Controllers: ['cpuset', 'memory'], cpuset: { cpus: '0-7', mems: '0' } });
    const p = plan(h, req({ cpus: undefined }));
    expect(p.cpuset).toBeUndefined();
    expect(p.enable?.controllers).toEqual(['memory']);
    const v1 = host({ layout: 'hybrid', cpuset: { cpus: '0-7', mems: '0' } });
    const q = plan(v1, req({ cpus: {} }));
    expect(q.cpuset).toBeUndefined();
    expect(Object.keys(q.jobDirs)).not.toContain('cpuset');
  });

  it('no cpuset controller: the notice says a rank may widen its binding', () => {
    const h = host({ layout: 'hybrid' });
    const p = plan(h, req());
    expect(p.cpuset).toBeUndefined();
    expect(p.notice).toMatch(/^isolation on n1: .*no cpuset controller: a rank may widen its CPU binding/);
    const v2 = host({ layout: 'v2', v2Controllers: ['memory', 'pids'] });
    expect(plan(v2, req()).notice).toMatch(/no cpuset controller/);
    // nothing is said when nothing is bound
    expect(plan(h, req({ cpus: undefined })).notice ?? '').not.toMatch(/cpuset/);
  });

  it('CPUs outside our own cpuset, or no memory nodes: not confined, and said', () => {
    const h = host({ layout: 'hybrid', cpuset: { cpus: '0-2', mems: '0' } });
    const p = plan(h, req());
    expect(p.cpuset).toBeUndefined();
    expect(p.notice).toMatch(/our cpuset \(0-2\) lacks CPUs 3,7: a rank may widen its CPU binding/);
    const m = host({ layout: 'hybrid', cpuset: { cpus: '0-7', mems: '' } });
    expect(plan(m, req()).notice).toMatch(/no memory nodes in our cpuset/);
  });
});

describe('applying', () => {
  it('v1: made, joined after the CPUs are written, extended to spawned ranks with the job\'s CPUs, removed', async () => {
    const h = host({ layout: 'hybrid', cpuset: { cpus: '0-7', mems: '0-1' } });
    const iso = await setupIsolation(req(), h.deps);
    const job = `${h.own('cpuset')}/tsmpiexec-j3-n1`;
    expect(read(`${job}/cpuset.cpus`)).toBe('2-3,7');
    expect(read(`${job}/cpus-2/cpuset.cpus`)).toBe('2');
    expect(read(`${job}/cpus-3_7/cpuset.mems`)).toBe('0-1');
    // the fake kernel refuses a join into an empty v1 cpuset (ENOSPC): these go through
    h.deps.fs.writeFile(`${job}/cpus-3_7/cgroup.procs`, '555');
    expect(() => h.deps.fs.writeFile(`${h.own('cpuset')}/cgroup.procs`, '4242')).not.toThrow();
    // a spawned rank has the job's CPUs: it joins the job's cpuset cgroup, which has them
    iso.addRanks([2]);
    expect(fs.existsSync(`${job}/rank-2`)).toBe(false);
    expect(iso.wrap(2, ['true']).join(' ')).toContain(`${job}/cgroup.procs`);
    h.set(`${job}/cpus-3_7/cgroup.procs`, '');
    expect((await iso.cleanup()).leftovers).toEqual([]);
    expect(fs.existsSync(job)).toBe(false);
  });

  it('v1: a CPU set the kernel refuses fails setup even in auto mode, and nothing is left', async () => {
    const h = host({ layout: 'hybrid', cpuset: { cpus: '0-7', mems: '0' }, failWrites: { 'cpuset.cpus': 'EINVAL' } });
    await expect(setupIsolation(req(), h.deps)).rejects.toThrow(/cannot set CPU set .*cpuset\.cpus = 2-3,7\): EINVAL/);
    const left: string[] = [];
    const walk = (d: string): void => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        if (e.isDirectory()) (e.name.startsWith('tsmpiexec-') ? left.push(`${d}/${e.name}`) : walk(`${d}/${e.name}`));
      }
    };
    walk(h.root);
    expect(left).toEqual([]);
  });

  it('v2: a refused CPU set is a note, not a failure', async () => {
    const h = host({ layout: 'v2', v2Controllers: ['cpuset', 'memory'], cpuset: { cpus: '0-7', mems: '0' }, failWrites: { 'cpuset.cpus': 'EINVAL' } });
    const iso = await setupIsolation(req(), h.deps);
    expect(iso.notice).toMatch(/CPU set \(EINVAL\) not set/);
    expect((await iso.cleanup()).leftovers).toEqual([]);
  });
});
