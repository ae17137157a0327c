// Walks /proc for the cgroup-less fallbacks: find a job's processes by its environment marker or by pod
// membership, and sample their CPU time. Best effort by nature: `env -i` defeats the marker (isolation.md §5.1).
import { parseProcStat } from './counters.js';
import type { IsolationDeps } from './types.js';

export const JOB_ENV = 'TSMPIEXEC_JOB';
export const RANK_ENV = 'TSMPIEXEC_RANK';

export interface ProcInfo {
  pid: number;
  ppid: number;
  state: string;
  /** utime + stime in clock ticks (own time, children not included). */
  userTicks: number;
  sysTicks: number;
}

export function readProc(deps: IsolationDeps, pid: number): ProcInfo | undefined {
  try {
    const st = parseProcStat(deps.fs.readFile(`${deps.procRoot}/${pid}/stat`));
    if (st === undefined) return undefined;
    return { pid, ppid: st.ppid, state: st.state, userTicks: st.utime, sysTicks: st.stime };
  } catch {
    return undefined; // gone, or not ours to read
  }
}

export function listPids(deps: IsolationDeps): number[] {
  try {
    return deps.fs.readdir(deps.procRoot).filter((n) => /^\d+$/.test(n)).map(Number);
  } catch {
    return [];
  }
}

/** The marker values (job id, rank) in /proc/PID/environ, if readable. */
export function readMarker(deps: IsolationDeps, pid: number): { job?: string; rank?: number } {
  let env: string;
  try {
    env = deps.fs.readFile(`${deps.procRoot}/${pid}/environ`);
  } catch {
    return {};
  }
  const out: { job?: string; rank?: number } = {};
  for (const kv of env.split('\0')) {
    if (kv.startsWith(`${JOB_ENV}=`)) out.job = kv.slice(JOB_ENV.length + 1);
    else if (kv.startsWith(`${RANK_ENV}=`)) {
      const r = Number(kv.slice(RANK_ENV.length + 1));
      if (Number.isInteger(r)) out.rank = r;
    }
  }
  return out;
}

/** Our own pid and all its ancestors: never targets of a sweep. */
export function selfAndAncestors(deps: IsolationDeps): Set<number> {
  const keep = new Set<number>([1]);
  let pid = deps.pid;
  for (let i = 0; i < 64 && pid > 1 && !keep.has(pid); i++) {
    keep.add(pid);
    pid = readProc(deps, pid)?.ppid ?? 0;
  }
  return keep;
}
