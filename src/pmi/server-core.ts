// The state both PMI wire protocols share inside one proxy's PMI engine: the groups and their KVS (against the
// job's limits), which connection is which rank, init/finalize state, barrier epochs, node attributes and the
// upstream calls (barrier, name service, spawn). It knows no wire format: the PMI-1 and PMI-2 modules
// (server-v1.ts, server-v2.ts) parse requests, call in here, and write their own replies.
//
// KVS visibility follows hydra: a put is cached and becomes visible (to everyone, the putter included) only
// after the next barrier/fence, when the upstream returns every pair put in that epoch.
import { PmiDecoder } from './decoder.js';
import { KvsBudget } from './kvs-budget.js';
import type { SpawnRequest } from './spawn.js';
import type {
  PmiConnIo,
  PmiGroupInfo,
  PmiRankInfo,
  PmiRankState,
  PmiServerEvents,
  PmiUpstream,
  SpawnResult,
} from './types.js';
import { DEFAULT_KVS_LIMITS } from './types.js';
import type { SpawnAccumulator } from './wire1.js';

export interface RankRec {
  info: PmiRankInfo;
  state: PmiRankState;
  /** A rank may connect once: a second connection claiming it is refused. */
  attached: boolean;
}

/** A PMI-2 info-getnodeattr with wait=TRUE, held until the key is put. */
export interface Waiter {
  conn: Conn;
  thrid: string | undefined;
}

export interface Group {
  info: PmiGroupInfo;
  /** Pairs visible to gets: everything returned by completed barriers, plus initialKvs. */
  kvs: Map<string, string>;
  /** Puts by this proxy's ranks since the last barrier started. */
  pending: Array<[string, string]>;
  ranks: Map<number, RankRec>;
  /** Connections that entered the current barrier epoch. */
  waiting: Conn[];
  inFlight: boolean;
  nodeAttrs: Map<string, string>;
  nodeWaiters: Map<string, Waiter[]>;
}

/** Writes the wire's barrier reply: `error` undefined for success. Called only while the connection is open. */
export type BarrierReply = (error: string | undefined) => void;

export interface Conn {
  id: number;
  io: PmiConnIo;
  decoder: PmiDecoder;
  rank: RankRec | undefined;
  group: Group | undefined;
  closed: boolean;
  /** A PMI-1 `mcmd=spawn` request being gathered. */
  spawn: SpawnAccumulator | undefined;
  /** Set while the connection waits in a barrier. */
  barrier: BarrierReply | undefined;
}

export function toInt(s: string | undefined): number | undefined {
  if (s === undefined || !/^-?\d{1,10}$/.test(s)) return undefined;
  return Number(s);
}

export function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Keys the engine answers itself, then the group's KVS. An empty mapping counts as absent. */
export function lookupKey(g: Group, key: string): string | undefined {
  if (key === 'PMI_process_mapping') return g.info.processMapping === '' ? undefined : g.info.processMapping;
  if (key === 'PMI_dead_processes') return '';
  return g.kvs.get(key);
}

export interface ServerCoreOptions {
  upstream: PmiUpstream;
  events: PmiServerEvents;
  debug?: (line: string) => void;
}

export class ServerCore {
  readonly upstream: PmiUpstream;
  readonly events: PmiServerEvents;
  readonly debug: ((line: string) => void) | undefined;
  readonly groups = new Map<string, Group>();
  private readonly conns = new Map<number, Conn>();
  /** Resolves a PMI_ID (initack, fullinit) to a rank; set by the transport for PMI_PORT. */
  idResolver: ((pmiId: number) => PmiRankInfo | undefined) | undefined;
  /** The job's KVS as this engine holds it, against the job's limits (set by the first group). */
  private budget: KvsBudget | undefined;
  private limitSaid = false;

  constructor(opts: ServerCoreOptions) {
    this.upstream = opts.upstream;
    this.events = opts.events;
    this.debug = opts.debug;
  }

