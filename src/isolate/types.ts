// The vocabulary of isolation: what the proxy asks for, what the host offers (probe), what we decided (plan).
// Plain data and interfaces only; behaviour lives in probe.ts, plan.ts and the apply modules.
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import type { UsageFigures } from '../model/types.js';

export type IsolationMode = 'auto' | 'strict' | 'off';

export interface IsolationRequest {
  /** Unique per job, [A-Za-z0-9_-]+; used in cgroup and directory names (prefix `tsmpiexec-`). */
  jobId: string;
  host: string;
  mode: IsolationMode;
  limits: { memPerRankBytes?: number; pidsPerRank?: number; cpuPerRank?: number };
  /** Global ranks on this host. */
  ranks: number[];
  /** Inside Slurm/HTCondor/PBS...: no systemd-run, never leave our own subtree. */
  inBatch: boolean;
  /** Paths the ranks need from the host (programs, working directories): a private /tmp must not hide them. */
  keepVisible?: string[];
  /** A batch system's per-job scratch directory (HTCondor's _CONDOR_SCRATCH_DIR): the private /tmp lives there,
   *  on the disk the batch system accounts and cleans, instead of a tmpfs in memory. */
  scratchDir?: string;
  /** --tmp host: the ranks keep the host's /tmp and /dev/shm; cgroups and limits as usual. */
  hostTmp?: boolean;
  /** Bound ranks' CPUs (rank → CPU list): where a cpuset controller exists each such rank's cgroup is confined to
   *  its own CPUs and the job's cgroup to their union, so a rank cannot widen its affinity beyond them. */
  cpus?: Record<number, readonly number[]>;
  /** Ranks the native helper starts (rank-batch.ts): their storage I/O comes with their exit (wait4's rusage), so
   *  on cgroup v1 they need no blkio cgroup of their own (plan.ts, planRanks). */
  ioAtExit?: number[];
}

/** Bytes a rank (and the children it waited for) read from and wrote to storage, as its exit reported them. */
export interface ExitIo {
  readBytes: number;
  writeBytes: number;
}

/** Accounting for one rank or one host (the model's UsageFigures). null = cannot be measured, never a fake 0. */
export type RankUsage = UsageFigures;

export type CgroupKind = 'v2' | 'v1' | 'hybrid' | 'none';
export type TmpKind = 'private' | 'tmpdir' | 'none';

/** What the ranks left in their private /tmp and /dev/shm when it was removed. */
export interface TmpLeft {
  files: number;
  bytes: number;
}

export interface Isolation {
  readonly cgroup: CgroupKind;
  readonly tmp: TmpKind;
  /** ONE line when auto had to fall back (what, and why not better); undefined otherwise. */
  readonly notice: string | undefined;
  /** argv that runs `argv` for `rank` after joining its cgroup(s) and the job's private /tmp (join BEFORE exec). */
  wrap(rank: number, argv: string[]): string[];
  /** Environment additions for `rank` (TMPDIR, job marker). */
  env(rank: number): Record<string, string>;
  /** Kill everything still in the job's cgroups/pod; resolves when it is gone or the deadline passed. */
  killAll(): Promise<void>;
  /** Read after the rank exited, before cleanup. `atExit`: the storage I/O its exit reported (the native helper),
   *  used where the rank has no cgroup of its own that counts it. */
  usage(rank: number, atExit?: ExitIo): RankUsage;
  /** `ranks`: this host's rank figures when the caller has just read them (saves reading them again). */
  hostUsage(ranks?: Readonly<Record<number, RankUsage>>): RankUsage;
  /** Ranks placed here after setup (MPI_Comm_spawn): their cgroups, like those made at setup. */
  addRanks(ranks: number[]): void;
  /** Remove cgroups (retry while busy), private /tmp, dirs; returns what could not be removed. */
  cleanup(): Promise<{ leftovers: string[]; tmpLeft?: TmpLeft }>;
}

