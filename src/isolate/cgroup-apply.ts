// Carries out the cgroup part of a plan (mkdir, limits, no-op blkio rules, v2 controller enabling) and
// takes it down again bottom-up, retrying while the kernel still reports the cgroup busy.
import { ERROR_CODES, TsmpiError } from '../util/errors.js';
import type { IsolationDeps, IsolationPlan } from './types.js';

const RMDIR_DEADLINE_MS = 3000;

function errText(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  return err.code ?? (err instanceof Error ? err.message : String(e));
}

export interface AppliedCgroups {
  /** Notes for the one-line notice (optional features that failed). */
  notes: string[];
  /** v1 blkio counters are only meaningful when every no-op rule went in. */
  ioTrusted: boolean;
  /** What we changed outside the job dirs, to undo at cleanup. */
  enabled?: { ownDir: string; controllers: string[]; leaf?: string };
}

// v2 controller enabling is process-wide (ownDir, our own leaf): count the jobs using it so the last undoes it.
const enableUsers = new Map<string, number>();

function applyEnable(deps: IsolationDeps, plan: IsolationPlan): AppliedCgroups['enabled'] {
  const e = plan.enable;
  if (e === undefined) return undefined;
  const ownDir = plan.ownDirs[e.hier]!;
  const current = deps.fs.readFile(`${ownDir}/cgroup.subtree_control`).split(/\s+/).filter(Boolean);
  const missing = e.controllers.filter((c) => !current.includes(c));
  if (missing.length > 0) {
    if (e.moveSelfTo !== undefined) {
      // No-internal-process rule: we must leave ownDir before its children may get controllers.
      if (!deps.fs.isDir(e.moveSelfTo)) deps.fs.mkdir(e.moveSelfTo);
      deps.fs.writeFile(`${e.moveSelfTo}/cgroup.procs`, String(deps.pid));
    }
    deps.fs.writeFile(`${ownDir}/cgroup.subtree_control`, missing.map((c) => `+${c}`).join(' '));
  }
  enableUsers.set(ownDir, (enableUsers.get(ownDir) ?? 0) + 1);
  return { ownDir, controllers: missing, ...(e.moveSelfTo !== undefined ? { leaf: e.moveSelfTo } : {}) };
}

/** cgroups created between two calls of applyCgroups' keepWarm (a few milliseconds' worth). */
const KEEP_WARM_EVERY = 64;

/**
 * Create the job's cgroups. Throws TsmpiError when a required step fails (after undoing what it made).
 * `keepWarm`, if given, is called every KEEP_WARM_EVERY cgroups (setup.ts: the kernel's migration fast mode).
 */
export function applyCgroups(deps: IsolationDeps, plan: IsolationPlan, mode: 'auto' | 'strict', keepWarm?: () => void): AppliedCgroups {
  const out: AppliedCgroups = { notes: [], ioTrusted: plan.ioRules.length > 0 };
  if (plan.mkdirs.length === 0) return out;
  const fail = (what: string, e: unknown): never => {
    throw new TsmpiError(ERROR_CODES.ISOLATION, `${what}: ${errText(e)}`, {
      hint: 'a stale cgroup from a killed run can be removed with rmdir once it is empty',
    });
  };
  const created: string[] = [];
  try {
    try {
      const enabled = applyEnable(deps, plan);
      if (enabled !== undefined) out.enabled = enabled;
    } catch (e) {
      fail('cannot enable cgroup v2 controllers', e);
    }
    for (const dir of plan.mkdirs) {
      try {
        deps.fs.mkdir(dir, 0o700); // only the job user (and root) may look into the job's cgroups
        created.push(dir);
        if (keepWarm !== undefined && created.length % KEEP_WARM_EVERY === 0) keepWarm();
      } catch (e) {
        fail(`cannot create cgroup ${dir}`, e);
      }
    }
    const failedOptional = new Set<string>();
    for (const w of plan.writes) {
      try {
        deps.fs.writeFile(w.path, w.value);
      } catch (e) {
        if (w.critical !== true && (w.optional === true || mode === 'auto')) {
          failedOptional.add(`${w.what} (${errText(e)})`);
          if (plan.ioRules.includes(w.path)) out.ioTrusted = false;
        } else {
          fail(`cannot set ${w.what} (${w.path} = ${w.value})`, e);
        }
      }
    }
    // The v1 no-op rule matters (else I/O reads a false 0); swap limits do not when there is no swap.
    for (const f of failedOptional) if (!f.startsWith('swap limit')) out.notes.push(`${f} not set`);
    if (plan.ioRules.length > 0 && !out.ioTrusted) out.notes.push('block I/O not measured');
  } catch (e) {
    // Only what we created: an EEXIST job dir may belong to a live duplicate.
    for (const dir of created.reverse()) {
      try {
        deps.fs.rmdir(dir);
      } catch {
        // reported by the caller's error; nothing else to do
      }
    }
    undoEnable(deps, out.enabled);
    throw e;
  }
  return out;
}