  addGroup(info: PmiGroupInfo): void {
    if (this.groups.has(info.kvsname)) throw new Error(`PMI group ${info.kvsname} added twice`);
    if (!Number.isInteger(info.size) || info.size < 1) throw new Error(`PMI group ${info.kvsname}: bad size ${info.size}`);
    this.budget ??= new KvsBudget(info.kvsLimits ?? DEFAULT_KVS_LIMITS);
    const kvs = new Map<string, string>();
    for (const [k, v] of info.initialKvs ?? []) this.budget.store(kvs, k, v);
    this.groups.set(info.kvsname, {
      info: { ...info },
      kvs,
      pending: [],
      ranks: new Map(),
      waiting: [],
      inFlight: false,
      nodeAttrs: new Map(),
      nodeWaiters: new Map(),
    });
  }

  attach(connId: number, io: PmiConnIo, rank?: PmiRankInfo): void {
    const conn: Conn = {
      id: connId,
      io,
      decoder: new PmiDecoder(),
      rank: undefined,
      group: undefined,
      closed: false,
      spawn: undefined,
      barrier: undefined,
    };
    if (this.conns.has(connId)) {
      this.fail(conn, `connection id ${connId} is already attached`);
      return;
    }
    this.conns.set(connId, conn);
    if (rank !== undefined) {
      const err = this.bind(conn, rank);
      if (err !== undefined) this.fail(conn, err);
    }
  }

  connection(connId: number): Conn | undefined {
    return this.conns.get(connId);
  }

  state(rank: number, kvsname: string): PmiRankState {
    return this.groups.get(kvsname)?.ranks.get(rank)?.state ?? 'none';
  }

  // ---- connection bookkeeping ----

  /** Tie a connection to its rank: the error text when the rank is unknown or already connected. */
  bind(conn: Conn, info: PmiRankInfo): string | undefined {
    const g = this.groups.get(info.kvsname);
    if (!g) return `unknown PMI group ${info.kvsname}`;
    if (!Number.isInteger(info.rank) || info.rank < 0 || info.rank >= g.info.size) {
      return `rank ${info.rank} is outside group ${info.kvsname} of size ${g.info.size}`;
    }
    let rec = g.ranks.get(info.rank);
    if (rec?.attached) return `rank ${info.rank} of ${info.kvsname} is already connected`;
    if (!rec) {
      rec = { info: { ...info }, state: 'none', attached: true };
      g.ranks.set(info.rank, rec);
    } else {
      rec.attached = true;
      rec.info = { ...info };
    }
    conn.rank = rec;
    conn.group = g;
    return undefined;
  }

  /** Forget a connection: stop serving it and release anything it waits for (barrier entries stay counted). */
  drop(conn: Conn): void {
    conn.closed = true;
    if (this.conns.get(conn.id) === conn) this.conns.delete(conn.id);
    const g = conn.group;
    if (g) {
      for (const [key, list] of g.nodeWaiters) {
        const kept = list.filter((w) => w.conn !== conn);
        if (kept.length === 0) g.nodeWaiters.delete(key);
        else if (kept.length !== list.length) g.nodeWaiters.set(key, kept);
      }
    }
  }

  /** A protocol error: drop the connection, tell the events, hang up. */
  fail(conn: Conn, message: string): void {
    if (conn.closed) return;
    this.debug?.(`pmi[${conn.id}] protocol error: ${message}`);
    this.drop(conn);
    const info = conn.rank?.info;
    this.emit(() => this.events.protocolError(conn.id, message, info));
    try {
      conn.io.close();
    } catch {
      // The transport is already gone; nothing more to release.
    }
  }

  send(conn: Conn, data: string): void {
    if (conn.closed) return;
    this.debug?.(`pmi[${conn.id}] -> ${data.trimEnd()}`);
    try {
      conn.io.send(data);
    } catch (e) {
      this.fail(conn, `send failed: ${errText(e)}`);
    }
  }

