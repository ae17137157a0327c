// Isolation on the real kernel as root: containment of daemons, limits, OOM, accounting accuracy, private
// /tmp per job, fd passing through the wrapper, and that cleanup leaves no cgroup, mount, process or dir.
import * as fs from 'node:fs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { defaultDeps } from '../../src/isolate/deps.js';
import { setupIsolation } from '../../src/isolate/setup.js';
import type { Isolation, IsolationDeps, IsolationRequest } from '../../src/isolate/types.js';
import {
  findCgroups,
  findMounts,
  isAlive,
  isRoot,
  JOB_PREFIX,
  newJobId,
  runRank,
  startRank,
  teardown,
  track,
  waitGone,
} from '../fixtures/isolate/harness.js';

const MiB = 1 << 20;

function req(over: Partial<IsolationRequest> = {}): IsolationRequest {
  return { jobId: newJobId(), host: 'localhost', mode: 'auto', limits: {}, ranks: [0], inBatch: false, ...over };
}
async function setup(r: IsolationRequest, deps?: Partial<IsolationDeps>): Promise<Isolation> {
  return track(await setupIsolation(r, deps));
}

// A rank that daemonizes twice (setsid, background sleepers), reports the pids, and exits after 0.2 s.
const DAEMON = [
  'sh',
  '-c',
  'setsid sh -c \'sleep 300 >/dev/null 2>&1 & echo $!; sleep 300 >/dev/null 2>&1 & echo $!; echo $$; exec >/dev/null 2>&1; wait\' & sleep 0.2',
];

