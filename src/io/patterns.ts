// Output-file patterns (-outfile-pattern / -errfile-pattern): %r rank, %h host, %g segment, %% a percent sign.
import { usageError } from '../util/errors.js';

export function expandPattern(pattern: string, v: { rank: number; host: string; segment: number }): string {
  return pattern.replace(/%(.)/g, (m, c: string) => {
    switch (c) {
      case 'r':
        return String(v.rank);
      case 'h':
        return v.host;
      case 'g':
        return String(v.segment);
      case '%':
        return '%';
      default:
        throw usageError(`unknown escape ${m} in an output file pattern`, pattern, 'use %r (rank), %h (host), %g (segment) or %%');
    }
  });
}
