// The per-proxy PMI engine: a pure state machine that serves the PMI-1 and PMI-2 connections of this proxy's
// ranks (pmi-wire.md §3–§7). No sockets and no timers: the transport feeds bytes in with data(), replies go out
// through each connection's send(), and barriers, the name service and spawn go through PmiUpstream, so the
// controller may sit in this process or across the network (hydra's proxy/server split, pmi-wire.md §6).
//
// KVS visibility follows hydra: a put is cached and becomes visible (to everyone, the putter included) only
// after the next barrier/fence, when the upstream returns every pair put in that epoch. PMI-2 `kvs-fence` is a
// true barrier, so a kvs-get miss answers found=FALSE at once. Node attributes (info-putnodeattr) live in a
// per-group table on this proxy, visible at once; `wait=TRUE` holds the reply until the key is put.
import { PmiDecoder, type PmiFrame } from './decoder.js';
import { SpawnAccumulator, formatV1, isV1PutValueWhole, isV1Safe, parseV1Line, type V1Message } from './wire1.js';
import { formatV2, parseV2Body, type V2Message } from './wire2.js';
import { decodeSpawnV1, decodeSpawnV2, type SpawnRequest } from './spawn.js';
import { KvsBudget } from './kvs-budget.js';
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

export type {
  PmiConnIo,
  PmiGroupInfo,
  PmiRankInfo,
  PmiRankState,
  PmiServerEvents,
  PmiUpstream,
  SpawnCommand,
  SpawnRequest,
  SpawnResult,
} from './types.js';

/** What get_maxes answers (hydra's values; pmi-wire.md §1.2 explains why they must stay). */
export const PMI_MAXES = { kvsname_max: 256, keylen_max: 64, vallen_max: 1024 } as const;

const BARRIER_OUT = formatV1('barrier_out', [['rc', 0]]);
const FENCE_OK = formatV2('kvs-fence-response', [['rc', 0]]);

interface RankRec {
  info: PmiRankInfo;
  state: PmiRankState;
  /** A rank may connect once (architecture.md: "Each PMI id may connect once"). */
  attached: boolean;
}

interface Waiter {
  conn: Conn;
  thrid: string | undefined;
}

