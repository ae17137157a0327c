// What the ranks left in the job's private /tmp and /dev/shm, counted just before they are removed, so the
// job can say so in one line (files are lost with the private /tmp; --tmp host keeps them).
import fs from 'node:fs';
import path from 'node:path';
import type { TmpLeft } from './types.js';

/** Entries looked at in all; a /tmp holding more is reported as "at least". */
const MAX_ENTRIES = 100_000;

/**
 * Files (anything but directories) and their bytes under `roots`, not following symbolic links and skipping
 * the top-level entries in `skip` (host entries kept visible: they are the host's, not left by the job).
 */
export function countLeft(roots: readonly string[], skip: ReadonlySet<string>): TmpLeft {
  const left: TmpLeft = { files: 0, bytes: 0 };
  let seen = 0;
  const walk = (dir: string, top: boolean): void => {
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      return;
    }
    for (const n of names) {
      if (++seen > MAX_ENTRIES) return;
      if (top && skip.has(n)) continue;
      const p = path.join(dir, n);
      let st: fs.Stats;
      try {
        st = fs.lstatSync(p);
      } catch {
        continue;
      }
      if (st.isDirectory()) walk(p, false);
      else {
        left.files++;
        left.bytes += st.size;
      }
    }
  };
  for (const r of roots) walk(r, true);
  return left;
}
