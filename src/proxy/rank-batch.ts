// Up to BATCH_SIZE ranks started with ONE fork of the proxy, through the optional native helper
// (`tsmpiexec-helper batch`, native/helper.c; see isolate/native.ts). Node's spawn() forks the whole proxy
// for every rank and waits for its exec, about 1-2 ms of the proxy's only thread per rank; here Node makes the
// same sockets (stdout, stderr and the PMI socketpair of every rank) and forks once, and the small helper
// forks each rank and reports its pid and, later, its wait status. To the proxy each rank looks like a
// RankProcess (rank-process.ts): the same streams, PMI_FD=3, own session, and the isolation wrapper's argv,
// which the helper runs in the forked child itself instead of exec'ing it.
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import type { Socket } from 'node:net';
import type { Writable } from 'node:stream';
import type { RankOutcome } from '../model/types.js';
import type { ExitIo } from '../isolate/types.js';
import { SETTLE_AFTER_EXIT_MS, signalGroup, type RankHandle, type RankLaunch, type RankProcessEvents } from './rank-process.js';

/** Ranks per helper: 3 sockets each stay well under a 1024-descriptor limit in the helper. */
export const BATCH_SIZE = 64;

/**
 * The helper's request: "K\0", then per rank "ARGC\0" ARGV... "ENVC\0" ENV... "CWD\0" (native/helper.c). A rank
 * with its own argv[0] runs as `HELPER exec --argv0 NAME -- FILE ARGS...`, which the forked child does itself.
 */
export function encodeBatch(launches: readonly RankLaunch[], helper?: string): Buffer {
  const parts: string[] = [String(launches.length)];
  for (const l of launches) {
    const env = Object.entries(l.env).map(([k, v]) => `${k}=${v}`);
    const argv = l.argv0 !== undefined && l.argv0 !== l.file && helper !== undefined ? [helper, 'exec', '--argv0', l.argv0, '--', l.file, ...l.args] : [l.file, ...l.args];
    parts.push(String(argv.length), ...argv, String(env.length), ...env, l.cwd);
  }
  for (const p of parts) {
    if (p.includes('\0')) throw new Error(`a NUL byte in a rank's argument, environment or directory: ${JSON.stringify(p.slice(0, 40))}`);
  }
  return Buffer.from(`${parts.join('\0')}\0`);
}

const SIGNAL_NAMES = new Map<number, NodeJS.Signals>(Object.entries(osConstants.signals).map(([name, num]) => [num, name as NodeJS.Signals]));

/** A raw wait status (waitpid) as an outcome. */
export function outcomeOfStatus(status: number): RankOutcome {
  const sig = status & 0x7f;
  if (sig === 0) return { kind: 'exited', code: (status >> 8) & 0xff };
  return { kind: 'signaled', signal: SIGNAL_NAMES.get(sig) ?? (`SIG${sig}` as NodeJS.Signals) };
}

/** "x I STATUS READ WRITE": the byte counts, when the helper gave them (an older helper stops at STATUS). */
export function parseExitIo(read: string | undefined, write: string | undefined): ExitIo | undefined {
  if (read === undefined || write === undefined || !/^\d+$/.test(read) || !/^\d+$/.test(write)) return undefined;
  return { readBytes: Number(read), writeBytes: Number(write) };
}

const ERRNO_NAMES = new Map<number, string>(Object.entries(osConstants.errno).map(([name, num]) => [num, name]));

/** A rank the helper could not fork or exec, worded as Node words a failed spawn() ("ENOENT: spawn F ENOENT"). */
export function spawnFailure(helper: string, launch: RankLaunch, errno: number): string {
  const name = ERRNO_NAMES.get(errno) ?? `errno ${errno}`;
  // the isolation wrapper's argv (`HELPER exec ... -- PROGRAM ...`) ends with the program: name that, not the helper
  const sep = launch.file === helper && launch.args[0] === 'exec' ? launch.args.indexOf('--') : -1;
  const file = sep >= 0 ? (launch.args[sep + 1] ?? launch.file) : launch.file;
  return `${name}: spawn ${file} ${name}`;
}

/** One rank of a batch: what HostProxy sees of it. */
export class BatchRank implements RankHandle {
  pid: number | undefined;
  outcome: RankOutcome | undefined;
  /** What the helper's wait4 said the rank (and the children it waited for) read from and wrote to storage. */
  exitIo: ExitIo | undefined;
  private settledFlag = false;
  private pending: NodeJS.Signals[] = [];
  private open = 0;
  private settleTimer: NodeJS.Timeout | undefined;
  stdout: Socket | undefined;
  stderr: Socket | undefined;
  pmi: Socket | undefined;

  constructor(
    readonly rank: number,
    private readonly ev: RankProcessEvents,
    private readonly onPid: (pid: number) => void,
  ) {}

  /** Called by RankBatch with the rank's three sockets (the proxy's ends). */
  attach(stdout: Socket, stderr: Socket, pmi: Socket): void {
    this.stdout = stdout;
    this.stderr = stderr;
    this.pmi = pmi;
    stdout.on('data', (d: Buffer) => this.ev.stdout(d));
    stderr.on('data', (d: Buffer) => this.ev.stderr(d));
    stdout.once('end', () => this.ev.streamEnd('stdout'));
    stderr.once('end', () => this.ev.streamEnd('stderr'));
    for (const s of [stdout, stderr, pmi]) {
      this.open++;
      s.on('error', () => {
        /* 'close' follows */
      });
      s.once('close', () => {
        this.open--;
        if (this.open === 0 && this.outcome !== undefined) this.settle();
      });
    }
  }