interface Group {
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

type BarrierEntry = { version: 1 } | { version: 2; thrid: string | undefined };

interface Conn {
  id: number;
  io: PmiConnIo;
  decoder: PmiDecoder;
  rank: RankRec | undefined;
  group: Group | undefined;
  closed: boolean;
  spawn: SpawnAccumulator | undefined;
  barrier: BarrierEntry | undefined;
}

function toInt(s: string | undefined): number | undefined {
  if (s === undefined || !/^-?\d{1,10}$/.test(s)) return undefined;
  return Number(s);
}

/** PMI-1 `msg=` values cannot hold spaces; hydra writes `key_x_not_found` style. */
function v1Msg(text: string): string {
  return text.replace(/[\s=]+/g, '_');
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export class PmiServer {
  private readonly upstream: PmiUpstream;
  private readonly events: PmiServerEvents;
  private readonly debug: ((line: string) => void) | undefined;
  private readonly groups = new Map<string, Group>();
  private readonly conns = new Map<number, Conn>();
  private idResolver: ((pmiId: number) => PmiRankInfo | undefined) | undefined;
  /** The job's KVS as this engine holds it, against the job's limits (set by the first group). */
  private budget: KvsBudget | undefined;
  private limitSaid = false;

  constructor(opts: { upstream: PmiUpstream; events: PmiServerEvents; debug?: (line: string) => void }) {
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

  /** Identity known (PMI_FD: we spawned it on this socketpair) or learned from PMI_ID via initack (PMI_PORT). */
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

  /** resolve a PMI_ID from initack to a rank; set by the transport for PMI_PORT: */
  setIdResolver(fn: (pmiId: number) => PmiRankInfo | undefined): void {
    this.idResolver = fn;
  }

  data(connId: number, chunk: Buffer): void {
    const conn = this.conns.get(connId);
    if (!conn || conn.closed) return;
    const { frames, error } = conn.decoder.push(chunk);
    for (const frame of frames) {
      if (conn.closed) return;
      try {
        this.handleFrame(conn, frame);
      } catch (e) {
        this.fail(conn, `internal error handling PMI message: ${errText(e)}`);
      }
    }
    if (error !== undefined) this.fail(conn, error);
  }

  /** EOF / error on the connection. */
  detach(connId: number): void {
    const conn = this.conns.get(connId);
    if (!conn) return;
    this.drop(conn);
  }

  /**
   * Whether a live connection knows which rank it is: from attach (PMI_FD) or from its initack / fullinit
   * (PMI_PORT). A listening transport uses this to end its handshake deadline.
   */
  identity(connId: number): PmiRankInfo | undefined {
    const conn = this.conns.get(connId);
    return conn !== undefined && !conn.closed ? conn.rank?.info : undefined;
  }

  /** Whether the rank completed PMI finalize (used by the exit policy) and whether it ever did init. */
  state(rank: number, kvsname: string): PmiRankState {
    return this.groups.get(kvsname)?.ranks.get(rank)?.state ?? 'none';
  }

  // ---- connection bookkeeping ----

  private bind(conn: Conn, info: PmiRankInfo): string | undefined {
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
  private drop(conn: Conn): void {
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

  private fail(conn: Conn, message: string): void {
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

  private send(conn: Conn, data: string): void {
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
  private emit(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      queueMicrotask(() => {
        throw e;
      });
    }
  }

  private markInitialized(rec: RankRec): void {
    if (rec.state !== 'none') return;
    rec.state = 'initialized';
    const info = rec.info;
    this.emit(() => this.events.initialized(info));
  }

  private markFinalized(rec: RankRec): void {
    if (rec.state === 'finalized') return;
    rec.state = 'finalized';
    const info = rec.info;
    this.emit(() => this.events.finalized(info));
  }

  private initialized(conn: Conn): boolean {
    return conn.rank !== undefined && conn.rank.state !== 'none';
  }

  /** Settle an upstream call; a synchronous throw counts as a rejection. */
  private call<T>(fn: () => Promise<T>, ok: (v: T) => void, bad: (message: string) => void): void {
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

  // ---- dispatch ----

  private handleFrame(conn: Conn, frame: PmiFrame): void {
    if (frame.kind === 'v2') {
      this.debug?.(`pmi[${conn.id}] <- ${frame.body}`);
      if (conn.spawn?.active) return this.fail(conn, 'PMI-2 message inside a PMI-1 spawn request');
      return this.handleV2(conn, frame.body);
    }
    this.debug?.(`pmi[${conn.id}] <- ${frame.line}`);
    if (frame.mcmd) return this.handleSpawnLine(conn, frame.line);
    if (conn.spawn?.active) return this.fail(conn, 'PMI-1 command inside a spawn request');
    const msg = parseV1Line(frame.line);
    if (!msg) return this.fail(conn, `malformed PMI-1 line ${JSON.stringify(frame.line.slice(0, 80))}`);
    if (msg.multi) return this.fail(conn, `unknown multi-line command ${msg.cmd}`);
    if (msg.cmd === 'put' && !isV1PutValueWhole(frame.line)) return this.refusePut(conn, msg);
    this.handleV1(conn, msg);
  }

  /**
   * Count a put against the job's KVS limits. Over a limit: the error text for the reply (the put is not
   * stored), and, the first time, one line for the user through limitReached.
   */
  private admitPut(conn: Conn, key: string, value: string): string | undefined {
    const over = this.budget?.admit(key, value);
    if (over === undefined) return undefined;
    const info = conn.rank?.info;
    if (!this.limitSaid && info) {
      this.limitSaid = true;
      this.emit(() => this.events.limitReached?.(info, over));
    }
    return `KVS_limit_of_${over.max}_${over.limit}_reached`;
  }

  /** Never store part of a value: answer rc=1 and tell the user which rank sent it. */
  private refusePut(conn: Conn, msg: V1Message): void {
    const key = msg.fields.get('key') ?? '';
    const info = conn.rank?.info;
    if (info) {
      this.events.refused?.(
        info,
        `rank ${info.rank}: PMI-1 put of key ${JSON.stringify(key)} refused: its value holds a space, which the PMI-1 wire cannot carry (hint: the program must encode such values before putting them)`,
      );
    }
    this.err1(conn, 'put_result', `value_of_${key}_holds_a_space`, 1);
  }

  // ---- PMI-1 ----

  private reply1(conn: Conn, cmd: string, pairs: ReadonlyArray<readonly [string, string | number]>): void {
    this.send(conn, formatV1(cmd, pairs));
  }

  private err1(conn: Conn, cmd: string, message: string, rc = -1): void {
    this.reply1(conn, cmd, [
      ['rc', rc],
      ['msg', v1Msg(message)],
    ]);
  }

  private handleV1(conn: Conn, msg: V1Message): void {
    const f = msg.fields;
    switch (msg.cmd) {
      case 'initack':
        return this.v1Initack(conn, f);
      case 'init':
        return this.v1Init(conn, f);
      case 'abort':
        return this.doAbort(conn, toInt(f.get('exitcode')) ?? -1, f.get('message') ?? '');
    }
    const replyName = V1_REPLY[msg.cmd];
    if (replyName === undefined) return this.fail(conn, `unknown PMI-1 command ${msg.cmd}`);
    const rec = conn.rank;
    const g = conn.group;
    if (!rec || !g) return this.fail(conn, `PMI-1 ${msg.cmd} from a connection with no rank identity`);
    if (!this.initialized(conn)) return this.err1(conn, replyName, 'not initialized');
    switch (msg.cmd) {
      case 'get_maxes':
        return this.reply1(conn, 'maxes', [
          ['rc', 0],
          ['kvsname_max', PMI_MAXES.kvsname_max],
          ['keylen_max', PMI_MAXES.keylen_max],
          ['vallen_max', PMI_MAXES.vallen_max],
        ]);
      case 'get_appnum':
        return this.reply1(conn, 'appnum', [
          ['rc', 0],
          ['appnum', rec.info.appnum],
        ]);
      case 'get_my_kvsname':
        return this.reply1(conn, 'my_kvsname', [
          ['rc', 0],
          ['kvsname', g.info.kvsname],
        ]);
      case 'get_universe_size':
        return this.reply1(conn, 'universe_size', [
          ['rc', 0],
          ['size', g.info.universeSize],
        ]);
      case 'put': {
        if (f.get('kvsname') !== g.info.kvsname) return this.err1(conn, 'put_result', `wrong kvsname ${f.get('kvsname') ?? ''}`);
        const key = f.get('key');
        if (!key) return this.err1(conn, 'put_result', 'missing key');
        const value = f.get('value') ?? '';
        const over = this.admitPut(conn, key, value);
        if (over !== undefined) return this.err1(conn, 'put_result', over);
        g.pending.push([key, value]);
        return this.reply1(conn, 'put_result', [['rc', 0]]);
      }
      case 'get': {
        const target = this.groups.get(f.get('kvsname') ?? '');
        if (!target) return this.err1(conn, 'get_result', `unknown kvsname ${f.get('kvsname') ?? ''}`);
        const key = f.get('key') ?? '';
        const value = lookupKey(target, key);
        if (value === undefined) return this.err1(conn, 'get_result', `key_${key}_not_found`);
        if (!isV1Safe(value)) return this.err1(conn, 'get_result', `value_of_${key}_not_representable_in_PMI-1`);
        return this.reply1(conn, 'get_result', [
          ['rc', 0],
          ['value', value],
        ]);
      }
      case 'barrier_in':
        return this.enterBarrier(conn, { version: 1 });
      case 'finalize':
        this.markFinalized(rec);
        return this.reply1(conn, 'finalize_ack', [['rc', 0]]);
      case 'publish_name': {
        const service = f.get('service');
        if (!service) return this.err1(conn, 'publish_result', 'missing service', 1);
        return this.call(
          () => this.upstream.publish(service, f.get('port') ?? ''),
          (ok) => (ok ? this.reply1(conn, 'publish_result', [['rc', 0]]) : this.err1(conn, 'publish_result', 'key_already_present', 1)),
          (m) => this.err1(conn, 'publish_result', m, 1),
        );
      }
      case 'unpublish_name': {
        const service = f.get('service');
        if (!service) return this.err1(conn, 'unpublish_result', 'missing service', 1);
        return this.call(
          () => this.upstream.unpublish(service),
          (ok) => (ok ? this.reply1(conn, 'unpublish_result', [['rc', 0]]) : this.err1(conn, 'unpublish_result', 'service_not_found', 1)),
          (m) => this.err1(conn, 'unpublish_result', m, 1),
        );
      }
      case 'lookup_name': {
        const service = f.get('service');
        if (!service) return this.err1(conn, 'lookup_result', 'missing service', 1);
        return this.call(
          () => this.upstream.lookup(service),
          (port) => {
            if (port === undefined) return this.err1(conn, 'lookup_result', 'service_not_found', 1);
            if (!isV1Safe(port)) return this.err1(conn, 'lookup_result', 'port_not_representable_in_PMI-1', 1);
            this.reply1(conn, 'lookup_result', [
              ['rc', 0],
              ['port', port],
            ]);
          },
          (m) => this.err1(conn, 'lookup_result', m, 1),
        );
      }
    }
    return this.fail(conn, `unhandled PMI-1 command ${msg.cmd}`);
  }

  private v1Initack(conn: Conn, f: Map<string, string>): void {
    const id = toInt(f.get('pmiid'));
    if (id === undefined) return this.fail(conn, `initack with bad pmiid ${JSON.stringify(f.get('pmiid') ?? '')}`);
    if (!conn.rank) {
      if (!this.idResolver) return this.fail(conn, 'initack, but this server has no PMI id resolver');
      const info = this.idResolver(id);
      if (!info) return this.fail(conn, `initack with unknown pmiid ${id}`);
      const err = this.bind(conn, info);
      if (err !== undefined) return this.fail(conn, err);
    }
    const rec = conn.rank as RankRec;
    const g = conn.group as Group;
    // Order matters: the 4.0.2 client reads these lines one by one (pmi-wire.md §3.2). Main's client wants rc=0
    // on the first line; 4.0.2 ignores the extra fields.
    const first: Array<[string, string | number]> = [
      ['rc', 0],
      ['rank', rec.info.rank],
      ['size', g.info.size],
      ['appnum', rec.info.appnum],
    ];
    if (g.info.spawned && g.info.parentKvsname && isV1Safe(g.info.parentKvsname)) {
      first.push(['spawner-jobid', g.info.parentKvsname]);
    }
    first.push(['debug', 0]);
    this.send(
      conn,
      formatV1('initack', first) +
        formatV1('set', [['size', g.info.size]]) +
        formatV1('set', [['rank', rec.info.rank]]) +
        formatV1('set', [['debug', 0]]),
    );
  }

  private v1Init(conn: Conn, f: Map<string, string>): void {
    const rec = conn.rank;
    const version = toInt(f.get('pmi_version'));
    if (version === 2) {
      // A PMI-2 client's first message is this v1 line; fullinit follows and completes init. Over PMI_PORT the
      // connection learns its rank only from that fullinit (PMI-2 has no initack step, pmi-wire.md §3.3).
      return this.reply1(conn, 'response_to_init', [
        ['rc', 0],
        ['pmi_version', 2],
        ['pmi_subversion', 0],
      ]);
    }
    if (!rec) return this.fail(conn, 'PMI-1 init from a connection with no rank identity (no PMI_FD attach, no initack)');
    if (version !== 1) {
      return this.reply1(conn, 'response_to_init', [
        ['rc', -1],
        ['pmi_version', 1],
        ['pmi_subversion', 1],
      ]);
    }
    // Subversion 1, never 1.2: a main client seeing 1.2 switches to group barriers (pmi-wire.md §3.1).
    this.reply1(conn, 'response_to_init', [
      ['rc', 0],
      ['pmi_version', 1],
      ['pmi_subversion', 1],
    ]);
    this.markInitialized(rec);
  }

  private handleSpawnLine(conn: Conn, line: string): void {
    conn.spawn ??= new SpawnAccumulator();
    const r = conn.spawn.push(line);
    if (r.kind === 'more') return;
    if (r.kind === 'error') return this.fail(conn, `bad spawn request: ${r.message}`);
    const rec = conn.rank;
    if (!rec || !conn.group) return this.fail(conn, 'spawn from a connection with no rank identity');
    if (!this.initialized(conn)) return this.err1(conn, 'spawn_result', 'not initialized');
    const d = decodeSpawnV1(r.segments);
    if (!d.ok) return this.err1(conn, 'spawn_result', d.error);
    this.doSpawn(
      { parentKvsname: rec.info.kvsname, parentRank: rec.info.rank, commands: d.commands, preput: d.preput, protocol: 1 },
      (res) =>
        res.ok
          ? this.reply1(conn, 'spawn_result', [['rc', 0]])
          : this.err1(conn, 'spawn_result', res.error),
    );
  }

  // ---- shared by both versions ----

  private doSpawn(req: SpawnRequest, done: (r: SpawnResult) => void): void {
    this.call(
      () => this.upstream.spawn(req),
      done,
      (m) => done({ ok: false, error: m }),
    );
  }

  private doAbort(conn: Conn, code: number, message: string): void {
    const info = conn.rank?.info;
    this.emit(() => this.events.aborted(info, code, message));
  }

  private enterBarrier(conn: Conn, entry: BarrierEntry): void {
    const g = conn.group as Group;
    if (conn.barrier) return this.fail(conn, 'entered a barrier twice without waiting for the reply');
    conn.barrier = entry;
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
        const entry = conn.barrier;
        conn.barrier = undefined;
        if (conn.closed || !entry) continue;
        if (entry.version === 1) {
          if (error === undefined) this.send(conn, BARRIER_OUT);
          else this.err1(conn, 'barrier_out', error);
        } else {
          const thrid: Array<[string, string]> = entry.thrid !== undefined ? [['thrid', entry.thrid]] : [];
          if (error === undefined && thrid.length === 0) this.send(conn, FENCE_OK);
          else if (error === undefined) this.send(conn, formatV2('kvs-fence-response', [...thrid, ['rc', 0]]));
          else this.send(conn, formatV2('kvs-fence-response', [...thrid, ['rc', 1], ['errmsg', error]]));
        }
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

  // ---- PMI-2 ----

  private handleV2(conn: Conn, body: string): void {
    const msg = parseV2Body(body);
    if (!msg) return this.fail(conn, `malformed PMI-2 message ${JSON.stringify(body.slice(0, 80))}`);
    const thrid = msg.fields.get('thrid');
    const respName = `${msg.cmd}-response`;
    const reply = (pairs: Array<[string, string | number]>, name = respName): void =>
      this.send(conn, formatV2(name, thrid !== undefined ? [['thrid', thrid], ...pairs] : pairs));
    const fail2 = (errmsg: string): void => reply([['rc', 1], ['errmsg', errmsg]]);
    const f = msg.fields;

    if (msg.cmd === 'fullinit') return this.v2Fullinit(conn, msg, reply);
    if (msg.cmd === 'abort') return this.doAbort(conn, abortCode(msg), f.get('message') ?? f.get('msg') ?? '');
    if (!V2_COMMANDS.has(msg.cmd)) return this.fail(conn, `unknown PMI-2 command ${msg.cmd}`);
    const rec = conn.rank;
    const g = conn.group;
    if (!rec || !g) return this.fail(conn, `PMI-2 ${msg.cmd} from a connection with no rank identity`);
    if (!this.initialized(conn)) return fail2('not initialized');

    switch (msg.cmd) {
      case 'job-getid':
        return reply([['jobid', g.info.kvsname], ['rc', 0]]);
      case 'kvs-put': {
        const key = f.get('key');
        if (!key) return fail2('missing key');
        const value = f.get('value') ?? '';
        const over = this.admitPut(conn, key, value);
        if (over !== undefined) return fail2(over);
        g.pending.push([key, value]);
        return reply([['rc', 0]]);
      }
      case 'kvs-fence':
        return this.enterBarrier(conn, { version: 2, thrid });
      case 'kvs-get': {
        const jobid = f.get('jobid');
        const target = jobid === undefined || jobid === '' ? g : this.groups.get(jobid);
        const value = target ? lookupKey(target, f.get('key') ?? '') : undefined;
        return reply(value === undefined ? [['found', 'FALSE'], ['rc', 0]] : [['found', 'TRUE'], ['value', value], ['rc', 0]]);
      }
      case 'info-getjobattr': {
        const key = f.get('key') ?? '';
        const value = key === 'universeSize' ? String(g.info.universeSize) : lookupKey(g, key);
        return reply(value === undefined ? [['found', 'FALSE'], ['rc', 0]] : [['found', 'TRUE'], ['value', value], ['rc', 0]]);
      }
      case 'info-putnodeattr': {
        const key = f.get('key');
        if (!key) return fail2('missing key');
        const value = f.get('value') ?? '';
        g.nodeAttrs.set(key, value);
        reply([['rc', 0]]);
        const waiters = g.nodeWaiters.get(key);
        if (waiters) {
          g.nodeWaiters.delete(key);
          for (const w of waiters) {
            const t: Array<[string, string]> = w.thrid !== undefined ? [['thrid', w.thrid]] : [];
            this.send(w.conn, formatV2('info-getnodeattr-response', [...t, ['found', 'TRUE'], ['value', value], ['rc', 0]]));
          }
        }
        return;
      }
      case 'info-getnodeattr': {
        const key = f.get('key') ?? '';
        const value = g.nodeAttrs.get(key);
        if (value !== undefined) return reply([['found', 'TRUE'], ['value', value], ['rc', 0]]);
        if (f.get('wait') === 'TRUE') {
          const list = g.nodeWaiters.get(key) ?? [];
          list.push({ conn, thrid });
          g.nodeWaiters.set(key, list);
          return;
        }
        return reply([['found', 'FALSE'], ['rc', 0]]);
      }
      case 'name-publish': {
        const name = f.get('name');
        if (!name) return fail2('missing name');
        return this.call(
          () => this.upstream.publish(name, f.get('port') ?? ''),
          (ok) => (ok ? reply([['rc', 0]]) : fail2(`service ${name} is already published`)),
          fail2,
        );
      }
      case 'name-unpublish': {
        const name = f.get('name');
        if (!name) return fail2('missing name');
        return this.call(
          () => this.upstream.unpublish(name),
          (ok) => (ok ? reply([['rc', 0]]) : fail2(`service ${name} is not published`)),
          fail2,
        );
      }
      case 'name-lookup': {
        const name = f.get('name');
        if (!name) return fail2('missing name');
        return this.call(
          () => this.upstream.lookup(name),
          // MPICH's PMI-2 client reads the port from `port`, Slurm's libpmi2 from `value` (Hydra sends only
          // `port`, so libpmi2's lookup fails under Hydra): send both.
          (port) => reply(port === undefined ? [['found', 'FALSE'], ['rc', 1]] : [['port', port], ['value', port], ['found', 'TRUE'], ['rc', 0]]),
          fail2,
        );
      }
      case 'spawn': {
        const d = decodeSpawnV2(msg.pairs);
        if (!d.ok) return reply([['rc', 1], ['errmsg', d.error], ['nerrs', 0]]);
        return this.doSpawn(
          { parentKvsname: rec.info.kvsname, parentRank: rec.info.rank, commands: d.commands, preput: d.preput, protocol: 2 },
          (res) =>
            res.ok
              ? reply([['rc', 0], ['jobid', res.kvsname], ['nerrs', 0]])
              : reply([['rc', 1], ['errmsg', res.error], ['nerrs', 0]]),
        );
      }
      case 'finalize':
        this.markFinalized(rec);
        return reply([['rc', 0]]);
      case 'job-connect':
      case 'job-disconnect':
        return fail2(`${msg.cmd} is not supported`);
    }
    return this.fail(conn, `unhandled PMI-2 command ${msg.cmd}`);
  }

  private v2Fullinit(conn: Conn, msg: V2Message, reply: (pairs: Array<[string, string | number]>) => void): void {
    if (!conn.rank) {
      // MPICH sends pmirank= (PMI_ID, else PMI_RANK); Slurm's libpmi2 sends srcid= when PMI_ID is set, else pmirank=.
      const idText = msg.fields.get('pmirank') ?? msg.fields.get('srcid');
      const id = toInt(idText);
      const info = id !== undefined && id >= 0 && this.idResolver ? this.idResolver(id) : undefined;
      if (!info) {
        reply([['rc', 1], ['errmsg', 'cannot tell which rank this connection is']]);
        return this.fail(conn, `fullinit with unknown PMI id ${JSON.stringify(idText ?? '')}`);
      }
      const err = this.bind(conn, info);
      if (err !== undefined) return this.fail(conn, err);
    }
    const rec = conn.rank as RankRec;
    const g = conn.group as Group;
    // Every field 4.0.2 requires, booleans as TRUE/FALSE (pmi-wire.md §3.3).
    const pairs: Array<[string, string | number]> = [
      ['pmi-version', 2],
      ['pmi-subversion', 0],
      ['rank', rec.info.rank],
      ['size', g.info.size],
      ['appnum', rec.info.appnum],
    ];
    if (g.info.spawned) pairs.push(['spawner-jobid', g.info.parentKvsname ?? '']);
    pairs.push(['debugged', 'FALSE'], ['pmiverbose', 'FALSE'], ['rc', 0]);
    reply(pairs);
    this.markInitialized(rec);
  }
}

/** Reply command names for PMI-1 requests that need an initialized rank. */
const V1_REPLY: Record<string, string | undefined> = Object.assign(Object.create(null) as Record<string, string | undefined>, {
  get_maxes: 'maxes',
  get_appnum: 'appnum',
  get_my_kvsname: 'my_kvsname',
  get_universe_size: 'universe_size',
  put: 'put_result',
  get: 'get_result',
  barrier_in: 'barrier_out',
  finalize: 'finalize_ack',
  publish_name: 'publish_result',
  unpublish_name: 'unpublish_result',
  lookup_name: 'lookup_result',
});

const V2_COMMANDS = new Set([
  'job-getid',
  'kvs-put',
  'kvs-fence',
  'kvs-get',
  'info-getjobattr',
  'info-putnodeattr',
  'info-getnodeattr',
  'name-publish',
  'name-unpublish',
  'name-lookup',
  'spawn',
  'finalize',
  'job-connect',
  'job-disconnect',
]);

/** Keys the engine answers itself, then the group's KVS. An empty mapping counts as absent. */
function lookupKey(g: Group, key: string): string | undefined {
  if (key === 'PMI_process_mapping') return g.info.processMapping === '' ? undefined : g.info.processMapping;
  if (key === 'PMI_dead_processes') return '';
  return g.kvs.get(key);
}

/**
 * PMI-2 abort: main sends `exitcode=`; 4.0.2 sends only `isworld=;msg=` and exits -1 itself, so take the code
 * from MPICH's "MPI_Abort(comm, N)" text when present, else -1.
 */
function abortCode(msg: V2Message): number {
  const code = toInt(msg.fields.get('exitcode'));
  if (code !== undefined) return code;
  const text = msg.fields.get('message') ?? msg.fields.get('msg') ?? '';
  const m = /MPI_Abort\([^,()]*,\s*(-?\d{1,10})\)/.exec(text);
  return m ? Number(m[1]) : -1;
}
