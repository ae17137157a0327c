// A private /tmp must not hide the job's own files: a program or working directory under the host's /tmp
// (a CI workspace, a scratch build) stays visible inside by binding its top-level entry back over the private
// tmpfs. Pure path logic here; the mount namespace scripts (holder.ts, pod-argv.ts) do the binding, through an
// fd opened before the tmpfs hides the host's view (`mount --bind /proc/self/fd/N`; --no-canonicalize, or
// mount(8) would resolve the fd link to its path text, which by then names the empty private entry).
import path from 'node:path';
import { shQuote } from './pod-argv.js';

export const PRIVATE_ROOTS = ['/tmp', '/dev/shm'] as const;
/** More entries than this are not worth a namespace full of bind mounts: fall back to a TMPDIR. */
export const MAX_KEEP = 16;

export type KeepPlan = { ok: true; entries: string[] } | { ok: false; reason: string };

/** The top-level /tmp and /dev/shm entries the job needs from the host, or why /tmp cannot be private. */
export function keepEntries(paths: readonly string[]): KeepPlan {
  const out = new Set<string>();
  for (const p of paths) {
    for (const root of PRIVATE_ROOTS) {
      if (p === root || p === `${root}/`) return { ok: false, reason: `the job runs in ${root} itself` };
      if (p.startsWith(`${root}/`)) {
        const first = p.slice(root.length + 1).split('/')[0] ?? '';
        if (first === '' || first === '.' || first === '..') return { ok: false, reason: `unusual path ${p}` };
        out.add(`${root}/${first}`);
      }
    }
  }
  if (out.size > MAX_KEEP) return { ok: false, reason: `the job uses ${out.size} entries of the host's /tmp` };
  return { ok: true, entries: [...out].sort() };
}

/** The directory under a batch scratch dir that backs a job's private /tmp. */
export function scratchTmpDir(scratchDir: string, jobId: string): string {
  return `${scratchDir.replace(/\/+$/, '')}/tsmpiexec-${jobId}-tmp`;
}

/** Shell lines: open each entry (before the tmpfs mounts) ... */
export function keepOpenLines(entries: readonly string[]): string[] {
  return entries.map((e, i) => `exec ${i + 3}<${shQuote(e)}`);
}

/** ... and, after the tmpfs mounts, recreate each entry and bind the host's one over it. */
export function keepBindLines(entries: readonly string[]): string[] {
  return entries.map(
    (e, i) => `{ if [ -d /proc/self/fd/${i + 3} ]; then mkdir -p ${shQuote(e)}; else : > ${shQuote(e)}; fi; } && mount --no-canonicalize --bind /proc/self/fd/${i + 3} ${shQuote(e)} && exec ${i + 3}<&-`,
  );
}

/**
 * The host paths a job's ranks name, for keepEntries: each program and working directory, and every argument
 * that names an existing file or directory under /tmp or /dev/shm (`/tmp/in.txt`, `in.txt` run from /tmp/w,
 * `--input=/tmp/x`). `exists` is asked only about paths under those roots.
 */
export function namedPaths(launches: ReadonlyArray<{ file: string; cwd: string; args: readonly string[] }>, exists: (p: string) => boolean): string[] {
  const out = new Set<string>();
  const under = (p: string): boolean => PRIVATE_ROOTS.some((r) => p.startsWith(`${r}/`));
  for (const l of launches) {
    out.add(l.file);
    out.add(l.cwd);
    for (const a of l.args) {
      const eq = a.indexOf('=');
      for (const word of eq > 0 && a.startsWith('-') ? [a.slice(eq + 1)] : [a]) {
        if (word === '' || word.includes('\0')) continue;
        const abs = path.posix.resolve(l.cwd, word);
        if (under(abs) && exists(abs)) out.add(abs);
      }
    }
  }
  return [...out];
}
