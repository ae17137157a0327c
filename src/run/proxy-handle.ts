// What the job state machine needs of a proxy, wherever it runs: an in-process HostProxy (this host) or a
// RemoteProxy reached over a launcher's channel. Both report through ProxyEvents.
import type { Writable } from 'node:stream';
import type { HostProxyEvents } from '../proxy/host-proxy.js';
import type { HostUsage } from '../model/types.js';
import type { PmiGroupInfo } from '../pmi/types.js';
import type { RankLaunch } from '../proxy/rank-process.js';

export interface ProxyEvents extends HostProxyEvents {
  /** The proxy never came up (unreachable host, refused key, missing node); its ranks never started. */
  launchFailed(message: string): void;
  /** The proxy went away mid-job (killed, host gone, connection cut); its unsettled ranks are lost. */
  lost(message: string): void;
  notice(line: string): void;
}

export interface ProxyHandle {
  readonly host: string;
  start(): void;
  signal(sig: NodeJS.Signals): void;
  killAll(): void;
  resumeOutput(): void;
  stdinOf(rank: number): Writable | undefined;
  destroyStreams(): void;
  /** After the last rank settled: tell the proxy to finish and wait for it to go (bounded). */
  close?(): Promise<void>;
  /** Resolves when its ranks were started (stdinOf answers from then on). */
  ready?(): Promise<void>;
  /** After close(): what the host's ranks used, when its isolation could account for it. */
  usage?(): HostUsage | undefined;
  /**
   * Start the ranks of a spawned group (MPI_Comm_spawn) here. Resolves once they were started, with undefined,
   * or with why they could not be; their events then come like those of the first ranks.
   */
  addRanks?(group: PmiGroupInfo, launches: RankLaunch[]): Promise<string | undefined>;
  /**
   * The barriers of group `kvsname` are entered by the proxies (by index) in `participants`: called for every
   * proxy of the job before the group's ranks start, so a proxy of a launch tree knows whom to wait for.
   */
  barrierGroup?(kvsname: string, participants: ReadonlySet<number>): void;
}