async function daemonIsKilled(iso: Isolation, jobId: string): Promise<void> {
  const r = await runRank(iso, 0, DAEMON);
  expect(r.code).toBe(0);
  const pids = r.stdout.trim().split(/\s+/).map(Number);
  expect(pids).toHaveLength(3);
  for (const pid of pids) {
    expect(isAlive(pid)).toBe(true);
    expect(fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8')).toContain(`tsmpiexec-${jobId}-`);
  }
  await iso.killAll();
  expect(await waitGone(pids, 1000)).toEqual([]);
}

describe.skipIf(!isRoot)('as root (this block needs root: real cgroups and mount namespaces)', () => {
  afterEach(async () => {
    expect(await teardown()).toEqual([]);
  });
  afterAll(() => {
    expect(findCgroups(JOB_PREFIX)).toEqual([]);
  });

  it('contains a setsid daemon: killAll leaves nothing, cleanup leaves no cgroup, mount, holder or dir', async () => {
    const r = req();
    const iso = await setup(r);
    expect(iso.cgroup).toBe('hybrid');
    expect(iso.tmp).toBe('private');
    expect(iso.notice).toBeUndefined();
    const dirs = findCgroups(r.jobId);
    expect(dirs.length).toBeGreaterThanOrEqual(4); // v2 + memory + pids + blkio
    for (const d of dirs) expect(fs.statSync(d).mode & 0o777).toBe(0o700);
    expect(findMounts(r.jobId).length).toBeGreaterThan(0);
    // the holder of the private /tmp namespace is contained like a rank: in the job's cgroup
    const holders = fs.readdirSync('/proc').filter((p) => {
      try {
        return /^\d+$/.test(p) && fs.readFileSync(`/proc/${p}/cgroup`, 'utf8').includes(`tsmpiexec-${r.jobId}-localhost/holder`);
      } catch {
        return false;
      }
    });
    expect(holders).toHaveLength(1);
    await daemonIsKilled(iso, r.jobId);
    expect(await waitGone(holders.map(Number), 1000)).toEqual([]); // killAll takes the holder too
    expect((await iso.cleanup()).leftovers).toEqual([]);
    expect(findCgroups(r.jobId)).toEqual([]);
    expect(await waitGone(findMounts(r.jobId), 2000)).toEqual([]);
    expect(findMounts(r.jobId)).toEqual([]);
  });

  it('caps a fork storm at pidsPerRank; the rank sees fork fail, the proxy is unharmed', async () => {
    const r = req({ limits: { pidsPerRank: 20 } });
    const iso = await setup(r);
    const storm = 'i=0; while [ $i -lt 100 ]; do sleep 30 & i=$((i+1)); done; echo forked-all';
    const run = await runRank(iso, 0, ['sh', '-c', storm]);
    expect(run.stdout).not.toContain('forked-all'); // dash gives up at the first failed fork
    expect(run.stderr).toMatch(/fork/i);
    const pidsDir = findCgroups(r.jobId).find((d) => d.startsWith('/sys/fs/cgroup/pids/'))!;
    expect(fs.readFileSync(`${pidsDir}/rank-0/pids.events`, 'utf8')).toMatch(/max [1-9]/);
    expect(iso.usage(0).pidsPeak).toBe(20);
    const sleepers = fs.readFileSync(`${pidsDir}/rank-0/cgroup.procs`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    expect(sleepers.length).toBeGreaterThanOrEqual(15);
    await iso.killAll();
    expect(await waitGone(sleepers, 1000)).toEqual([]);
    expect(fs.readFileSync(`${pidsDir}/rank-0/cgroup.procs`, 'utf8').trim()).toBe('');
  });

  it('OOM-kills a memory hog over memPerRankBytes and reports it from the cgroup counters', async () => {
    const iso = await setup(req({ ranks: [0, 1], limits: { memPerRankBytes: 48 * MiB } }));
    const hog = await runRank(iso, 1, ['sh', '-c', 'head -c 300M /dev/zero | tail > /dev/null']);
    expect(hog.code).toBe(137);
    const u = iso.usage(1);
    expect(u.oomKilled).toBe(true);
    expect(u.memPeakBytes).toBeGreaterThan(40 * MiB);
    expect(u.memPeakBytes).toBeLessThanOrEqual(48 * MiB);
    const ok = await runRank(iso, 0, ['true']);
    expect(ok.code).toBe(0);
    expect(iso.usage(0).oomKilled).toBe(false);
    expect(iso.hostUsage().oomKilled).toBe(true);
  });

  it('accounts ~1 s of CPU and 64 MiB within 10%, and block I/O as real numbers', async () => {
    const iso = await setup(req({ ranks: [0] }));
    const dir = fs.mkdtempSync('/var/tmp/tsmpiexec-itio-'); // a real disk (the rank's /tmp is a tmpfs)
    try {
      const script = [
        // a fixed amount of work (~1 s here), not a wall-clock deadline: other suites may load the machine
        'sh -c \'i=0; while [ $i -lt 900000 ]; do i=$((i+1)); done\'',
        'head -c 64M /dev/zero | tail > /dev/null',
        `dd if=/dev/zero of=${dir}/f bs=1M count=4 oflag=direct 2>/dev/null`,
        'times',
      ].join('; ');
      const r = await runRank(iso, 0, ['sh', '-c', script]);
      expect(r.code).toBe(0);
      // `times`, second line: user and system time of the shell's children (the whole workload).
      const [, kids] = r.stdout.trim().split('\n');
      const secs = [...(kids ?? '').matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
      const ref = secs.reduce((a, b) => a + b, 0);
      expect(ref).toBeGreaterThan(0.5);
      const u = iso.usage(0);
      expect(Math.abs(u.cpuUserSec + u.cpuSysSec - ref) / ref).toBeLessThan(0.1);
      expect(u.memPeakBytes).toBeGreaterThanOrEqual(64 * MiB);
      expect(u.memPeakBytes! / (64 * MiB)).toBeLessThan(1.1);
      expect(u.ioWriteBytes).toBeGreaterThanOrEqual(4 * MiB);
      // the job cgroup aggregates its ranks (v2 flushes per-cgroup stats lazily: allow 2%)
      expect(iso.hostUsage().cpuUserSec).toBeGreaterThanOrEqual(u.cpuUserSec * 0.98);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('gives each job its own /tmp and /dev/shm, shared by that job\'s ranks and invisible to the host', async () => {
    const a = await setup(req({ ranks: [0, 1] }));
    const b = await setup(req({ ranks: [0] }));
    const name = `tsmpiexec-it-${process.pid}-${Date.now()}`;
    const w = await runRank(a, 0, ['sh', '-c', `echo one > /tmp/${name} && echo two > /dev/shm/${name} && echo "$TMPDIR"`]);
    expect(w.stdout.trim()).toBe('/tmp');
    const sameJob = await runRank(a, 1, ['sh', '-c', `cat /tmp/${name} /dev/shm/${name}`]);
    expect(sameJob.stdout).toBe('one\ntwo\n');
    const otherJob = await runRank(b, 0, ['sh', '-c', `ls -A /tmp /dev/shm; test ! -e /tmp/${name} && test ! -e /dev/shm/${name}`]);
    expect(otherJob.code).toBe(0);
    expect(fs.existsSync(`/tmp/${name}`)).toBe(false);
    expect(fs.existsSync(`/dev/shm/${name}`)).toBe(false);
    const st = await runRank(b, 0, ['sh', '-c', 'stat -c "%a %u" /tmp /dev/shm']);
    expect(st.stdout).toBe('700 0\n700 0\n');
  });

  it('keeps the working directory, even one under the host /tmp', async () => {
    const iso = await setup(req());
    const cwd = fs.mkdtempSync('/tmp/tsmpiexec-itcwd-');
    try {
      fs.writeFileSync(`${cwd}/here`, 'x');
      const r = await runRank(iso, 0, ['sh', '-c', 'pwd; ls'], { cwd });
      expect(r.stdout).toBe(`${cwd}\nhere\n`);
    } finally {
      fs.rmSync(cwd, { recursive: true, force: true });
    }
  });

  it('passes an extra socketpair at fd 3 through the wrapper (PMI_FD)', async () => {
    const iso = await setup(req());
    const { child, done } = startRank(iso, 0, ['sh', '-c', 'readlink /proc/self/fd/3 >&2; echo hello-from-rank >&3'], {
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    });
    let got = '';
    (child.stdio[3] as NodeJS.ReadableStream).on('data', (b: Buffer) => (got += b.toString()));
    const r = await done;
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^socket:\[\d+\]/);
    expect(got).toBe('hello-from-rank\n');
  });

  // The holder starts before the job's cgroups are made (its exec overlaps theirs), so a failure there must stop it.
  it('a cgroup that cannot be made while the /tmp holder starts: that error, the holder stopped, nothing left', async () => {
    const real = defaultDeps();
    const r = req({ ranks: [0, 1] });
    const spawned: string[] = [];
    const deps: Partial<IsolationDeps> = {
      fs: {
        ...real.fs,
        mkdir: (p, mode) => {
          if (p.includes('/memory/') && p.endsWith('/rank-1')) throw Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
          real.fs.mkdir(p, mode);
        },
      },
      spawn: (cmd, args, opts) => {
        spawned.push([cmd, ...args].join(' '));
        return real.spawn(cmd, args, opts);
      },
    };
    await expect(setupIsolation(r, deps)).rejects.toThrow(/cannot create cgroup \S+\/memory\/\S+\/rank-1: EACCES/);
    expect(spawned.filter((c) => c.includes(`tsmpiexec-${r.jobId}-tmp`))).toHaveLength(1); // the holder did start
    expect(findMounts(r.jobId)).toEqual([]);
    expect(findCgroups(r.jobId)).toEqual([]);
  });

  it('v1 only (cgroup2 hidden from the probe): freezer kill contains the daemon', async () => {
    const real = defaultDeps();
    const mi = real.readMountinfo().split('\n').filter((l) => !l.includes(' - cgroup2 ')).join('\n');
    const r = req();
    const iso = await setup(r, { readMountinfo: () => mi });
    expect(iso.cgroup).toBe('v1');
    // CPU time comes from the separate cpuacct hierarchy (tick-sampled: give it real work)
    await runRank(iso, 0, ['sh', '-c', 'i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done']);
    const u = iso.usage(0);
    expect(u.cpuUserSec + u.cpuSysSec).toBeGreaterThan(0.1);
    await daemonIsKilled(iso, r.jobId);
    // killAll took the /tmp holder too: the job is over, nothing more may start in it
    expect(() => iso.wrap(0, ['true'])).toThrow(/private \/tmp namespace .* is gone/);
  });

  it('v2 core only (v1 hidden): cgroup.kill contains the daemon; memory and pids are reported as unmeasured', async () => {
    const real = defaultDeps();
    const mi = real.readMountinfo().split('\n').filter((l) => !l.includes(' - cgroup cgroup ')).join('\n');
    const r = req({ limits: { memPerRankBytes: 64 * MiB } });
    const iso = await setup(r, { readMountinfo: () => mi });
    expect(iso.cgroup).toBe('v2');
    expect(iso.notice).toMatch(/memory limit not enforced/);
    await daemonIsKilled(iso, r.jobId);
    const u = iso.usage(0);
    expect(u.memPeakBytes).toBeNull();
    expect(u.pidsPeak).toBeNull();
    expect(u.ioReadBytes).toBeNull();
  });

  it('pure v2 with controllers, if this kernel can give them (see the skip reason otherwise)', async (ctx) => {
    // A private cgroup2 mount in a private mount namespace shows the same single v2 hierarchy as
    // /sys/fs/cgroup/unified: controllers bound to v1 hierarchies cannot appear there.
    const { execFileSync } = await import('node:child_process');
    let controllers = '';
    try {
      controllers = execFileSync(
        'unshare',
        ['--mount', '--propagation', 'private', 'sh', '-c', 'd=$(mktemp -d) && mount -t cgroup2 none "$d" && cat "$d/cgroup.controllers"; umount "$d" 2>/dev/null; rmdir "$d"'],
        { encoding: 'utf8', timeout: 5000 },
      ).trim();
    } catch (e) {
      ctx.skip(`skipped because a private cgroup2 mount failed: ${String(e)}`);
    }
    const have = controllers.split(/\s+/);
    if (!have.includes('memory') || !have.includes('pids')) {
      ctx.skip(`skipped because a private cgroup2 mount offers only "${controllers}": memory/pids stay bound to cgroup v1 here`);
    }
    const real = defaultDeps();
    const mi = real.readMountinfo().split('\n').filter((l) => !l.includes(' - cgroup cgroup ')).join('\n');
    const r = req({ limits: { memPerRankBytes: 48 * MiB, pidsPerRank: 20 } });
    const iso = await setup(r, { readMountinfo: () => mi });
    expect(iso.cgroup).toBe('v2');
    const hog = await runRank(iso, 0, ['sh', '-c', 'head -c 300M /dev/zero | tail > /dev/null']);
    expect(hog.code).toBe(137);
    expect(iso.usage(0).oomKilled).toBe(true);
  });
});
