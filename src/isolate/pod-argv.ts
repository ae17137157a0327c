// Builds the argv prefix that starts a whole process inside a "pod" (pure): user+mount+PID namespaces with
// a private /tmp and /dev/shm, dying with its parent. Unprivileged namespaces cannot be entered later
// (isolation.md §2.1), so the proxy re-execs itself through this and spawns every rank from inside.
import type { PodTool } from './types.js';
import { keepBindLines, keepOpenLines } from './keep-visible.js';

export const POD_ENV = 'TSMPIEXEC_POD';

export interface PodArgvInput {
  tool: PodTool;
  tools: { sh: string; unshare?: string; setpriv?: string; bwrap?: string };
  jobId: string;
  uid: number;
  gid: number;
  /** tmpfs size in bytes for /tmp and /dev/shm (undefined: kernel default, half of RAM). */
  tmpfsSize?: number;
  /** Host /tmp and /dev/shm entries bound back over the private tmpfs (keep-visible.ts). */
  keep?: string[];
  /** Back /tmp with this directory (a batch scratch dir) instead of a tmpfs. */
  tmpSource?: string;
}

export function shQuote(s: string): string {
  return /^[A-Za-z0-9_./=:@%+,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** bwrap: PID 1 is bwrap itself (it reaps); --die-with-parent gives the pdeathsig chain. */
function bwrapArgv(bwrap: string, i: PodArgvInput): string[] {
  const size = i.tmpfsSize !== undefined ? ['--size', String(i.tmpfsSize)] : [];
  return [
    bwrap, '--unshare-user', '--unshare-pid', '--die-with-parent',
    '--dev-bind', '/', '/', '--proc', '/proc',
    ...(i.tmpSource !== undefined ? ['--bind', i.tmpSource, '/tmp'] : [...size, '--perms', '0700', '--tmpfs', '/tmp']),
    ...size, '--perms', '0700', '--tmpfs', '/dev/shm',
    ...(i.keep ?? []).flatMap((e) => ['--bind', e, e]),
    '--setenv', POD_ENV, i.jobId, '--setenv', 'TMPDIR', '/tmp', '--',
  ];
}

/**
 * Nested unshare (isolation.md §2.1): the outer user namespace maps us to root so we may mount, the inner
 * one maps back to the real uid and drops all capabilities. The sh stays PID 1 (never the proxy: PID 1
 * ignores signals without handlers, and only sh reaps orphans here), running the payload in the foreground:
 * a background job would get /dev/null as stdin, and the proxy's stdin may be its control channel.
 * `exit $?` keeps dash from exec'ing the last command. setpriv --pdeathsig KILL + --kill-child: when our
 * parent dies, unshare dies, and with it the namespace's PID 1 and everything in it.
 */
function unshareArgv(setpriv: string, unshare: string, i: PodArgvInput): string[] {
  const size = i.tmpfsSize !== undefined ? `,size=${i.tmpfsSize}` : '';
  const keep = i.keep ?? [];
  const script = [
    ...keepOpenLines(keep).map((l) => `${l} || exit 125`),
    `${i.tmpSource !== undefined ? `mount --bind ${shQuote(i.tmpSource)} /tmp` : `mount -t tmpfs -o mode=0700${size} tsmpiexec-${i.jobId}-tmp /tmp`} && mount -t tmpfs -o mode=0700${size} tsmpiexec-${i.jobId}-shm /dev/shm || exit 125`,
    ...keepBindLines(keep).map((l) => `${l} || exit 125`),
    `${POD_ENV}=${shQuote(i.jobId)} TMPDIR=/tmp ${shQuote(unshare)} --user --map-user=${i.uid} --map-group=${i.gid} -- "$@"`,
    'exit $?',
  ].join('\n');
  return [
    setpriv, '--pdeathsig', 'KILL',
    unshare, '--user', '--map-root-user', '--mount', '--propagation', 'private',
    '--pid', '--fork', '--mount-proc', '--kill-child',
    i.tools.sh, '-c', script, 'tsmpiexec-pod',
  ];
}

/** The pod prefix for `tool`, or undefined when that tool is not installed. */
export function podArgv(i: PodArgvInput): string[] | undefined {
  if (i.tool === 'bwrap') return i.tools.bwrap !== undefined ? bwrapArgv(i.tools.bwrap, i) : undefined;
  if (i.tools.setpriv === undefined || i.tools.unshare === undefined) return undefined;
  return unshareArgv(i.tools.setpriv, i.tools.unshare, i);
}
