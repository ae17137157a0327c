// setupIsolation against fake cgroup trees: what it creates and writes, how it reads usage, which kill it
// performs, and that cleanup removes everything (or reports what it could not) — no real processes.
import * as fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { podCommand, setupIsolation } from '../../src/isolate/setup.js';
import { applyCgroups } from '../../src/isolate/cgroup-apply.js';
import { planIsolation } from '../../src/isolate/plan.js';
import { probeCapabilities } from '../../src/isolate/probe.js';
import type { IsolationRequest } from '../../src/isolate/types.js';
import { TsmpiError } from '../../src/util/errors.js';
import { fakeHostsOfTest, makeFakeHost, type FakeHost, type FakeHostOptions } from '../fixtures/isolate/fake-host.js';

const host = fakeHostsOfTest();
function req(over: Partial<IsolationRequest> = {}): IsolationRequest {
  return { jobId: 'j7', host: 'n1', mode: 'auto', limits: {}, ranks: [0, 1], inBatch: false, ...over };
}
const read = (p: string): string => fs.readFileSync(p, 'utf8');
function findJobDirs(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (!e.isDirectory()) continue;
      if (e.name.startsWith('tsmpiexec-')) out.push(`${d}/${e.name}`);
      else walk(`${d}/${e.name}`);
    }
  };
  walk(root);
  return out;
}

describe('many cgroups at once', () => {
  // The kernel's cgroup migrations stay fast only while they come within a grace period of each other; creating a
  // big job's cgroups takes longer than that, so setup.ts moves itself (a no-op) every KEEP_WARM_EVERY of them.
  it('calls keepWarm once per 64 cgroups created, in the middle of the creation', () => {
    const h = host({ layout: 'hybrid' });
    const plan = planIsolation(req({ ranks: [...Array(40).keys()] }), probeCapabilities(h.deps));
    let made = 0;
    const fsCounting = { ...h.deps.fs, mkdir: (p: string, mode?: number) => (h.deps.fs.mkdir(p, mode), made++) };
    const madeAt: number[] = [];
    applyCgroups({ ...h.deps, fs: fsCounting }, plan, 'auto', () => madeAt.push(made));
    expect(plan.mkdirs.length).toBeGreaterThan(128);
    expect(made).toBe(plan.mkdirs.length);
    expect(madeAt).toEqual([...Array(Math.floor(plan.mkdirs.length / 64)).keys()].map((k) => 64 * (k + 1)));
  });
});

describe('the /tmp holder, started before the cgroups are made', () => {
  // The fake host cannot start processes: its spawn throws at once, before the cgroups exist.
  it('auto: a holder that fails before the cgroups were made still gets the cgroups, and a 0700 TMPDIR', async () => {
    const h = host({ layout: 'hybrid', mountNsOk: true });
    const iso = await setupIsolation(req(), h.deps);
    expect(iso.tmp).toBe('tmpdir');
    expect(iso.notice).toMatch(/no private \/tmp \(fake host: no processes in unit tests\)/);
    expect(fs.existsSync(`${h.own('memory')}/tsmpiexec-j7-n1/rank-1`)).toBe(true);
    expect((await iso.cleanup()).leftovers).toEqual([]);
    expect(findJobDirs(h.root)).toEqual([]);
  });

  it("strict: the holder's failure, and nothing left (not even the batch scratch dir made for it)", async () => {
    const h = host({ layout: 'hybrid', mountNsOk: true });
    const scratch = fs.mkdtempSync(`${h.root}/condor-scratch-`);
    await expect(setupIsolation(req({ mode: 'strict', scratchDir: scratch }), h.deps)).rejects.toThrow(/fake host: no processes/);
    expect(findJobDirs(h.root)).toEqual([]);
    expect(fs.readdirSync(scratch)).toEqual([]);
  });
});

