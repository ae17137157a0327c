// The PMI layer's contracts: what a proxy's PMI engine needs from the world above it (PmiUpstream), what it
// reports (PmiServerEvents), and how groups and ranks are described. Types only; server.ts re-exports them.
import type { SpawnRequest } from './spawn.js';
import type { PmixJob } from '../pmix/types.js';

export type { SpawnCommand, SpawnRequest } from './spawn.js';

export interface PmiGroupInfo {
  kvsname: string;
  size: number;
  processMapping: string;
  universeSize: number;
  /** number of this proxy's ranks in the group (barrier completes locally when all of them entered) */
  localCount: number;
  spawned: boolean;
  parentKvsname?: string;
  /**
   * Pairs visible in the group's KVS from the start (spawn preputs such as PARENT_ROOT_PORT_NAME, which
   * must be stored before the children run). Added by the PMI layer; optional.
   */
  initialKvs?: Array<[string, string]>;
  /** The job's KVS limits (--kvs-max-keys, --kvs-max-bytes); undefined: DEFAULT_KVS_LIMITS. */
  kvsLimits?: KvsLimits;
  /** The ranks speak PMIx (Open MPI's ext3x): each proxy serves it through the helper (src/pmix). */
  pmix?: PmixJob;
}

export type KvsOverflow = { limit: 'keys' | 'bytes'; max: number };

/** How much a job may put into its KVS: all groups, every epoch, counted as distinct keys and key+value bytes. */
export interface KvsLimits {
  maxKeys: number;
  maxBytes: number;
}

/**
 * Far above what MPI libraries put (a few keys of a few hundred bytes per rank: 64 MiB holds the business
 * cards of 100,000 ranks), far below what would exhaust the launcher's memory.
 */
export const DEFAULT_KVS_LIMITS: KvsLimits = { maxKeys: 1_048_576, maxBytes: 64 * 2 ** 20 };

export interface PmiRankInfo {
  rank: number;
  kvsname: string;
  appnum: number;
}

export type SpawnResult = { ok: true; kvsname: string } | { ok: false; error: string };

export interface PmiUpstream {
  /** Called once per group per barrier/fence epoch when all local ranks of the group entered. Resolves with
   *  all key/value pairs put by any proxy in this epoch (global visibility after the barrier). */
  barrier(kvsname: string, puts: Array<[string, string]>): Promise<Array<[string, string]>>;
  /** false: already published */
  publish(service: string, port: string): Promise<boolean>;
  /** false: not found */
  unpublish(service: string): Promise<boolean>;
  lookup(service: string): Promise<string | undefined>;
  spawn(req: SpawnRequest): Promise<SpawnResult>;
}

export interface PmiServerEvents {
  initialized(rank: PmiRankInfo): void;
  finalized(rank: PmiRankInfo): void;
  aborted(rank: PmiRankInfo | undefined, code: number, message: string): void;
  /** The engine then closes that connection. `rank`: who it was, if the connection had identified itself. */
  protocolError(connId: number, message: string, rank?: PmiRankInfo): void;
  /** A request refused without closing the connection (e.g. a put whose value would be cut): one line for the user. */
  refused?(rank: PmiRankInfo, message: string): void;
  /** A put went over the job's KVS limits: the put got an error reply; said once per engine. */
  limitReached?(rank: PmiRankInfo, over: KvsOverflow): void;
}

/** What the engine needs of a connection: write a whole reply, or hang up. */
export interface PmiConnIo {
  send(data: string): void;
  close(): void;
}

export type PmiRankState = 'none' | 'initialized' | 'finalized';
