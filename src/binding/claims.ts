// Which CPUs other tsmpiexec jobs of this user on this host hold, so two jobs do not pile on the same cores.
// Each job's proxy writes its CPU list to `<dir>/<pid>` (dir 0700, files 0600) and removes it at the end; a file
// whose pid is gone is stale and ignored (and removed). Race: two jobs choosing at the same instant could pick the
// same CPUs; a lock file (created exclusively) makes choosing one at a time, and is taken over after 2 s.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseCpuList, formatCpuList } from '../topology/cpulist.js';
import { assertPrivateDir } from '../util/private-dir.js';

export function claimsDir(env: Record<string, string | undefined>): string {
  const base = env.XDG_RUNTIME_DIR && fs.existsSync(env.XDG_RUNTIME_DIR) ? env.XDG_RUNTIME_DIR : os.tmpdir();
  return path.join(base, `tsmpiexec-${String(process.getuid?.() ?? 0)}`, 'cpus');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === 'EPERM';
  }
}

/** Runs `choose` while holding the lock, with the CPUs held by other live jobs; writes what it returns. */
let serial = 0;

/** Makes `dir` and its parent (0700) and checks that both are ours: a directory another user made (or a symlink) is
 *  refused with an error, and the caller then chooses as if alone. */
function ownDirs(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const d of [path.dirname(dir), dir]) {
    try {
      assertPrivateDir(d);
    } catch (e) {
      throw new Error(`${d} is not a private directory of this user (${(e as Error).message})`);
    }
  }
}

/** Removes the claims directory and its parent when nothing is left in them (the PMI socket directories share the
 *  parent), so a job leaves nothing behind; ENOTEMPTY means another job still uses them. */
function removeIfEmpty(dir: string): void {
  for (const d of [dir, path.dirname(dir)]) {
    try {
      fs.rmdirSync(d);
    } catch {
      return;
    }
  }
}

export function withClaims(dir: string, choose: (held: Set<number>) => readonly number[]): () => void {
  ownDirs(dir);
  const lock = path.join(dir, '.lock');
  const deadline = Date.now() + 2000;
  for (;;) {
    try {
      fs.closeSync(fs.openSync(lock, 'wx', 0o600));
      break;
    } catch (e) {
      // another job removed the emptied directory between our mkdir and our lock: make it again
      if ((e as { code?: string }).code === 'ENOENT') {
        ownDirs(dir);
        continue;
      }
      if (Date.now() > deadline) {
        fs.rmSync(lock, { force: true });
        continue;
      }
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    }
  }
  // one file per proxy: several in-process proxies (-launcher fork -hosts a,b) each hold their own CPUs
  const mine = path.join(dir, `${String(process.pid)}.${String(serial++)}`);
  try {
    const held = new Set<number>();
    for (const name of fs.readdirSync(dir)) {
      const m = /^([0-9]+)\.[0-9]+$/.exec(name);
      if (!m) continue;
      if (Number(m[1]) !== process.pid && !alive(Number(m[1]))) {
        fs.rmSync(path.join(dir, name), { force: true });
        continue;
      }
      for (const c of parseCpuList(fs.readFileSync(path.join(dir, name), 'utf8')) ?? []) held.add(c);
    }
    const cpus = choose(held);
    if (cpus.length > 0) fs.writeFileSync(mine, formatCpuList(cpus), { mode: 0o600 });
  } finally {
    fs.rmSync(lock, { force: true });
  }
  return () => {
    fs.rmSync(mine, { force: true });
    removeIfEmpty(dir);
  };
}
