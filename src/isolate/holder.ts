// Root's private /tmp and /dev/shm: one holder process per job and host owns a private mount namespace with
// two tmpfs mounts; each rank's wrapper nsenters it. The holder joins the job's cgroup as it starts (so
// killAll takes it; see joinCgroups), carries pdeathsig KILL (so it dies with the proxy), and the namespace (and its tmpfs)
// vanishes with the last process in it: nothing to unmount on the host.
import type { ChildProcess } from 'node:child_process';
import { ERROR_CODES, TsmpiError } from '../util/errors.js';
import { shQuote } from './pod-argv.js';
import type { IsolationDeps } from './types.js';
import { wrapArgv } from './wrapper.js';
import { keepBindLines, keepOpenLines } from './keep-visible.js';

const READY_DEADLINE_MS = 5000;

export interface HolderInput {
  sh: string;
  setpriv: string;
  unshare: string;
  jobId: string;
  uid: number;
  gid: number;
  /** cgroup.procs files the holder joins before unshare. */
  join: string[];
  tmpfsSize?: number;
  /** Host /tmp and /dev/shm entries the ranks need, bound back over the private tmpfs (keep-visible.ts). */
  keep?: string[];
  /** Back /tmp with this directory (a batch scratch dir) instead of a tmpfs. */
  tmpSource?: string;
  /** The native helper: the same holder in one exec (`tsmpiexec-helper holder`) instead of six. */
  helper?: string;
}

export interface Holder {
  pid: number;
  /** /proc/PID/ns/mnt of the holder. */
  nsPath: string;
  /** readlink of nsPath at start ("mnt:[4026532…]"), to notice a dead holder whose pid was reused. */
  nsLink: string;
  alive(): boolean;
  stop(): Promise<void>;
}

/** The holder's argv (pure): join cgroups (startHolder joins them itself, see joinCgroups), then pdeathsig, then a
 *  private mount namespace with the tmpfs mounts. */
export function holderArgv(i: HolderInput): string[] {
  const data = `mode=0700,uid=${i.uid},gid=${i.gid}${i.tmpfsSize !== undefined ? `,size=${i.tmpfsSize}` : ''}`;
  const keep = i.keep ?? [];
  if (i.helper !== undefined) {
    const native = [
      i.helper,
      'holder',
      '--data',
      data,
      '--tmp-name',
      `tsmpiexec-${i.jobId}-tmp`,
      '--shm-name',
      `tsmpiexec-${i.jobId}-shm`,
      ...(i.tmpSource !== undefined ? ['--tmp-source', i.tmpSource] : []),
      ...keep.flatMap((k) => ['--keep', k]),
    ];
    return wrapArgv({ sh: i.sh, rank: -1, label: 'the /tmp namespace holder', join: i.join, helper: i.helper }, native);
  }
  const opts = `${data},nosuid,nodev`;
  const script = [
    ...keepOpenLines(keep),
    i.tmpSource !== undefined ? `mount --bind ${shQuote(i.tmpSource)} /tmp` : `mount -t tmpfs -o ${opts} ${shQuote(`tsmpiexec-${i.jobId}-tmp`)} /tmp`,
    `mount -t tmpfs -o ${opts} ${shQuote(`tsmpiexec-${i.jobId}-shm`)} /dev/shm`,
    ...keepBindLines(keep),
    'echo ready',
    'exec sleep infinity',
  ].join(' && ');
  const inner = [i.setpriv, '--pdeathsig', 'KILL', i.unshare, '--mount', '--propagation', 'private', i.sh, '-c', script];
  return wrapArgv({ sh: i.sh, rank: -1, label: 'the /tmp namespace holder', join: i.join }, inner);
}

/**
 * Puts the holder into its cgroups from here, in the thread pool, while it sets up its namespace. The first
 * cgroup migration after a quiet spell waits for an RCU grace period (10-20 ms on the 2-CPU test host); done by
 * the holder's own shell before unshare, that wait came before the namespace set-up instead of beside it, on
 * the way to every job's first rank. Joining after the spawn lets nothing escape here: before it is ready the
 * holder forks only its short-lived mount(8)/mkdir(1) steps, afterwards nothing (it is `sleep`), and startHolder
 * resolves only once both the namespace and the join are done.
 */
async function joinCgroups(deps: IsolationDeps, pid: number, files: readonly string[]): Promise<string | undefined> {
  for (const f of files) {
    try {
      if (deps.fs.writeFileAsync) await deps.fs.writeFileAsync(f, String(pid));
      else deps.fs.writeFile(f, String(pid));
    } catch (e) {
      return `the /tmp namespace holder cannot join cgroup ${f}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`;
    }
  }
  return undefined;
}

/**
 * `whileStarting` runs right after the spawn, before the join: setupIsolation creates the job's cgroups there
 * (the holder's cgroup among them), while the holder execs and sets up its namespace. If it throws, the holder is
 * stopped and its error is thrown.
 */
export async function startHolder(deps: IsolationDeps, i: HolderInput, whileStarting?: () => void): Promise<Holder> {
  const [cmd, ...args] = holderArgv({ ...i, join: [] });
  const child: ChildProcess = deps.spawn(cmd!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let exited = false;
  const exitedP = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      resolve();
    });
    child.once('error', () => {
      exited = true;
      resolve();
    });
  });
  const pid = child.pid;
  const stop = async (): Promise<void> => {
    if (!exited && pid !== undefined) {
      try {
        deps.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    await Promise.race([exitedP, deps.sleep(2000)]);
  };
  if (whileStarting !== undefined) {
    try {
      whileStarting();
    } catch (e) {
      await stop();
      throw e;
    }
  }
  const joined = pid !== undefined ? joinCgroups(deps, pid, i.join) : Promise.resolve(undefined);
  let out = '';
  let err = '';
  const ready = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), READY_DEADLINE_MS);
    child.stdout?.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('ready\n')) {
        clearTimeout(timer);
        resolve(true);
      }
    });
    child.stderr?.on('data', (b: Buffer) => {
      err += b.toString();
    });
    void exitedP.then(() => {
      clearTimeout(timer);
      resolve(false);
    });
  });
  const joinError = await joined;
  if (!ready || pid === undefined || joinError !== undefined) {
    await stop();
    const why = !ready || pid === undefined ? (err.trim().split('\n').pop() ?? 'no output') : joinError;
    throw new TsmpiError(ERROR_CODES.ISOLATION, `cannot create the private /tmp namespace: ${why}`);
  }
  child.stdout?.destroy();
  child.stderr?.destroy();
  child.unref(); // a forgotten cleanup must not keep the proxy alive; pdeathsig still kills the holder
  const nsPath = `${deps.procRoot}/${pid}/ns/mnt`;
  const nsLink = deps.fs.readlink(nsPath);
  return { pid, nsPath, nsLink, alive: () => !exited, stop };
}