/**
 * The cgroups of ranks added after setup (planRanks): mkdir each, then the limits. A required write that fails
 * (or any in strict mode) removes what was made here and throws; optional ones are skipped as at setup.
 */
export function applyRankCgroups(deps: IsolationDeps, part: Pick<IsolationPlan, 'mkdirs' | 'writes'>, mode: 'auto' | 'strict'): void {
  const created: string[] = [];
  try {
    for (const dir of part.mkdirs) {
      deps.fs.mkdir(dir, 0o700);
      created.push(dir);
    }
    for (const w of part.writes) {
      try {
        deps.fs.writeFile(w.path, w.value);
      } catch (e) {
        if (w.critical === true || (w.optional !== true && mode === 'strict')) throw new Error(`cannot set ${w.what} (${w.path} = ${w.value}): ${errText(e)}`);
      }
    }
  } catch (e) {
    for (const dir of created.reverse()) {
      try {
        deps.fs.rmdir(dir);
      } catch {
        // removed with the job's cgroups at cleanup
      }
    }
    throw new TsmpiError(ERROR_CODES.ISOLATION, `cannot create the cgroups of spawned ranks: ${e instanceof Error && !('code' in e) ? e.message : errText(e)}`);
  }
}

/** rmdir `dir` and every sub-cgroup below it, deepest first; returns what is still there. */
function removeTree(deps: IsolationDeps, dir: string): string[] {
  // Fast path: a cgroup without child cgroups goes with one rmdir (its interface files go with it), so the
  // 30-odd files of each of 1024 rank cgroups are never lstat'ed one by one.
  try {
    deps.fs.rmdir(dir);
    return [];
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
  }
  if (!deps.fs.isDir(dir)) return [];
  const left: string[] = [];
  let entries: string[] = [];
  try {
    entries = deps.fs.readdir(dir);
  } catch {
    // unreadable: try the rmdir anyway
  }
  for (const e of entries) if (deps.fs.isDir(`${dir}/${e}`)) left.push(...removeTree(deps, `${dir}/${e}`));
  try {
    deps.fs.rmdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') left.push(dir);
  }
  return left;
}

/** rmdir the cgroups the plan itself put below the job dirs (rank and holder leaves); a failure is left to the
 *  tree walk of removeTree, which also finds sub-cgroups a job created. */
function removePlannedLeaves(deps: IsolationDeps, plan: IsolationPlan): void {
  const leaves = [...Object.values(plan.rankDirs).flatMap((d) => Object.values(d)), ...Object.values(plan.holderDirs)];
  for (const dir of leaves) {
    try {
      deps.fs.rmdir(dir);
    } catch {
      // busy, has children, or already gone: removeTree deals with it
    }
  }
}

/** Remove every job cgroup, retrying while busy (zombies keep v1 pids charged until reaped). The planned leaves go
 *  first, by name: walking a job dir means an lstat for each of its interface files and of every rank's. */
export async function removeCgroupsRetrying(deps: IsolationDeps, plan: IsolationPlan, deadlineMs = RMDIR_DEADLINE_MS): Promise<string[]> {
  const deadline = deps.now() + deadlineMs;
  for (;;) {
    removePlannedLeaves(deps, plan);
    const left = Object.values(plan.jobDirs).flatMap((d) => removeTree(deps, d));
    if (left.length === 0 || deps.now() >= deadline) return left;
    await deps.sleep(50);
  }
}

/** Undo our controller enabling once the last job in this process is done; returns what is left. */
export function undoEnable(deps: IsolationDeps, enabled: AppliedCgroups['enabled']): string[] {
  if (enabled === undefined) return [];
  const users = (enableUsers.get(enabled.ownDir) ?? 1) - 1;
  if (users > 0) {
    enableUsers.set(enabled.ownDir, users);
    return [];
  }
  enableUsers.delete(enabled.ownDir);
  const left: string[] = [];
  try {
    if (enabled.controllers.length > 0) {
      deps.fs.writeFile(`${enabled.ownDir}/cgroup.subtree_control`, enabled.controllers.map((c) => `-${c}`).join(' '));
    }
    if (enabled.leaf !== undefined) {
      deps.fs.writeFile(`${enabled.ownDir}/cgroup.procs`, String(deps.pid));
      deps.fs.rmdir(enabled.leaf);
    }
  } catch (e) {
    left.push(`${enabled.leaf ?? enabled.ownDir} (undo controller enabling: ${errText(e)})`);
  }
  return left;
}
