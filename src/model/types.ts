// The shared vocabulary of tsmpiexec: plain data types only, no behaviour, no I/O.
// Every stage of the pipeline (cli → hosts → placement → run → report) speaks these.
import type { BindPolicy, MapPolicy, MemPolicy } from '../binding/policy.js';

/** How a segment's or the job's environment is passed to ranks (Hydra's -genvall/-genvnone/-genvlist). */
export type EnvPolicy =
  | { kind: 'all' }
  | { kind: 'none' }
  | { kind: 'list'; names: string[] };

/** Environment instructions: a policy for the launcher's own environment plus explicit NAME=VALUE pairs. */
export interface EnvSpec {
  /** undefined: inherit the job-wide (global) policy. */
  policy?: EnvPolicy;
  /** Explicit settings (-genv / -env), applied after the policy, in order. */
  set: Array<[name: string, value: string]>;
}

/** One MPMD segment: `-n 2 ./a : -n 3 ./b` has two. */
export interface Segment {
  index: number;
  /** Ranks asked for with -n/-np; undefined: fill the available slots (or 1). */
  np?: number;
  program: string;
  args: string[];
  env: EnvSpec;
  wdir?: string;
  /** Per-segment -hosts, if given (Hydra allows it). */
  hosts?: HostSpec[];
}

/** Where stdin goes. */
export type StdinTarget = { kind: 'rank'; rank: number } | { kind: 'all' } | { kind: 'none' };

export type LauncherName = 'fork' | 'ssh' | 'slurm';

/** A host as the user named it, before placement. */
export interface HostSpec {
  name: string;
  /** Slot count if given (`host:4`, `slots=4`); undefined means "one slot, wrap round-robin". */
  slots?: number;
}

/** Where the host list came from, for --verbose and --dry-run. */
export type HostSource =
  | { kind: 'default' }
  | { kind: 'cmdline' }
  | { kind: 'hostfile'; path: string }
  | { kind: 'batch'; system: string; variable: string };

/** The fully parsed command line. */
export interface JobRequest {
  segments: Segment[];
  /** -hosts value (job-wide). */
  hosts?: HostSpec[];
  /** -f hostfile path (job-wide). */
  hostfile?: string;
  ppn?: number;
  /** --oversubscribe: more ranks than a batch allocation's slots is allowed (else an error). */
  oversubscribe?: boolean;
  /** Job-wide environment (-genv*, -genvlist, -genvall, -genvnone). Policy defaults to all. */
  genv: EnvSpec;
  /** Default working directory for all segments (-wdir before the first segment). */
  wdir?: string;
  prependRank: boolean;
  /** -prepend-pattern: every output line's prefix (%r %h %g %p %%) */
  prependPattern?: string;
  /** --timestamp-output: every output line starts with its arrival time */
  timestampOutput?: boolean;
  outfilePattern?: string;
  errfilePattern?: string;
  /** Seconds; undefined = no timeout. MPIEXEC_TIMEOUT supplies the default. */
  timeoutSec?: number;
  launcher?: LauncherName;
  /** Command (with arguments) used instead of the launcher's default binary. */
  launcherExec?: string[];
  stdin: StdinTarget;
  dryRun: boolean;
  json: boolean;
  verbose: boolean;
  /** Seconds a remote proxy may take to come up. */
  launchTimeoutSec: number;
  /** Launch remote proxies as a tree of this width (ssh launcher); flat up to this many remote hosts. */
  treeWidth: number;
  noTree: boolean;
  /** The command that starts tsmpiexec on a remote host (the word `proxy` is appended). */
  proxyCmd?: string[];
  /** Seconds between SIGTERM and SIGKILL when ranks are terminated. */
  graceSec: number;
  /** PMI transport for ranks. */
  pmiTransport: 'fd' | 'tcp' | 'unix';
  /** --mpi: the program's MPI (auto: found from the program). */
  mpi: 'auto' | 'openmpi' | 'mpich' | 'pmix' | 'none';
  /** Containment: cgroups + private /tmp (auto: best available, strict: required, off: neither). */
  isolate: 'auto' | 'strict' | 'off';
  memPerRankBytes?: number;
  pidsPerRank?: number;
  /** --kvs-max-keys, --kvs-max-bytes (undefined: the defaults). */
  kvsLimits?: { maxKeys: number; maxBytes: number };
  /** --tmp: a private /tmp and /dev/shm per job and host (default), or the host's. */
  tmp?: 'private' | 'host';
  /** -bind-to (default: a core per rank when they fit). */
  bindTo: BindPolicy;
  /** -map-by: the order a host's CPUs are handed out in. */
  mapBy?: MapPolicy;
  /** -print-all-exitcodes: every rank's end on stderr at the end. */
  printAllExitcodes?: boolean;
  /** Options of other launchers accepted without effect (said in one line at start). */
  noEffect?: string[];
  /** -usize: the universe size ranks are told (undefined: SYSTEM). */
  usize?: number | 'system' | 'infinite';
  /** -membind: each rank's memory policy (undefined: the kernel's default). */
  membind?: MemPolicy;
  /** -gpus-per-proc: devices per rank (undefined: GPUs are left as they are). */
  gpusPerProc?: number;
  /** --report-bindings */
  reportBindings: boolean;
  /** Print the usage table at the end (stderr). */
  report: boolean;
  /** Write the usage report as JSON to this file. */
  reportJson?: string;
  /** Write the self-contained HTML report to this file. */
  reportHtml?: string;
  /** Print the wall time of each launch phase at the end (stderr). */
  timing: boolean;
}

