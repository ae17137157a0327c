// Sweeps what a proxy that died abruptly (SIGKILL, OOM, a vanished host) left behind: job cgroups whose
// owning proxy no longer exists. Job cgroups are named `tsmpiexec-p<pid>_<pid namespace>_<start time>-...`
// (ownerTag), so a stale one is an owner in OUR pid namespace whose pid is gone or now belongs to a process
// started at another time. Owners in other pid namespaces (pods, containers, a test cluster) are never
// touched: their pids mean nothing here. Whatever still runs inside a stale one is killed, then the tree is
// removed bottom-up. Runs before each new job sets up its own cgroups, only in our own subtree.
import fs from 'node:fs';
import { cgroupTreePids } from './kill.js';
import type { IsolationDeps } from './types.js';

const OWNER = /^tsmpiexec-p(\d+)_(\d+)_(\d+)-/;

/** Our pid namespace id and a process's start time (clock ticks since boot), from /proc. */
function pidNamespace(procRoot: string, pid: number | 'self'): string | undefined {
  try {
    return /\[(\d+)\]/.exec(fs.readlinkSync(`${procRoot}/${pid}/ns/pid`))?.[1];
  } catch {
    return undefined;
  }
}

function startTime(procRoot: string, pid: number | 'self'): string | undefined {
  try {
    const stat = fs.readFileSync(`${procRoot}/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** `p<pid>_<pid namespace>_<start time>`: what names a job cgroup's owner beyond doubt. */
export function ownerTag(procRoot = '/proc'): string {
  return `p${process.pid}_${pidNamespace(procRoot, 'self') ?? 0}_${startTime(procRoot, 'self') ?? 0}`;
}

function stale(deps: IsolationDeps, pid: number, ns: string, start: string): boolean {
  if (ns !== (pidNamespace(deps.procRoot, 'self') ?? '0')) return false;
  if (!deps.fs.exists(`${deps.procRoot}/${pid}`)) return true;
  return startTime(deps.procRoot, pid) !== start;
}

function removeTree(deps: IsolationDeps, dir: string): boolean {
  try {
    deps.fs.rmdir(dir); // a cgroup without children goes at once
    return true;
  } catch {
    /* has child cgroups: remove them first */
  }
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
      if (!m || !stale(deps, Number(m[1]), m[2] ?? '', m[3] ?? '')) continue;
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
