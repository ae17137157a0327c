// Sweeps what a proxy that died abruptly (SIGKILL, OOM, a vanished host) left behind: job cgroups whose
// owning proxy no longer exists. Job cgroups are named `tsmpiexec-p<proxy pid>-...` (see IsolatedProxy), so
// a stale one is recognised by its owner's pid being gone; whatever still runs inside is killed, then the
// tree is removed bottom-up. Runs before each new job sets up its own cgroups, only in our own subtree.
import { cgroupTreePids } from './kill.js';
import type { IsolationDeps } from './types.js';

const OWNER = /^tsmpiexec-p(\d+)-/;

function alive(deps: IsolationDeps, pid: number): boolean {
  return deps.fs.exists(`${deps.procRoot}/${pid}`);
}

function removeTree(deps: IsolationDeps, dir: string): boolean {
  let entries: string[] = [];
  try {
    entries = deps.fs.readdir(dir);
  } catch {
    return false;
  }
  for (const e of entries) if (deps.fs.isDir(`${dir}/${e}`)) removeTree(deps, `${dir}/${e}`);
  try {
    deps.fs.rmdir(dir);
    return true;
  } catch {
    return false;
  }
}

/** Returns the stale cgroups it removed. `parents` are the directories job cgroups are created in. */
export function sweepStaleJobs(deps: IsolationDeps, parents: readonly string[]): string[] {
  const removed: string[] = [];
  for (const parent of new Set(parents)) {
    let entries: string[] = [];
    try {
      entries = deps.fs.readdir(parent);
    } catch {
      continue;
    }
    for (const e of entries) {
      const m = OWNER.exec(e);
      if (!m || alive(deps, Number(m[1]))) continue;
      const dir = `${parent}/${e}`;
      if (deps.fs.exists(`${dir}/cgroup.kill`)) {
        try {
          deps.fs.writeFile(`${dir}/cgroup.kill`, '1');
        } catch {
          /* fall back to killing pid by pid */
        }
      }
      for (const pid of cgroupTreePids(deps, dir)) {
        try {
          deps.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      if (removeTree(deps, dir)) removed.push(dir);
    }
  }
  return removed;
}
