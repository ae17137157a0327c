// The controller ↔ proxy conversation, as typed messages. Versioned: the proxy's first message is `hello`
// with PROTOCOL_VERSION, and the controller refuses any other version. Rank output and stdin travel as
// binary frames (see frame.ts), never inside these JSON messages.
import type { HostUsage, RankOutcome } from '../model/types.js';
import type { ContainmentSpec } from '../run/job.js';
import type { PmiGroupInfo, SpawnRequest, SpawnResult } from '../pmi/types.js';

/** 2: spawn-ranks / ranks-added (MPI_Comm_spawn). 3: barriers gathered through the launch tree (frame kind 5). */
export const PROTOCOL_VERSION = 3;

export interface WireLaunch {
  rank: number;
  file: string;
  /** argv[0] as typed, when it is not `file` */
  argv0?: string;
  args: string[];
  cwd: string;
  /** index into Assign.envs */
  env: number;
  /** per-rank additions (PMI variables) */
  extra: Record<string, string>;
  stdin: boolean;
  /** a spawned rank's PMI identity (its group rank and kvsname; `rank` is then its job-wide id) */
  pmi?: { kvsname: string; rank: number; appnum: number };
}

/** Launch duties of a proxy in a tree: the proxies it starts itself, and what lies below each of them. */
export interface TreeDuty {
  children: Array<{ index: number; host: string; subtree: number[] }>;
  launcherExec?: string[];
  proxyArgv: string[];
  launchTimeoutMs: number;
}

export type ToProxy =
  /** `index`: the proxy's index in the job (it names the proxy in gathered barrier entries) */
  | { t: 'assign'; index: number; host: string; jobId: string; containment: ContainmentSpec; group: PmiGroupInfo; pmiTransport: 'fd' | 'tcp' | 'unix'; appnums: Record<number, number>; envs: Array<Record<string, string>>; launches: WireLaunch[]; debug: boolean; tree?: TreeDuty }
  | { t: 'signal'; signal: NodeJS.Signals }
  | { t: 'kill' }
  | { t: 'stdin-end'; rank: number }
  /** the controller wrote this many output bytes: the proxy may send more */
  | { t: 'output-ack'; bytes: number }
  | { t: 'reply'; id: number; ok: boolean; value?: unknown }
  /** start the ranks of a group spawned by MPI_Comm_spawn; answered by ranks-added with the same id */
  | { t: 'spawn-ranks'; id: number; group: PmiGroupInfo; envs: Array<Record<string, string>>; launches: WireLaunch[] }
  /**
   * Who takes part in the barriers of group `kvsname` at a proxy that launched others: its own ranks (`self`)
   * and the children (by index) whose subtrees host ranks of the group. Sent before the group's ranks start.
   */
  | { t: 'barrier-plan'; kvsname: string; self: boolean; children: number[] }
  /** all ranks settled everywhere: clean up and exit */
  | { t: 'shutdown' };

export type FromProxy =
  /** `release`: the proxy's tsmpiexec version (package.json), named when the protocols differ. */
  | { t: 'hello'; version: number; release?: string; host: string; pid: number }
  | { t: 'started'; rank: number; pid: number }
  | { t: 'output-end'; rank: number; stream: 'stdout' | 'stderr' }
  | { t: 'exited'; rank: number; outcome: RankOutcome }
  | { t: 'settled'; rank: number; outcome: RankOutcome; pmi: 'none' | 'initialized' | 'finalized' }
  | { t: 'aborted'; rank: number | undefined; code: number; message: string }
  | { t: 'pmi-error'; rank: number | undefined; message: string }
  | { t: 'pmi-limit'; rank: number | undefined; limit: 'keys' | 'bytes'; max: number }
  /** the proxy consumed this many stdin bytes (written to ranks) */
  | { t: 'stdin-ack'; bytes: number }
  | { t: 'request'; id: number; req: UpstreamRequest }
  /** the ranks of spawn-ranks `id` were started (error: why they were not) */
  | { t: 'ranks-added'; id: number; error?: string }
  | { t: 'notice'; message: string }
  /** the proxy could not start its ranks (e.g. --isolate strict unsatisfiable) */
  | { t: 'failed'; message: string }
  | { t: 'usage'; usage: HostUsage }
  /** a proxy this one launched in the tree did not come up (started: false) or went away (started: true) */
  | { t: 'child-failed'; index: number; message: string; started: boolean }
  | { t: 'bye' };

/** Point-to-point requests to the controller (barriers go as frame kind 5 instead: barrier-chunks.ts). */
export type UpstreamRequest =
  | { op: 'publish'; service: string; port: string }
  | { op: 'unpublish'; service: string }
  | { op: 'lookup'; service: string }
  | { op: 'spawn'; req: SpawnRequest };

export type UpstreamReply = boolean | string | undefined | SpawnResult;
