// The real world for isolation (node:fs, child_process, /proc, PATH); the only isolate module that reads
// process.*. Tests replace any part through setupIsolation's deps argument.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { findNativeHelper } from './native.js';
import type { IsolationDeps, IsolationFs } from './types.js';

/** open(2) flags for an interface file that must exist: write only, no O_CREAT, no O_TRUNC. */
const WRITE_EXISTING = fs.constants.O_WRONLY;

export const realFs: IsolationFs = {
  mkdir: (p, mode) => fs.mkdirSync(p, mode !== undefined ? { mode } : {}),
  rmdir: (p) => fs.rmdirSync(p),
  readFile: (p) => fs.readFileSync(p, 'utf8'),
  // Write-only, never created: a missing cgroup interface file means the feature is missing. Not 'r+': that also
  // asks to read, and some interface files are write-only (cgroup.kill is 0200), which only root gets past.
  writeFile: (p, data) => {
    const fd = fs.openSync(p, WRITE_EXISTING);
    try {
      fs.writeSync(fd, data);
    } finally {
      fs.closeSync(fd);
    }
  },
  // One thread-pool trip, started now: the open is instant, the write may wait (a cgroup migration can wait for an
  // RCU grace period). fs.promises.writeFile would take three trips, each waiting for the main thread to be free.
  writeFileAsync: (p, data) => {
    let fd: number;
    try {
      fd = fs.openSync(p, WRITE_EXISTING);
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise<void>((resolve, reject) => {
      fs.write(fd, data, (err) => {
        fs.closeSync(fd);
        if (err) reject(err);
        else resolve();
      });
    });
  },
  readdir: (p) => fs.readdirSync(p),
  isDir: (p) => {
    try {
      return fs.lstatSync(p).isDirectory();
    } catch {
      return false;
    }
  },
  exists: (p) => fs.existsSync(p),
  mkdtemp: (prefix) => fs.mkdtempSync(prefix),
  rmTree: (p) => fs.rmSync(p, { recursive: true, force: true }),
  lstat: (p) => {
    const st = fs.lstatSync(p);
    return { uid: st.uid, mode: st.mode & 0o7777, isDirectory: st.isDirectory(), isSymbolicLink: st.isSymbolicLink() };
  },
  readlink: (p) => fs.readlinkSync(p),
};

/** A tool's absolute path along PATH (and the system directories, where a trimmed PATH leaves them out). */
export function which(name: string, envPath: string | undefined): string | undefined {
  const dirs = (envPath ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(':').filter(Boolean);
  // Tools the wrapper relies on live in the system dirs even when PATH is trimmed.
  for (const d of [...dirs, '/usr/bin', '/bin', '/usr/sbin', '/sbin']) {
    const p = path.join(d, name);
    // stat first, without an exception for the many directories that have no such file: a thrown ENOENT costs
    // tens of microseconds, and every job start looks up five tools along the whole PATH
    try {
      if (fs.statSync(p, { throwIfNoEntry: false })?.isFile() !== true) continue;
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // not executable for us, or not a directory on the way (ENOTDIR)
    }
  }
  return undefined;
}

export function defaultDeps(): IsolationDeps {
  return {
    readMountinfo: () => fs.readFileSync('/proc/self/mountinfo', 'utf8'),
    readSelfCgroup: () => fs.readFileSync('/proc/self/cgroup', 'utf8'),
    uid: process.geteuid?.() ?? process.getuid?.() ?? -1,
    gid: process.getegid?.() ?? process.getgid?.() ?? -1,
    pid: process.pid,
    env: process.env,
    fs: realFs,
    runSync: (argv, timeoutMs) => {
      const [cmd, ...args] = argv;
      if (cmd === undefined) return { status: null, stdout: '', stderr: '', error: 'empty argv' };
      const r = spawnSync(cmd, args, { timeout: timeoutMs, killSignal: 'SIGKILL', encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', ...(r.error ? { error: r.error.message } : {}) };
    },
    spawn: (cmd, args, opts) => spawn(cmd, args, opts),
    kill: (pid, sig) => process.kill(pid, sig),
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    now: () => Date.now(),
    which: (name) => which(name, process.env.PATH),
    nativeHelper: () => findNativeHelper(process.env),
    procRoot: '/proc',
    sysBlockRoot: '/sys/block',
    tmpBase: os.tmpdir(),
    shmDir: '/dev/shm',
  };
}