  started(pid: number): void {
    this.pid = pid;
    this.onPid(pid);
    for (const s of this.pending.splice(0)) this.signal(s);
  }

  finish(o: RankOutcome): void {
    if (this.outcome) return;
    this.outcome = o;
    this.ev.exited(o);
    if (this.open === 0) this.settle();
    else this.settleTimer = setTimeout(() => this.settle(), SETTLE_AFTER_EXIT_MS);
  }

  private settle(): void {
    if (this.settledFlag) return;
    this.settledFlag = true;
    clearTimeout(this.settleTimer);
    this.ev.settled();
  }

  get stdin(): Writable | undefined {
    return undefined; // ranks with stdin are started one by one (RankProcess)
  }

  pauseOutput(): void {
    this.stdout?.pause();
    this.stderr?.pause();
  }

  resumeOutput(): void {
    this.stdout?.resume();
    this.stderr?.resume();
  }

  signal(sig: NodeJS.Signals): boolean {
    if (this.outcome !== undefined && this.pid === undefined) return false;
    if (this.pid === undefined) {
      this.pending.push(sig); // the helper has not said the pid yet: delivered when it does
      return true;
    }
    return signalGroup(this.pid, sig);
  }

  get running(): boolean {
    return this.outcome === undefined;
  }

  destroyStreams(): void {
    this.stdout?.destroy();
    this.stderr?.destroy();
    this.pmi?.destroy();
  }
}

/**
 * Starts `launches` (at most BATCH_SIZE, none with stdin) through `helper batch`. Returns one BatchRank per
 * launch, in order, with its PMI socket (`pmi`, the proxy's end of PMI_FD), or none if the start failed at once;
 * or undefined, having started nothing and reported nothing, when the helper itself cannot be started (then
 * the caller starts the ranks one by one). `pids` is called once the helper has reported every pid it will.
 */
export function startBatch(
  helper: string,
  launches: readonly RankLaunch[],
  events: readonly RankProcessEvents[],
  onPid: (index: number, pid: number) => void,
  pids: () => void,
): BatchRank[] | undefined {
  const ranks = launches.map((l, i) => new BatchRank(l.rank, events[i]!, (pid) => onPid(i, pid)));
  const fail = (reason: string): BatchRank[] => {
    for (const r of ranks) r.finish({ kind: 'not-started', reason });
    return ranks;
  };
  let request: Buffer;
  try {
    request = encodeBatch(launches, helper);
  } catch (e) {
    return fail((e as Error).message);
  }
  const stdio: StdioOptions = ['pipe', 'pipe', 'pipe', ...Array.from({ length: 3 * launches.length }, () => 'pipe' as const)];
  let child: ChildProcess;
  try {
    child = spawn(helper, ['batch', helper], { stdio, env: {} });
  } catch {
    return undefined;
  }
  let spawnError: string | undefined;
  child.on('error', (e: NodeJS.ErrnoException) => {
    spawnError = e.code ? `${e.code}: ${e.message}` : e.message;
  });
  if (child.pid === undefined || !child.stdout || !child.stdin || !child.stderr) {
    // the helper did not start (gone, not executable, out of descriptors): Node's 'error' event follows,
    // which the listener above takes; the caller starts these ranks one by one and reports their own errors
    // (with EMFILE Node gives up before making the sockets: stdio is then not even an array)
    const made = (child.stdio as ChildProcess['stdio'] | undefined) ?? [];
    for (const s of made) (s as Socket | null)?.destroy();
    return undefined;
  }
  ranks.forEach((rank, i) => {
    const s = (k: number): Socket => child.stdio[3 + 3 * i + k] as Socket;
    rank.attach(s(0), s(1), s(2));
  });
  let helperErr = '';
  child.stderr.on('data', (d: Buffer) => {
    if (helperErr.length < 4096) helperErr += d.toString();
  });
  let buf = '';
  let reported = 0;
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString('latin1');
    let nl: number;
    let sawPid = false;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const [kind, index, value, read, write] = buf.slice(0, nl).split(' ');
      buf = buf.slice(nl + 1);
      const r = ranks[Number(index)];
      if (r === undefined) continue;
      if (kind === 'p') {
        r.started(Number(value));
        sawPid = true;
        reported++;
      } else if (kind === 'x') {
        const io = parseExitIo(read, write);
        if (io !== undefined) r.exitIo = io;
        r.finish(outcomeOfStatus(Number(value)));
      } else if (kind === 'f') {
        reported++;
        const launch = launches[Number(index)] as RankLaunch;
        r.finish({ kind: 'not-started', reason: spawnFailure(helper, launch, Number(value)) });
      }
    }
    if (sawPid && reported === ranks.length) pids();
  });
  let exit: string | undefined;
  child.once('exit', (code, signal) => (exit = signal ? `killed by ${signal}` : `exit ${String(code)}`));
  // Not 'close': that waits for the ranks' sockets too. The event pipe is the helper's alone, so its end means
  // the helper is gone and every line it wrote has been read.
  child.stdout.once('close', () => {
    // The helper reaps every rank before it exits: one that ends without reporting a rank lost track of it.
    const why = helperErr.trim().split('\n').pop() || exit || 'it ended';
    for (const r of ranks) {
      if (r.outcome !== undefined) continue;
      if (r.pid === undefined) r.finish({ kind: 'not-started', reason: `the native helper failed: ${spawnError ?? why}` });
      else {
        r.signal('SIGKILL');
        r.finish({ kind: 'signaled', signal: 'SIGKILL' });
      }
    }
  });
  child.stdin.on('error', () => {
    /* the helper is gone: 'close' reports it */
  });
  child.stdin.end(request);
  return ranks;
}
