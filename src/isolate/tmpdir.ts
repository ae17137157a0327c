// The no-namespace fallback for a private /tmp: a fresh 0700 per-job directory used as TMPDIR (Flux's
// approach), removed at the end together with the job's own /dev/shm entries (never by uid alone).
import { ERROR_CODES, TsmpiError } from '../util/errors.js';
import type { IsolationDeps } from './types.js';

export function createJobTmpdir(deps: IsolationDeps, jobId: string, host: string): string {
  const base = deps.tmpBase.replace(/\/+$/, '') || '/';
  const dir = deps.fs.mkdtemp(`${base}/tsmpiexec-${jobId}-${host.replace(/[^A-Za-z0-9_.-]/g, '_')}-`);
  // mkdtemp is 0700 and ours by construction; check anyway before handing it out (never trust a shared /tmp).
  const st = deps.fs.lstat(dir);
  if (st.isSymbolicLink || !st.isDirectory || st.uid !== deps.uid || (st.mode & 0o077) !== 0) {
    throw new TsmpiError(ERROR_CODES.ISOLATION, `job directory has the wrong owner or mode`, { culprit: dir });
  }
  return dir;
}

/** Remove the job dir and /dev/shm entries that are ours AND carry this job's id; returns what is left. */
export function removeJobTmp(deps: IsolationDeps, dir: string | undefined, jobId: string): string[] {
  const left: string[] = [];
  if (dir !== undefined) {
    try {
      deps.fs.rmTree(dir);
    } catch {
      // checked below
    }
    if (deps.fs.exists(dir)) left.push(dir);
  }
  let names: string[] = [];
  try {
    names = deps.fs.readdir(deps.shmDir);
  } catch {
    return left;
  }
  for (const name of names) {
    if (!name.includes(jobId)) continue;
    const p = `${deps.shmDir}/${name}`;
    try {
      if (deps.fs.lstat(p).uid !== deps.uid) continue;
      deps.fs.rmTree(p);
    } catch {
      // fall through to the check
    }
    if (deps.fs.exists(p)) left.push(p);
  }
  return left;
}