describe('hybrid apply', () => {
  it('creates the cgroups, writes limits and no-op blkio rules, uses a 0700 TMPDIR when no mount namespace', async () => {
    const h = host({ layout: 'hybrid', mountNsOk: false });
    const iso = await setupIsolation(req({ limits: { memPerRankBytes: 100 << 20, pidsPerRank: 30 } }), h.deps);
    expect(iso.cgroup).toBe('hybrid');
    expect(iso.tmp).toBe('tmpdir');
    expect(iso.notice).toMatch(/no private \/tmp \(mount namespace failed: unshare: unshare failed: Operation not permitted\)/);
    const mem = `${h.own('memory')}/tsmpiexec-j7-n1`;
    expect(read(`${mem}/rank-1/memory.limit_in_bytes`)).toBe(String(100 << 20));
    expect(read(`${h.own('pids')}/tsmpiexec-j7-n1/rank-0/pids.max`)).toBe('30');
    expect(read(`${h.own('blkio')}/tsmpiexec-j7-n1/blkio.throttle.write_bps_device`)).toBe('254:0 1099511627776');
    const env = iso.env(1);
    expect(env.TSMPIEXEC_JOB).toBe('j7');
    expect(env.TSMPIEXEC_RANK).toBe('1');
    const tmpdir = env.TMPDIR!;
    expect(tmpdir.startsWith(`${h.root}/tmp/tsmpiexec-j7-n1-`)).toBe(true);
    expect(fs.statSync(tmpdir).mode & 0o777).toBe(0o700);
    const argv = iso.wrap(1, ['prog', 'a b', "it's"]);
    expect(argv.slice(-3)).toEqual(['prog', 'a b', "it's"]);
    expect(argv[2]).toContain(`${h.own('v2')}/tsmpiexec-j7-n1/rank-1/cgroup.procs`);
    expect(argv[2]).toContain(`${mem}/rank-1/cgroup.procs`);
    expect(() => iso.wrap(5, ['x'])).toThrow(/rank 5 is not placed/);

    // a shm segment of this job and one of another job: only ours goes
    fs.writeFileSync(`${h.root}/dev/shm/vader_segment.n1.0.j7.0`, 'x');
    fs.writeFileSync(`${h.root}/dev/shm/vader_segment.n1.0.other.0`, 'x');
    const { leftovers } = await iso.cleanup();
    expect(leftovers).toEqual([]);
    expect(findJobDirs(h.root)).toEqual([]);
    expect(fs.existsSync(tmpdir)).toBe(false);
    expect(fs.readdirSync(`${h.root}/dev/shm`)).toEqual(['vader_segment.n1.0.other.0']);
    expect(() => iso.wrap(0, ['x'])).toThrow(/already cleaned up/);
  });

  it('adds the cgroups of ranks spawned later (MPI_Comm_spawn), limits included, and removes them at cleanup', async () => {
    const h = host({ layout: 'hybrid', mountNsOk: false });
    const iso = await setupIsolation(req({ limits: { memPerRankBytes: 64 << 20, pidsPerRank: 12 } }), h.deps);
    const job = (k: string): string => `${h.own(k)}/tsmpiexec-j7-n1`;
    expect(() => iso.wrap(7, ['x'])).toThrow(/rank 7 is not placed/);
    iso.addRanks([7, 8]);
    expect(read(`${job('memory')}/rank-8/memory.limit_in_bytes`)).toBe(String(64 << 20));
    expect(read(`${job('pids')}/rank-7/pids.max`)).toBe('12');
    const argv = iso.wrap(7, ['child']);
    expect(argv[2]).toContain(`${job('v2')}/rank-7/cgroup.procs`);
    expect(argv[2]).toContain(`${job('memory')}/rank-7/cgroup.procs`);
    expect(iso.env(8).TSMPIEXEC_RANK).toBe('8');
    h.set(`${job('memory')}/rank-8/memory.max_usage_in_bytes`, '1048576\n');
    expect(iso.usage(8).memPeakBytes).toBe(1048576);
    iso.addRanks([7]); // again: nothing new, no error
    expect(() => iso.addRanks([-1])).toThrow(/non-negative/);
    const { leftovers } = await iso.cleanup();
    expect(leftovers).toEqual([]);
    expect(findJobDirs(h.root)).toEqual([]);
    expect(() => iso.addRanks([9])).toThrow(/already cleaned up/);
  });

  it('on pure v2, a spawned rank gets memory.max and memory.oom.group like the first ranks', async () => {
    const h = host({ layout: 'v2', v2Controllers: ['memory', 'pids'] });
    const own = h.own('v2');
    const iso = await setupIsolation(req({ limits: { memPerRankBytes: 1 << 25 } }), h.deps);
    iso.addRanks([2]);
    expect(read(`${own}/tsmpiexec-j7-n1/rank-2/memory.max`)).toBe(String(1 << 25));
    expect(read(`${own}/tsmpiexec-j7-n1/rank-2/memory.oom.group`)).toBe('1');
    expect(iso.wrap(2, ['c'])[2]).toContain(`${own}/tsmpiexec-j7-n1/rank-2/cgroup.procs`);
    expect((await iso.cleanup()).leftovers).toEqual([]);
  });

  it('reads usage from the v2 cpu.stat and the v1 memory, pids and blkio counters', async () => {
    const h = host({ layout: 'hybrid' });
    const iso = await setupIsolation(req({ ranks: [4] }), h.deps);
    const d = (k: string): string => `${h.own(k)}/tsmpiexec-j7-n1/rank-4`;
    h.set(`${d('v2')}/cpu.stat`, 'usage_usec 1300000\nuser_usec 1000000\nsystem_usec 300000\n');
    h.set(`${d('memory')}/memory.max_usage_in_bytes`, '67108864\n');
    h.set(`${d('memory')}/memory.oom_control`, 'oom_kill_disable 0\nunder_oom 0\noom_kill 1\n');
    h.set(`${d('pids')}/pids.peak`, '17\n');
    h.set(`${d('blkio')}/blkio.throttle.io_service_bytes_recursive`, '254:0 Read 4096\n254:0 Write 8192\n254:0 Total 12288\nTotal 12288\n');
    expect(iso.usage(4)).toEqual({ cpuUserSec: 1, cpuSysSec: 0.3, memPeakBytes: 67108864, ioReadBytes: 4096, ioWriteBytes: 8192, pidsPeak: 17, oomKilled: true });
    await iso.cleanup();
  });

  it('reports block I/O as unavailable (null, not 0) when the no-op rule cannot be installed', async () => {
    const h = host({ layout: 'hybrid', failWrites: { 'blkio.throttle.read_bps_device': 'ENODEV' } });
    const iso = await setupIsolation(req({ ranks: [0] }), h.deps);
    expect(iso.notice).toMatch(/no-op blkio rule \(ENODEV\) not set; block I\/O not measured/);
    const u = iso.usage(0);
    expect(u.ioReadBytes).toBeNull();
    expect(u.ioWriteBytes).toBeNull();
    expect(u.memPeakBytes).toBe(0);
    await iso.cleanup();
  });

  it('killAll writes cgroup.kill once on the job cgroup, which takes the v1 memberships along', async () => {
    const h = host({ layout: 'hybrid' });
    const iso = await setupIsolation(req(), h.deps);
    const v2 = `${h.own('v2')}/tsmpiexec-j7-n1`;
    h.addProcs(`${v2}/rank-0`, [101, 102]);
    h.addProcs(`${h.own('memory')}/tsmpiexec-j7-n1/rank-0`, [101, 102]);
    await iso.killAll();
    expect(h.writes.filter(([p]) => p.endsWith('cgroup.kill'))).toEqual([[h.rel(`${v2}/cgroup.kill`), '1']]);
    expect(read(`${h.own('memory')}/tsmpiexec-j7-n1/rank-0/cgroup.procs`).trim()).toBe('');
    expect((await iso.cleanup()).leftovers).toEqual([]);
  });
});