/** Synchronous file operations on cgroup trees and job directories; injectable so tests can fake cgroupfs. */
export interface IsolationFs {
  mkdir(path: string, mode?: number): void;
  /** Remove one (empty) cgroup or directory. Real cgroupfs removes a cgroup with its interface files. */
  rmdir(path: string): void;
  readFile(path: string): string;
  /** Write an existing file (never create it: cgroupfs files exist or the feature is missing). */
  writeFile(path: string, data: string): void;
  /** The same off the event loop (a cgroup.procs write can sleep for an RCU grace period); writeFile if absent. */
  writeFileAsync?(path: string, data: string): Promise<void>;
  readdir(path: string): string[];
  isDir(path: string): boolean;
  exists(path: string): boolean;
  /** mkdtemp with mode 0700. */
  mkdtemp(prefix: string): string;
  rmTree(path: string): void;
  /** lstat subset, used to check ownership and mode of directories we create. */
  lstat(path: string): { uid: number; mode: number; isDirectory: boolean; isSymbolicLink: boolean };
  readlink(path: string): string;
}

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
  error?: string;
}

/** Everything setupIsolation touches in the outside world. */
export interface IsolationDeps {
  readMountinfo(): string;
  readSelfCgroup(): string;
  uid: number;
  gid: number;
  pid: number;
  env: Record<string, string | undefined>;
  fs: IsolationFs;
  /** Run a short probe command with a deadline. */
  runSync(argv: string[], timeoutMs: number): RunResult;
  spawn(cmd: string, args: string[], opts: SpawnOptions): ChildProcess;
  kill(pid: number, signal: NodeJS.Signals): void;
  sleep(ms: number): Promise<void>;
  /** Milliseconds clock for deadlines (Date.now; tests pass a fake that sleep advances). */
  now(): number;
  /** Absolute path of a tool on PATH, or undefined. */
  which(name: string): string | undefined;
  /** The optional native helper (native/helper.c, built by `make build`), or undefined: see isolate/native.ts. */
  nativeHelper(): string | undefined;
  procRoot: string;
  sysBlockRoot: string;
  tmpBase: string;
  shmDir: string;
}

/** One mounted cgroup hierarchy as the probe found it. */
export interface HierarchyCaps {
  version: 1 | 2;
  /** v1: the controllers bound to this mount (e.g. ['cpu','cpuacct']); v2: controllers available to our children. */
  controllers: string[];
  mountPoint: string;
  /** Absolute directory of our own cgroup in this hierarchy. */
  ownDir: string;
  /** Can we mkdir in ownDir? */
  writable: boolean;
  /** Why not writable (errno text). */
  reason?: string;
  /** Interface files a fresh child cgroup had (tells which features this kernel offers). */
  childFiles: string[];
  /** v2 only: controllers already enabled in ownDir/cgroup.subtree_control. */
  subtreeControl?: string[];
  /** v2 only: other processes that live in ownDir itself (no-internal-process rule). */
  ownOtherProcs?: number;
  /** v2 only: ownDir is the hierarchy root (exempt from the no-internal-process rule). */
  ownIsRoot?: boolean;
  /** A hierarchy with the cpuset controller: the CPUs and memory nodes our own cgroup may use ("0-3", "0"). */
  cpuset?: { cpus: string; mems: string };
}

export type PodTool = 'bwrap' | 'unshare';

export interface Capabilities {
  pid: number;
  uid: number;
  gid: number;
  root: boolean;
  hierarchies: HierarchyCaps[];
  /** "MAJ:MIN" of block devices with a non-zero size (for v1 no-op throttle rules). */
  blockDevices: string[];
  /** Root: `unshare --mount` plus a tmpfs mount works. */
  mountNs: { ok: boolean; reason?: string };
  /** Unprivileged pod (user+mount+pid namespaces). */
  pod: { ok: true; tool: PodTool } | { ok: false; reason: string };
  /** Value of TSMPIEXEC_POD when this process already runs inside a pod. */
  inPod: string | undefined;
  tools: { sh: string; unshare?: string; nsenter?: string; setpriv?: string; bwrap?: string; helper?: string };
}