/** One rank, as placed. */
export interface RankPlan {
  rank: number;
  /** Index into JobPlan.proxies. */
  proxy: number;
  host: string;
  localRank: number;
  segment: number;
  /** Appnum as PMI reports it (= segment index). */
  appnum: number;
  program: string;
  args: string[];
}

export interface ProxyPlan {
  index: number;
  host: string;
  /** Global ranks on this host, ascending. */
  ranks: number[];
}

/** The placement result: pure data, printed by --dry-run. */
export interface JobPlan {
  size: number;
  kvsname: string;
  proxies: ProxyPlan[];
  ranks: RankPlan[];
  /** PMI_process_mapping in triple form, or '' when it would not fit. */
  processMapping: string;
  hostSource: HostSource;
  /** What PMI reports as the universe size (-usize; -1: no limit). Undefined: the job's size. */
  universeSize?: number;
}

/** How one rank ended. */
export type RankOutcome =
  | { kind: 'exited'; code: number; /** a process of the rank was OOM-killed at this limit (bytes) */ oomLimitBytes?: number }
  | { kind: 'signaled'; signal: string; /** killed by the OOM killer at its memory limit (bytes) */ oomLimitBytes?: number }
  | { kind: 'not-started'; reason: string }
  /** Its proxy vanished (host down, proxy killed, ssh cut): the rank's own fate is unknown. */
  | { kind: 'lost'; reason: string };

/** Why a job ended the way it did. The first cause recorded wins the exit code. */
export type Cause =
  | { kind: 'rank-failed'; rank: number; host: string; outcome: RankOutcome }
  | { kind: 'no-finalize'; rank: number; host: string }
  /** An MPI program's rank ended without ever speaking PMI: it ran as a singleton. */
  | { kind: 'no-pmi'; rank: number; host: string }
  | { kind: 'aborted'; rank: number; host: string; code: number; message?: string }
  /** A rank broke the PMI protocol or went over the job's KVS limits. */
  | { kind: 'pmi-error'; rank: number; host: string; message: string }
  | { kind: 'timeout'; seconds: number }
  | { kind: 'signal'; signal: string }
  | { kind: 'launch-failed'; host: string; message: string }
  | { kind: 'proxy-lost'; host: string; message: string }
  /** Rank output could not be written (an output file on a full file system, ...). */
  | { kind: 'output-failed'; path: string; message: string };

/** What a rank or a host used; null = this host cannot measure it (never a fake 0). */
export interface UsageFigures {
  cpuUserSec: number;
  cpuSysSec: number;
  memPeakBytes: number | null;
  ioReadBytes: number | null;
  ioWriteBytes: number | null;
  pidsPeak: number | null;
  oomKilled: boolean;
}

/** One host's accounting, and how it was contained. */
export interface HostUsage {
  host: string;
  cgroup: 'v2' | 'v1' | 'hybrid' | 'none';
  tmp: 'private' | 'tmpdir' | 'none';
  total: UsageFigures;
  ranks: Record<number, UsageFigures>;
  /** Where each rank ran (null: not bound / the default policy / no devices given), when binding was asked for. */
  bindings?: Record<number, RankBindingInfo>;
}

/** One rank's binding as the reports show it: CPU list, memory policy ("bind:0"), GPU devices ("0,1"). */
export interface RankBindingInfo {
  cpus: string | null;
  mems: string | null;
  gpus: string | null;
}

/** Milliseconds since the job started (the controller's clock). */
export interface RankTimes {
  startMs?: number;
  endMs?: number;
}

/** Wall time of each launch phase, for --timing. */
export interface PhaseTimes {
  /** all ranks started (proxies up and ranks spawned) */
  ranksStartedMs?: number;
  /** the first PMI barrier completed (for MPI programs: the end of MPI_Init's exchange) */
  firstBarrierMs?: number;
  /** the last rank ended */
  lastRankEndedMs?: number;
  /** teardown done (leftovers killed, cgroups removed, output flushed) */
  doneMs?: number;
}

export interface JobOutcome {
  causes: Cause[];
  /** World ranks, then spawned ones (MPI_Comm_spawn: `rank` is their job-wide id, `spawn` says which group). */
  ranks: Array<{ rank: number; host: string; outcome: RankOutcome; times?: RankTimes; spawn?: { group: number; rank: number } }>;
  phases?: PhaseTimes;
  /** Per host, when isolation could account for it. */
  usage: HostUsage[];
  /** Ranks whose failure was already said on stderr when it happened (the end summary does not repeat them). */
  announced?: number[];
  /** When the job started (epoch ms); rank and phase times count from here. */
  startedAtMs?: number;
}
