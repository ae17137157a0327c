// Builds the pre-exec wrapper argv (pure): the rank's own shell writes its pid into every cgroup.procs and
// enters the job's mount namespace BEFORE exec'ing the program, so not even its first fork can escape.
// Spawning first and moving the pid afterwards let 40 of 40 children escape (isolation.md finding 1).
// The shell execs, so the pid, fds (PMI socketpair at fd 3) and signals all belong to the program.
// With the native helper (isolate/native.ts) the same steps take one exec instead of three (sh, nsenter).
import { shQuote } from './pod-argv.js';

export interface WrapInput {
  sh: string;
  rank: number;
  /** Who is joining, for the error message (default "rank N"). */
  label?: string;
  /** cgroup.procs files to join, in order. */
  join: string[];
  /** Enter this mount namespace (root holder) with nsenter, keeping the current directory. */
  mountNs?: { nsenter: string; nsPath: string };
  /** The native helper, which does all of it itself (`tsmpiexec-helper exec`). */
  helper?: string;
}

export function wrapArgv(input: WrapInput, argv: string[]): string[] {
  if (argv.length === 0) throw new Error('wrapArgv: empty argv (this is a bug in tsmpiexec)');
  if (input.join.length === 0 && input.mountNs === undefined) return [...argv];
  const who = input.label ?? `rank ${input.rank}`;
  if (input.helper !== undefined) {
    return [
      input.helper,
      'exec',
      ...input.join.flatMap((p) => ['--join', p]),
      ...(input.mountNs !== undefined ? ['--mntns', input.mountNs.nsPath] : []),
      '--label',
      who,
      '--',
      ...argv,
    ];
  }
  const steps = input.join.map(
    (p) => `{ echo $$ > ${shQuote(p)}; } 2>/dev/null || { echo "tsmpiexec: ${who} cannot join cgroup ${p}" >&2; exit 126; }`,
  );
  // --wd=. opens the current directory before setns, so the cwd survives even when it is under the host's /tmp.
  const exec =
    input.mountNs !== undefined
      ? `exec ${shQuote(input.mountNs.nsenter)} --mount=${shQuote(input.mountNs.nsPath)} --wd=. -- "$@"`
      : 'exec "$@"';
  return [input.sh, '-c', [...steps, exec].join('\n'), `tsmpiexec-rank-${input.rank}`, ...argv];
}
