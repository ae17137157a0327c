// Hierarchy discovery from mountinfo + /proc/self/cgroup, and the counter-file parsers.
import { describe, expect, it } from 'vitest';
import { findHierarchies, parseSelfCgroup } from '../../src/isolate/cgroup-paths.js';
import { cpuFromV1, cpuFromV2, ioFromV1, ioFromV2, isPopulated, oomKills, parseProcStat, parseSingle } from '../../src/isolate/counters.js';

// Captured from the project machine (hybrid: v1 controllers split, controller-less cgroup2 at unified).
const HYBRID_MOUNTINFO = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw`;
const HYBRID_SELF = `9:name=systemd:/
8:pids:/
6:freezer:/
4:memory:/process_api/185d3d2f35a2a86cef3404dd264eb7ca
2:cpuacct:/
1:cpu:/
0::/`;

describe('findHierarchies', () => {
  it('finds every v1 controller mount and the v2 mount, with our own cgroup in each', () => {
    const hs = findHierarchies(HYBRID_MOUNTINFO, HYBRID_SELF);
    const byKey = Object.fromEntries(hs.map((h) => [h.version === 2 ? 'v2' : h.controllers.join(','), h.ownDir]));
    expect(byKey).toEqual({
      cpu: '/sys/fs/cgroup/cpu',
      cpuacct: '/sys/fs/cgroup/cpuacct',
      memory: '/sys/fs/cgroup/memory/process_api/185d3d2f35a2a86cef3404dd264eb7ca',
      freezer: '/sys/fs/cgroup/freezer',
      pids: '/sys/fs/cgroup/pids',
      v2: '/sys/fs/cgroup/unified',
    });
  });

  it('treats a joined cpu,cpuacct mount as one hierarchy, whatever order the kernel prints', () => {
    const mi = '32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpuacct,cpu';
    const hs = findHierarchies(mi, '3:cpu,cpuacct:/user/job');
    expect(hs).toHaveLength(1);
    expect(hs[0]?.controllers).toEqual(['cpu', 'cpuacct']);
    expect(hs[0]?.ownDir).toBe('/sys/fs/cgroup/cpu,cpuacct/user/job');
  });

  it('strips the mount root of a container-style mount and skips cgroups that are not visible', () => {
    const mi = [
      '50 40 0:30 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate',
      '51 40 0:31 /other /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory',
    ].join('\n');
    const hs = findHierarchies(mi, '0::/docker/abc/init\n4:memory:/docker/abc');
    expect(hs.map((h) => h.ownDir)).toEqual(['/sys/fs/cgroup/init']);
  });

  it('unescapes octal escapes in mount points', () => {
    const hs = findHierarchies('41 31 0:38 / /mnt/cg\\040two rw - cgroup2 cgroup2 rw', '0::/a');
    expect(hs[0]?.ownDir).toBe('/mnt/cg two/a');
  });

  it('ignores named hierarchies', () => {
    expect([...parseSelfCgroup('12:name=systemd:/x\n0::/y').keys()]).toEqual(['v2']);
  });
});

describe('counter parsers', () => {
  it('reads v2 cpu.stat in seconds', () => {
    expect(cpuFromV2('usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\n')).toEqual({ user: 1, sys: 0.5 });
    expect(cpuFromV2('usage_usec 5\n')).toBeUndefined();
  });

  it('prefers v1 cpuacct.usage_user/_sys (ns) and falls back to cpuacct.stat ticks', () => {
    expect(cpuFromV1({ usageUser: '2000000000\n', usageSys: '250000000\n' })).toEqual({ user: 2, sys: 0.25 });
    expect(cpuFromV1({ stat: 'user 150\nsystem 20\n' })).toEqual({ user: 1.5, sys: 0.2 });
    expect(cpuFromV1({})).toBeUndefined();
  });

  it('sums io.stat and blkio per device, ignoring the Total line', () => {
    expect(ioFromV2('254:0 rbytes=100 wbytes=20 rios=1 wios=1 dbytes=0 dios=0\n8:0 rbytes=1 wbytes=2\n')).toEqual({ read: 101, write: 22 });
    const blk = '254:0 Read 9883648\n254:0 Write 8388608\n254:0 Sync 18272256\n254:0 Total 18272256\nTotal 18272256\n';
    expect(ioFromV1(blk)).toEqual({ read: 9883648, write: 8388608 });
  });

  it('counts OOM kills from memory.events and memory.oom_control', () => {
    expect(oomKills('low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 2\n')).toBe(3);
    expect(oomKills('oom_kill_disable 0\nunder_oom 0\noom_kill 0\n')).toBe(0);
  });

  it('reads single values, treating "max" as unknown', () => {
    expect(parseSingle('64024576\n')).toBe(64024576);
    expect(parseSingle('max\n')).toBeUndefined();
  });

  it('reads populated from cgroup.events', () => {
    expect(isPopulated('populated 1\nfrozen 0\n')).toBe(true);
    expect(isPopulated('populated 0\nfrozen 0\n')).toBe(false);
  });

  it('parses /proc/PID/stat even when comm holds spaces and parentheses', () => {
    const st = '123 (a b) c)) S 45 123 123 0 -1 4194560 100 0 0 0 250 30 7 9 20 0 1 0 555 1000 10';
    expect(parseProcStat(st)).toEqual({ state: 'S', ppid: 45, utime: 250, stime: 30, cutime: 7, cstime: 9 });
  });
});