/** How a rank's counters are read: from which cgroup files, if any. */
export interface AccountingPlan {
  cpu: { hier: string; kind: 'v2' | 'v1-cpuacct' } | { kind: 'sampled' } | { kind: 'none' };
  memory: { hier: string; kind: 'v2' | 'v1' } | null;
  pids: { hier: string } | null;
  io: { hier: string; kind: 'v2' | 'v1-blkio' } | null;
}

export type KillPlan =
  | { kind: 'cgroup.kill'; hier: string }
  | { kind: 'freezer'; hier: string }
  | { kind: 'signal-cgroup'; hier: string }
  | { kind: 'pod-sweep' }
  | { kind: 'marker-sweep' }
  | { kind: 'none' };

export interface PlannedWrite {
  path: string;
  value: string;
  /** A failure only loses a feature (reported in the notice) instead of failing setup. */
  optional?: boolean;
  /** What the write is for, used in messages ("memory limit"). */
  what: string;
  /** Setup fails without it even in auto mode (an empty v1 cpuset cannot be joined at all). */
  critical?: boolean;
}

/** The CPU sets of a job's cgroups (planned when ranks are bound and a cpuset controller exists). */
export interface CpusetPlan {
  /** Hierarchy key of the cpuset controller ('v2' or a v1 key such as "cpuset"). */
  hier: string;
  version: 1 | 2;
  /** The job cgroup's CPUs: the union of its ranks' ("0-3"). */
  jobCpus: string;
  /** v1: the memory nodes every cpuset cgroup needs before a task may join (copied from our own cgroup). */
  mems?: string;
  /** Bound rank → its CPU list; other ranks (spawned later) get the job's CPUs. */
  ranks: Record<number, string>;
}

/** The pure result of planIsolation: every path and value, decided before anything is touched. */
export interface IsolationPlan {
  cgroup: CgroupKind;
  tmp: TmpKind;
  tmpMethod: 'holder' | 'pod' | 'tmpdir' | 'none';
  notice: string | undefined;
  /** Hierarchy key → the job's cgroup directory ("tsmpiexec-<job>-<host>") in that hierarchy. */
  jobDirs: Record<string, string>;
  /** Hierarchy key → ownDir (everything we write must be below it). */
  ownDirs: Record<string, string>;
  /** Directories to create, parents first. */
  mkdirs: string[];
  writes: PlannedWrite[];
  /** v2: enable controllers in ownDir (and move ourselves to a leaf first when needed). */
  enable?: { hier: string; controllers: string[]; moveSelfTo?: string };
  /** rank → cgroup.procs files the wrapper writes `$$` into, in order. */
  join: Record<number, string[]>;
  /** rank → hierarchy key → the rank's cgroup directory. */
  rankDirs: Record<number, Record<string, string>>;
  /** Hierarchy key that enforces each per-rank limit (for ranks added later, see planRanks). */
  limitHiers: { mem?: string | undefined; pids?: string | undefined; cpu?: string | undefined };
  /** The CPU sets of the job's and ranks' cgroups, when planned. */
  cpuset?: CpusetPlan;
  /** The v1 blkio hierarchy, where ranks of IsolationRequest.ioAtExit join the job's cgroup instead of their own. */
  ioAtExitHier?: string;
  holderJoin: string[];
  holderDirs: Record<string, string>;
  kill: KillPlan;
  accounting: AccountingPlan;
  /** Whether v1 blkio counters are trustworthy (no-op throttle rules planned for every device). */
  ioRules: string[];
  /** Size for private /tmp and /dev/shm tmpfs (bytes), when a memory limit was asked for. */
  tmpfsSize?: number;
}
