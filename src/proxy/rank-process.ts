// One rank as an OS process: spawned in its own process group (so a signal reaches its children too, and a
// terminal's Ctrl-C reaches only tsmpiexec, which forwards it), with stdout/stderr pipes, stdin as a pipe or
// /dev/null, and the PMI socketpair at fd 3 (PMI_FD=3: no listening socket anywhere).
import { spawn, type ChildProcess } from 'node:child_process';
import type { Writable } from 'node:stream';
import type { Socket } from 'node:net';
import type { RankOutcome } from '../model/types.js';

export interface RankLaunch {
  rank: number;
  file: string;
  args: string[];
  /**
   * The program's argv[0] as the user typed it (`./a.out`, `hostname`), as mpiexec passes it; `file` is what
   * runs. Undefined: argv[0] is `file`. Applied where the final exec allows it (Node's spawn, the native helper's
   * exec); a launch whose file is a wrapper carries it no further (isolate: applyArgv0).
   */
  argv0?: string;
  cwd: string;
  env: Record<string, string>;
  stdin: boolean;
  /** The segment's shared environment and this rank's additions (env = both), for sending them compactly. */
  baseEnv?: Record<string, string>;
  extraEnv?: Record<string, string>;
  /**
   * The rank's PMI identity when it is not rank `rank` of the proxy's first group: a rank of a spawned group
   * (MPI_Comm_spawn) has a job-wide id `rank` (for output, events and PMI_ID) and its own group rank and kvsname.
   */
  pmi?: { kvsname: string; rank: number; appnum: number };
}

export interface RankProcessEvents {
  stdout(data: Buffer): void;
  stderr(data: Buffer): void;
  streamEnd(stream: 'stdout' | 'stderr'): void;
  /** The process ended (or never started); `settled` is called once its PMI socket is drained too. */
  exited(outcome: RankOutcome): void;
  settled(): void;
}

/** What a proxy sees of a started rank: a RankProcess here, or a BatchRank (rank-batch.ts). */
export interface RankHandle {
  readonly rank: number;
  readonly pid: number | undefined;
  readonly outcome: RankOutcome | undefined;
  readonly stdin: Writable | undefined;
  /** Not ended yet (it may still be starting). */
  readonly running: boolean;
  pauseOutput(): void;
  resumeOutput(): void;
  signal(sig: NodeJS.Signals): boolean;
  destroyStreams(): void;
}

/** Signal a rank's whole process group (it leads its own session). Returns false if the group is gone. */
export function signalGroup(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(-pid, sig);
    return true;
  } catch {
    return false;
  }
}

/** How long after exit we wait for the PMI socket and pipes to close before settling anyway. */
export const SETTLE_AFTER_EXIT_MS = 500;

export class RankProcess implements RankHandle {
  readonly rank: number;
  pid: number | undefined;
  outcome: RankOutcome | undefined;
  private child: ChildProcess | undefined;
  private settledFlag = false;

  constructor(
    private readonly launch: RankLaunch,
    private readonly ev: RankProcessEvents,
  ) {
    this.rank = launch.rank;
  }

  /** Spawns the process; returns the PMI socket (child's fd 3), or undefined if spawning failed at once. */
  start(): Socket | undefined {
    const l = this.launch;
    let child: ChildProcess;
    try {
      child = spawn(l.file, l.args, {
        argv0: l.argv0,
        cwd: l.cwd,
        env: l.env,
        stdio: [l.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe', 'pipe'],
        detached: true,
      });
    } catch (e) {
      this.finish({ kind: 'not-started', reason: (e as Error).message });
      this.settle();
      return undefined;
    }
    this.child = child;
    // First, before anything can throw: an 'error' event without a listener would crash the whole launcher.
    child.on('error', (e: NodeJS.ErrnoException) => {
      // spawn failure (ENOENT, EACCES, EMFILE, ...) arrives here asynchronously
      if (this.pid === undefined) {
        this.finish({ kind: 'not-started', reason: e.code ? `${e.code}: ${e.message}` : e.message });
        this.settle();
      }
    });
    this.pid = child.pid;
    const out = child.stdout;
    const err = child.stderr;
    // Out of file descriptors (EMFILE, ENFILE): Node gives up before making the pipes; the 'error' event follows.
    if (!out || !err) return undefined;
    out.on('data', (d: Buffer) => this.ev.stdout(d));
    err.on('data', (d: Buffer) => this.ev.stderr(d));
    out.once('end', () => this.ev.streamEnd('stdout'));
    err.once('end', () => this.ev.streamEnd('stderr'));
    child.stdin?.on('error', () => {
      /* the rank stopped reading (EPIPE): nothing to do, the forwarder stops writing */
    });
    child.once('exit', (code, signal) => {
      this.finish(signal ? { kind: 'signaled', signal } : { kind: 'exited', code: code ?? 0 });
      const t = setTimeout(() => this.settle(), SETTLE_AFTER_EXIT_MS);
      child.once('close', () => {
        clearTimeout(t);
        this.settle();
      });
    });
    return (child.stdio[3] as Socket | null) ?? undefined;
  }

  private finish(o: RankOutcome): void {
    if (this.outcome) return;
    this.outcome = o;
    this.ev.exited(o);
  }

  private settle(): void {
    if (this.settledFlag) return;
    this.settledFlag = true;
    this.ev.settled();
  }

  get stdin(): Writable | undefined {
    return this.child?.stdin ?? undefined;
  }

  pauseOutput(): void {
    this.child?.stdout?.pause();
    this.child?.stderr?.pause();
  }

  resumeOutput(): void {
    this.child?.stdout?.resume();
    this.child?.stderr?.resume();
  }

  /** Signal the rank's whole process group (its children too). Returns false if it is gone. */
  signal(sig: NodeJS.Signals): boolean {
    return this.pid !== undefined && signalGroup(this.pid, sig);
  }

  get running(): boolean {
    return this.pid !== undefined && this.outcome === undefined;
  }

  /** Stop waiting for pipes held open by escaped descendants. */
  destroyStreams(): void {
    this.child?.stdout?.destroy();
    this.child?.stderr?.destroy();
    (this.child?.stdio?.[3] as Socket | null | undefined)?.destroy();
    this.child?.stdin?.destroy();
  }
}