describe('v1 apply', () => {
  it('kills by freeze → SIGKILL each pid → thaw', async () => {
    const h = host({ layout: 'v1-split' });
    const iso = await setupIsolation(req(), h.deps);
    const fz = `${h.own('freezer')}/tsmpiexec-j7-n1`;
    h.addProcs(`${fz}/rank-0`, [201]);
    h.addProcs(`${fz}/rank-1`, [202, 203]);
    await iso.killAll();
    expect(h.killed.sort()).toEqual([201, 202, 203]);
    const states = h.writes.filter(([p]) => p.endsWith('freezer.state')).map(([, v]) => v);
    expect(states).toEqual(['FROZEN', 'THAWED']);
    expect((await iso.cleanup()).leftovers).toEqual([]);
  });

  it('reports cgroups it could not remove instead of leaking them silently', async () => {
    const h = host({ layout: 'v1-split' });
    const deps = { ...h.deps, kill: () => undefined }; // a process that never dies (D state)
    const iso = await setupIsolation(req({ ranks: [0] }), deps);
    const fz = `${h.own('freezer')}/tsmpiexec-j7-n1`;
    h.addProcs(`${fz}/rank-0`, [301]);
    const { leftovers } = await iso.cleanup();
    expect(leftovers).toContain(`${fz}/rank-0`);
    expect(leftovers).toContain(fz);
    expect(leftovers.some((l) => l.includes('/memory/'))).toBe(false);
  });

  it('refuses to reuse an existing job cgroup and leaves it alone', async () => {
    const h = host({ layout: 'v1-split' });
    const stale = `${h.own('pids')}/tsmpiexec-j7-n1`;
    h.deps.fs.mkdir(stale);
    await expect(setupIsolation(req(), h.deps)).rejects.toThrow(/cannot create cgroup .*pids\/tsmpiexec-j7-n1: EEXIST/);
    expect(fs.existsSync(stale)).toBe(true);
    expect(findJobDirs(h.root)).toEqual([stale]);
  });
});

