// Output-file patterns (-outfile-pattern / -errfile-pattern): %r rank, %h host, %g segment, %% a percent sign.
import fs from 'node:fs';
import path from 'node:path';
import { usageError } from '../util/errors.js';

/** What a pattern can name of a rank: as Hydra's, %g is the process group (0: the command line's ranks, k: the k-th spawn) and %p the proxy. */
export interface PatternFields {
  rank: number;
  host: string;
  group: number;
  proxy: number;
}

export function expandPattern(pattern: string, v: PatternFields): string {
  return pattern.replace(/%(.)/g, (m, c: string) => {
    switch (c) {
      case 'r':
        return String(v.rank);
      case 'h':
        return v.host;
      case 'g':
        return String(v.group);
      case 'p':
        return String(v.proxy);
      case '%':
        return '%';
      default:
        throw usageError(`unknown escape ${m} in an output pattern`, pattern, 'use %r (rank), %h (host), %g (process group), %p (proxy) or %%');
    }
  });
}

/**
 * Every output file a pattern names must have a directory we can write into, checked before anything starts
 * (a job must not run only to fail at its first line of output). Throws a usage error naming the first that
 * cannot; a file itself may or may not exist yet.
 */
export function checkPatternDirs(option: string, pattern: string, ranks: readonly PatternFields[], cwd: string): void {
  const seen = new Set<string>();
  for (const r of ranks) {
    const file = path.resolve(cwd, expandPattern(pattern, r));
    const dir = path.dirname(file);
    if (seen.has(dir)) continue;
    seen.add(dir);
    let why: string | undefined;
    try {
      if (!fs.statSync(dir).isDirectory()) why = 'is not a directory';
      else fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      why ??= code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not writable' : `cannot be used (${code ?? 'error'})`;
    }
    if (why !== undefined) {
      throw usageError(`the directory of output file ${file} ${why}`, `${option} ${pattern}`, why === 'does not exist' ? `create ${dir} first, or change the pattern` : `use a directory you can write to`);
    }
  }
}
