// The check every directory the launcher keeps its sockets and records in must pass: ours, a real directory, 0700.
import fs from 'node:fs';

export function uidNow(): number {
  return typeof process.getuid === 'function' ? process.getuid() : -1;
}

/** Throws unless `dir` is a directory (not a symlink) owned by `uid` with mode 0700. */
export function assertPrivateDir(dir: string, uid: number = uidNow()): void {
  const st = fs.lstatSync(dir);
  if (st.isSymbolicLink() || !st.isDirectory()) throw new Error(`${dir} is not a directory`);
  if (st.uid !== uid) throw new Error(`${dir} is owned by uid ${st.uid}, not ${uid}`);
  if ((st.mode & 0o777) !== 0o700) throw new Error(`${dir} has mode ${(st.mode & 0o777).toString(8)}, not 700`);
}