describe('pure v2 apply', () => {
  it('moves itself to a leaf, enables controllers, and undoes both at cleanup', async () => {
    const h = host({ layout: 'v2', v2Controllers: ['memory', 'pids'] });
    const own = h.own('v2');
    const iso = await setupIsolation(req({ limits: { memPerRankBytes: 1 << 25 } }), h.deps);
    expect(iso.cgroup).toBe('v2');
    expect(read(`${own}/tsmpiexec-proxy-4242/cgroup.procs`).trim()).toBe('4242');
    expect(read(`${own}/cgroup.subtree_control`).trim()).toBe('memory pids');
    expect(read(`${own}/tsmpiexec-j7-n1/rank-1/memory.max`)).toBe(String(1 << 25));
    expect(read(`${own}/tsmpiexec-j7-n1/rank-1/memory.oom.group`)).toBe('1');
    h.set(`${own}/tsmpiexec-j7-n1/rank-1/memory.events`, 'oom 1\noom_kill 0\noom_group_kill 1\n');
    h.set(`${own}/tsmpiexec-j7-n1/rank-1/memory.peak`, '33554432\n');
    expect(iso.usage(1)).toMatchObject({ memPeakBytes: 33554432, oomKilled: true, ioReadBytes: null });
    const { leftovers } = await iso.cleanup();
    expect(leftovers).toEqual([]);
    expect(read(`${own}/cgroup.subtree_control`).trim()).toBe('');
    expect(findJobDirs(h.root)).toEqual([]);
  });
});

describe('strict, off and podCommand', () => {
  const denied = ['v2', 'cpu', 'cpuacct', 'memory', 'pids', 'freezer', 'blkio', 'devices'];

  it('strict fails before creating anything', async () => {
    const h = host({ layout: 'hybrid', uid: 1000, denied });
    await expect(setupIsolation(req({ mode: 'strict' }), h.deps)).rejects.toBeInstanceOf(TsmpiError);
    expect(fs.readdirSync(`${h.root}/tmp`)).toEqual([]);
  });

  it('off wraps nothing and adds no environment', async () => {
    const iso = await setupIsolation(req({ mode: 'off' }), { uid: 1 }); // never probes: no fake needed
    expect(iso.wrap(0, ['a', 'b'])).toEqual(['a', 'b']);
    expect(iso.env(0)).toEqual({});
    expect(iso.cgroup).toBe('none');
    expect((await iso.cleanup()).leftovers).toEqual([]);
  });

  it('gives an unprivileged user a bwrap pod that keeps fds, dies with its parent and has private /tmp and /dev/shm', () => {
    const h = host({ layout: 'hybrid', uid: 1000, denied, podOk: true });
    const argv = podCommand(req({ limits: { memPerRankBytes: 1 << 20 } }), h.deps)!;
    expect(argv[0]).toBe('/usr/bin/bwrap');
    expect(argv).toEqual(expect.arrayContaining(['--unshare-user', '--unshare-pid', '--die-with-parent']));
    expect(argv.join(' ')).toContain('--size 2097152 --perms 0700 --tmpfs /tmp --size 2097152 --perms 0700 --tmpfs /dev/shm');
    expect(argv.join(' ')).toContain('--setenv TSMPIEXEC_POD j7');
    expect(argv.at(-1)).toBe('--');
  });

  it('uses nested unshare with a pdeathsig chain when bwrap is missing', () => {
    const h = host({ layout: 'hybrid', uid: 1000, denied, podOk: true });
    const argv = podCommand(req(), { ...h.deps, which: (n) => (n === 'bwrap' ? undefined : `/usr/bin/${n}`) })!;
    expect(argv.slice(0, 4)).toEqual(['/usr/bin/setpriv', '--pdeathsig', 'KILL', '/usr/bin/unshare']);
    expect(argv).toEqual(expect.arrayContaining(['--map-root-user', '--pid', '--fork', '--kill-child']));
    expect(argv.find((a) => a.includes('--map-user=1000 --map-group=1000'))).toBeDefined();
  });

  it('needs no pod as root with a mount namespace, or inside a pod; strict refuses when none is possible', () => {
    expect(podCommand(req(), host({ layout: 'hybrid', mountNsOk: true }).deps)).toBeUndefined();
    expect(podCommand(req(), host({ layout: 'hybrid', uid: 1000, denied, podOk: true, inPod: 'j7' }).deps)).toBeUndefined();
    const none = host({ layout: 'hybrid', uid: 1000, denied, podOk: false });
    expect(podCommand(req(), none.deps)).toBeUndefined();
    expect(() => podCommand(req({ mode: 'strict' }), none.deps)).toThrow(/no pod \(bwrap: bwrap: No permissions to create new namespace; unshare: unshare: unshare failed: Operation not permitted\)/);
  });
});
