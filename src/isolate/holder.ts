// Root's private /tmp and /dev/shm: one holder process per job and host owns a private mount namespace with
// two tmpfs mounts; each rank's wrapper nsenters it. The holder joins the job's cgroup before unshare (so
// killAll takes it), carries pdeathsig KILL (so it dies with the proxy), and the namespace (and its tmpfs)
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

/** The holder's argv (pure): join cgroups, then pdeathsig, then a private mount namespace with the tmpfs mounts. */
export function holderArgv(i: HolderInput): string[] {
  const opts = `mode=0700,uid=${i.uid},gid=${i.gid},nosuid,nodev${i.tmpfsSize !== undefined ? `,size=${i.tmpfsSize}` : ''}`;
  const keep = i.keep ?? [];
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

export async function startHolder(deps: IsolationDeps, i: HolderInput): Promise<Holder> {
  const [cmd, ...args] = holderArgv(i);
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
  if (!ready || pid === undefined) {
    await stop();
    throw new TsmpiError(ERROR_CODES.ISOLATION, `cannot create the private /tmp namespace: ${err.trim().split('\n').pop() ?? 'no output'}`);
  }
  child.stdout?.destroy();
  child.stderr?.destroy();
  child.unref(); // a forgotten cleanup must not keep the proxy alive; pdeathsig still kills the holder
  const nsPath = `${deps.procRoot}/${pid}/ns/mnt`;
  const nsLink = deps.fs.readlink(nsPath);
  return { pid, nsPath, nsLink, alive: () => !exited, stop };
}