  /**
   * Run an event callback. A throwing listener is a bug above us: rethrow it outside data() (like an
   * EventEmitter listener would surface) so the engine's state stays consistent for the other ranks.
   */
  emit(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      queueMicrotask(() => {
        throw e;
      });
    }
  }

  markInitialized(rec: RankRec): void {
    if (rec.state !== 'none') return;
    rec.state = 'initialized';
    const info = rec.info;
    this.emit(() => this.events.initialized(info));
  }

  markFinalized(rec: RankRec): void {
    if (rec.state === 'finalized') return;
    rec.state = 'finalized';
    const info = rec.info;
    this.emit(() => this.events.finalized(info));
  }

  initialized(conn: Conn): boolean {
    return conn.rank !== undefined && conn.rank.state !== 'none';
  }

  /** Settle an upstream call; a synchronous throw counts as a rejection. */
  call<T>(fn: () => Promise<T>, ok: (v: T) => void, bad: (message: string) => void): void {
    let p: Promise<T>;
    try {
      p = fn();
    } catch (e) {
      p = Promise.reject(e);
    }
    p.then(
      (v) => {
        try {
          ok(v);
        } catch (e) {
          bad(errText(e));
        }
      },
      (e: unknown) => bad(errText(e)),
    ).catch((e: unknown) => this.debug?.(`pmi: error while replying: ${errText(e)}`));
  }

  // ---- KVS, abort, spawn, barriers ----

  /**
   * Count a put against the job's KVS limits. Over a limit: the error text for the reply (the put is not
   * stored), and, the first time, one line for the user through limitReached.
   */
  admitPut(conn: Conn, key: string, value: string): string | undefined {
    const over = this.budget?.admit(key, value);
    if (over === undefined) return undefined;
    const info = conn.rank?.info;
    if (!this.limitSaid && info) {
      this.limitSaid = true;
      this.emit(() => this.events.limitReached?.(info, over));
    }
    return `KVS_limit_of_${over.max}_${over.limit}_reached`;
  }

  spawn(req: SpawnRequest, done: (r: SpawnResult) => void): void {
    this.call(
      () => this.upstream.spawn(req),
      done,
      (m) => done({ ok: false, error: m }),
    );
  }

  abort(conn: Conn, code: number, message: string): void {
    const info = conn.rank?.info;
    this.emit(() => this.events.aborted(info, code, message));
  }

  /** The connection (bound to a group) enters its group's barrier; `reply` answers it when the epoch ends. */
  enterBarrier(conn: Conn, reply: BarrierReply): void {
    const g = conn.group as Group;
    if (conn.barrier) return this.fail(conn, 'entered a barrier twice without waiting for the reply');
    conn.barrier = reply;
    g.waiting.push(conn);
    this.maybeStartBarrier(g);
  }

  private maybeStartBarrier(g: Group): void {
    if (g.inFlight || g.waiting.length < g.info.localCount || g.waiting.length === 0) return;
    const batch = g.waiting;
    g.waiting = [];
    const puts = g.pending;
    g.pending = [];
    g.inFlight = true;
    const finish = (error: string | undefined): void => {
      g.inFlight = false;
      for (const conn of batch) {
        const reply = conn.barrier;
        conn.barrier = undefined;
        if (conn.closed || !reply) continue;
        reply(error);
      }
      this.maybeStartBarrier(g);
    };
    this.call(
      () => this.upstream.barrier(g.info.kvsname, puts),
      (pairs) => {
        const budget = this.budget as KvsBudget;
        budget.settle(puts);
        for (const [k, v] of pairs) budget.store(g.kvs, k, v);
        finish(undefined);
      },
      (m) => {
        this.budget?.settle(puts);
        finish(`barrier failed: ${m}`);
      },
    );
  }
}
