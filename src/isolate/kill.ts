// Kills everything left of a job: one write to cgroup.kill on v2; freeze → SIGKILL each pid → thaw on v1
// (a frozen cgroup cannot fork, so the pid list cannot grow under us); pid-list or /proc sweeps otherwise.
import { isPopulated } from './counters.js';
import { listPids, readMarker, readProc, selfAndAncestors } from './proc-scan.js';
import type { IsolationDeps, IsolationPlan } from './types.js';

const KILL_DEADLINE_MS = 5000;
const POLL_MS = 20;

/** Every pid in `dir` and its descendant cgroups (jobs may create nested sub-cgroups). */
export function cgroupTreePids(deps: IsolationDeps, dir: string): number[] {
  const out: number[] = [];
  const walk = (d: string): void => {
    try {
      for (const p of deps.fs.readFile(`${d}/cgroup.procs`).split(/\s+/)) if (/^\d+$/.test(p)) out.push(Number(p));
    } catch {
      return;
    }
    let entries: string[] = [];
    try {
      entries = deps.fs.readdir(d);
    } catch {
      return;
    }
    for (const e of entries) if (deps.fs.isDir(`${d}/${e}`)) walk(`${d}/${e}`);
  };
  walk(dir);
  return out;
}

function killEach(deps: IsolationDeps, pids: Iterable<number>): void {
  for (const pid of pids) {
    try {
      deps.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Poll `done` with a short first wait that grows to POLL_MS: a kill usually completes within a millisecond
 *  or two, and every job end waits on this (start-up-to-exit time is a measured target). */
async function until(deps: IsolationDeps, done: () => boolean, deadline: number): Promise<boolean> {
  let wait = 1;
  for (;;) {
    if (done()) return true;
    if (deps.now() >= deadline) return false;
    await deps.sleep(wait);
    wait = Math.min(POLL_MS, wait * 2);
  }
}

function readOr(deps: IsolationDeps, p: string): string {
  try {
    return deps.fs.readFile(p);
  } catch {
    return '';
  }
}

async function killV2(deps: IsolationDeps, dir: string, deadline: number): Promise<boolean> {
  const populated = (): boolean => isPopulated(readOr(deps, `${dir}/cgroup.events`));
  // cgroup.kill is safe against fork races; repeat only if something was still starting up as we wrote.
  while (populated()) {
    deps.fs.writeFile(`${dir}/cgroup.kill`, '1');
    if (await until(deps, () => !populated(), Math.min(deadline, deps.now() + 1000))) return true;
    if (deps.now() >= deadline) return false;
  }
  return true;
}

async function killFreezer(deps: IsolationDeps, dir: string, deadline: number): Promise<boolean> {
  const empty = (): boolean => cgroupTreePids(deps, dir).length === 0;
  while (!empty()) {
    deps.fs.writeFile(`${dir}/freezer.state`, 'FROZEN');
    await until(deps, () => readOr(deps, `${dir}/freezer.state`).trim() === 'FROZEN', Math.min(deadline, deps.now() + 1000));
    killEach(deps, cgroupTreePids(deps, dir));
    // SIGKILL is delivered once the tasks thaw.
    deps.fs.writeFile(`${dir}/freezer.state`, 'THAWED');
    if (await until(deps, empty, Math.min(deadline, deps.now() + 1000))) return true;
    if (deps.now() >= deadline) return false;
  }
  return true;
}

/** Not atomic: a process may fork between our read and our kill, so loop until the list stays empty. */
async function killPidList(deps: IsolationDeps, list: () => number[], deadline: number): Promise<boolean> {
  for (;;) {
    const pids = list();
    if (pids.length === 0) return true;
    for (const pid of pids) {
      try {
        deps.kill(pid, 'SIGSTOP'); // stop first so children cannot keep forking while we work through the list
      } catch {
        // gone
      }
    }
    killEach(deps, pids);
    if (deps.now() >= deadline) return false;
    await deps.sleep(POLL_MS);
  }
}

function livePids(deps: IsolationDeps, pids: number[]): number[] {
  return pids.filter((pid) => {
    const st = readProc(deps, pid)?.state;
    return st !== undefined && st !== 'Z' && st !== 'X';
  });
}

/** Pod: every process in our PID namespace except its init, ourselves and our ancestors. */
function podPids(deps: IsolationDeps): number[] {
  const keep = selfAndAncestors(deps);
  return livePids(deps, listPids(deps).filter((p) => !keep.has(p)));
}

function markerPids(deps: IsolationDeps, jobId: string): number[] {
  const keep = selfAndAncestors(deps);
  return livePids(deps, listPids(deps).filter((p) => !keep.has(p) && readMarker(deps, p).job === jobId));
}

/** Returns false when something survived the deadline (it is then reported as a leftover by cleanup). */
export async function killJob(deps: IsolationDeps, plan: IsolationPlan, jobId: string): Promise<boolean> {
  const deadline = deps.now() + KILL_DEADLINE_MS;
  const k = plan.kill;
  switch (k.kind) {
    case 'none':
      return true;
    case 'cgroup.kill':
      return killV2(deps, plan.jobDirs[k.hier]!, deadline);
    case 'freezer':
      return killFreezer(deps, plan.jobDirs[k.hier]!, deadline);
    case 'signal-cgroup': {
      const dir = plan.jobDirs[k.hier]!;
      return killPidList(deps, () => livePids(deps, cgroupTreePids(deps, dir)), deadline);
    }
    case 'pod-sweep':
      return killPidList(deps, () => podPids(deps), deadline);
    case 'marker-sweep':
      return killPidList(deps, () => markerPids(deps, jobId), deadline);
  }
}

