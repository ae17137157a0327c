// Reads one rank's (or the whole host's) accounting from its cgroup counters, per the plan's sources.
// Anything the host cannot measure is null, never 0 (v1 blkio without a rule reads 0: isolation.md finding 3).
import { cpuFromV1, cpuFromV2, ioFromV1, ioFromV2, oomKills, parseSingle } from './counters.js';
import type { AccountingPlan, IsolationDeps, RankUsage } from './types.js';

function read(deps: IsolationDeps, p: string): string | undefined {
  try {
    return deps.fs.readFile(p);
  } catch {
    return undefined;
  }
}

export interface UsageContext {
  deps: IsolationDeps;
  accounting: AccountingPlan;
  /** false when the no-op blkio rules could not be installed: v1 counters would read a false 0. */
  ioTrusted: boolean;
  /** CPU seconds for the 'sampled' source (no cgroup CPU counter). */
  sampledCpu: () => { user: number; sys: number };
}

/** `dirs` maps hierarchy key → this rank's (or the job's) cgroup directory. */
export function readUsage(ctx: UsageContext, dirs: Record<string, string>): RankUsage {
  const { deps, accounting: a } = ctx;
  const u: RankUsage = { cpuUserSec: 0, cpuSysSec: 0, memPeakBytes: null, ioReadBytes: null, ioWriteBytes: null, pidsPeak: null, oomKilled: false };
  const at = (hier: string, file: string): string | undefined => {
    const d = dirs[hier];
    return d === undefined ? undefined : read(deps, `${d}/${file}`);
  };
  if (a.cpu.kind === 'v2' || a.cpu.kind === 'v1-cpuacct') {
    const hier = a.cpu.hier;
    const cpu =
      a.cpu.kind === 'v2'
        ? cpuFromV2(at(hier, 'cpu.stat') ?? '')
        : cpuFromV1({ usageUser: at(hier, 'cpuacct.usage_user'), usageSys: at(hier, 'cpuacct.usage_sys'), stat: at(hier, 'cpuacct.stat') });
    if (cpu !== undefined) {
      u.cpuUserSec = cpu.user;
      u.cpuSysSec = cpu.sys;
    }
  } else if (a.cpu.kind === 'sampled') {
    const cpu = ctx.sampledCpu();
    u.cpuUserSec = cpu.user;
    u.cpuSysSec = cpu.sys;
  }
  if (a.memory !== null) {
    const peak = at(a.memory.hier, a.memory.kind === 'v2' ? 'memory.peak' : 'memory.max_usage_in_bytes');
    u.memPeakBytes = peak !== undefined ? (parseSingle(peak) ?? null) : null;
    const events = at(a.memory.hier, a.memory.kind === 'v2' ? 'memory.events' : 'memory.oom_control');
    u.oomKilled = events !== undefined && oomKills(events) > 0;
  }
  if (a.pids !== null) {
    const peak = at(a.pids.hier, 'pids.peak');
    u.pidsPeak = peak !== undefined ? (parseSingle(peak) ?? null) : null;
  }
  if (a.io !== null && (a.io.kind === 'v2' || ctx.ioTrusted)) {
    const text = at(a.io.hier, a.io.kind === 'v2' ? 'io.stat' : 'blkio.throttle.io_service_bytes_recursive');
    if (text !== undefined) {
      const io = a.io.kind === 'v2' ? ioFromV2(text) : ioFromV1(text);
      u.ioReadBytes = io.read;
      u.ioWriteBytes = io.write;
    }
  }
  return u;
}
