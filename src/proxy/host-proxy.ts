// The per-host proxy: starts this host's ranks, serves their PMI connections (one PmiServer per host), relays
// their output and exits upward, forwards signals and stdin. It knows nothing about where its controller is:
// on one host the controller calls it directly; on many hosts a control channel sits in between.
//
// PMI transport: by default every rank gets its socketpair at fd 3 (PMI_FD=3) and nothing listens. With
// pmiTransport 'tcp' or 'unix' the proxy first opens a listening PmiEndpoint (src/pmi/endpoint.ts: loopback TCP
// with a same-uid peer check, or a UNIX socket in a private directory), then starts the ranks with PMI_PORT and
// PMI_ID instead of PMI_FD. Opening is asynchronous, so in those modes the ranks start a moment after start();
// stdin goes through stand-in streams meanwhile, and signals that arrive first are replayed.
import type { Socket } from 'node:net';
import { PassThrough, type Writable } from 'node:stream';
import type { RankOutcome } from '../model/types.js';
import { PmiServer, type PmiGroupInfo, type PmiRankInfo, type PmiUpstream } from '../pmi/server.js';
import type { KvsOverflow } from '../pmi/types.js';
import { PmiEndpoint } from '../pmi/endpoint.js';
import { withPmiPort } from '../run/rank-env.js';
import { findNativeHelper } from '../isolate/native.js';
import { startBatch, BatchRank, BATCH_SIZE } from './rank-batch.js';
import type { ExitIo } from '../isolate/types.js';
import { RankProcess, SETTLE_AFTER_EXIT_MS, type RankHandle, type RankLaunch, type RankProcessEvents } from './rank-process.js';
import { GroupReaper } from './reaper.js';
import { PmixHelper } from '../pmix/helper.js';
import { pmixServer } from '../pmix/server-path.js';

/** Connection ids of PMI_PORT endpoints: PMI_FD connections use the ranks' ids, far below. */
const ENDPOINT_CONN_ID_BASE = 1e9;
const ENDPOINT_CONN_ID_STRIDE = 1e7;
/** Ranks spawned between two announcements to the reaper (see reaper.ts). */
const REAPER_BATCH = 64;

export type PmiState = 'none' | 'initialized' | 'finalized';

export interface HostProxyEvents {
  /** Rank output; return false to ask the proxy to pause until resumeOutput(). */
  output(rank: number, stream: 'stdout' | 'stderr', data: Buffer): boolean;
  outputEnd(rank: number, stream: 'stdout' | 'stderr'): void;
  started(rank: number, pid: number): void;
  exited(rank: number, outcome: RankOutcome): void;
  /** The rank's process is gone and its PMI conversation is complete: pmi tells whether it finalized. */
  settled(rank: number, outcome: RankOutcome, pmi: PmiState): void;
  aborted(rank: number | undefined, code: number, message: string): void;
  pmiError(rank: number | undefined, message: string): void;
  /** A rank's put went over the job's KVS limits (said once per proxy): the job ends. */
  pmiLimit(rank: number | undefined, over: KvsOverflow): void;
  /** One line for the user (a refused PMI_PORT connection). Without it such lines go to pmiError. */
  notice?(line: string): void;
}

export interface HostProxyOptions {
  host: string;
  group: PmiGroupInfo;
  /** How ranks reach the PMI server: an inherited socketpair (PMI_FD, default) or PMI_PORT over TCP / UNIX. */
  pmiTransport?: 'fd' | 'tcp' | 'unix';
  /** rank → appnum */
  appnum(rank: number): number;
  launches: RankLaunch[];
  upstream: PmiUpstream;
  events: HostProxyEvents;
  debug?: (line: string) => void;
  /** 'unix' only: the directory to make the socket's private directory in (default: see pmi/endpoint.ts). */
  pmiSocketBase?: string;
  /** 'unix' only: pmiSocketBase as the ranks name it, if their view differs (a private /tmp seen via /proc/PID/root). */
  pmiRankSocketBase?: string;
  /** 'tcp'/'unix': how long a new connection may take to say which rank it is (default 5 s). */
  pmiHandshakeTimeoutMs?: number;
  /**
   * The native helper that starts PMI_FD ranks without stdin in batches (rank-batch.ts): by default the one
   * `make build` made (isolate/native.ts, off with TSMPIEXEC_NATIVE=0); false starts every rank with Node.
   */
  batchHelper?: string | false;
  /** group.pmix: the PMIx server helper (default: the one make build made, see src/pmix/server-path.ts). */
  pmixServer?: string;
}

export class HostProxy {
  readonly host: string;
  private readonly ranks = new Map<number, RankHandle>();
  private readonly pmi: PmiServer;
  private readonly o: HostProxyOptions;
  private paused = false;
  private reaper: GroupReaper | undefined;
  private endpoint: PmiEndpoint | undefined;
  /** PMI_PORT modes: one more endpoint per spawned group (the first stops listening once its ranks connected). */
  private readonly spawnEndpoints: PmiEndpoint[] = [];
  private opening: Promise<void> | undefined;
  /** PMI identity of every rank this proxy started or will start, by job-wide id (PMI_ID). */
  private readonly identities = new Map<number, PmiRankInfo>();
  /** PMI_PORT modes: stdin of ranks not started yet. */
  private readonly stdinStandIns = new Map<number, PassThrough>();
  private pendingSignals: NodeJS.Signals[] = [];
  private spawned = false;
  private killRequested = false;
  private closed = false;
  /**
   * Ranks whose PMI connection was closed for a protocol error. Such a rank took part in PMI (its peers may wait
   * for it in a barrier), so it settles as at least 'initialized': ending without finalize then ends the job
   * (status 1) instead of leaving the others waiting forever for a rank that exited 0 with a dead connection.
   */
  private readonly pmiBroken = new Set<number>();
  /** group.pmix: this host's PMIx server, and what each of its ranks told it (connected, finalized). */
  private pmixHelper: PmixHelper | undefined;
  private pmixStarting: Promise<void> | undefined;
  private readonly pmixStates = new Map<number, PmiState>();

  constructor(o: HostProxyOptions) {
    this.o = o;
    this.host = o.host;
    const ev = o.events;
    this.pmi = new PmiServer({
      upstream: o.upstream,
      debug: o.debug,
      events: {
        initialized: () => {},
        finalized: () => {},
        aborted: (r, code, message) => ev.aborted(r?.rank, code, message),
        limitReached: (rank, over) => ev.pmiLimit(this.idOf(rank) ?? rank.rank, over),
        refused: (_rank, message) => (ev.notice ? ev.notice(message) : ev.pmiError(undefined, message)),
        protocolError: (connId, message, rank) => {
          const id = rank === undefined ? undefined : this.idOf(rank);
          if (id !== undefined) this.pmiBroken.add(id);
          const from = rank === undefined ? this.endpoints().map((e) => e.describe(connId)).find((d) => d !== undefined) : undefined;
          ev.pmiError(id ?? rank?.rank, from !== undefined ? `connection from ${from}: ${message}` : message);
        },
      },
    });
    this.pmi.addGroup(o.group);
    for (const l of o.launches) this.identities.set(l.rank, this.identityOf(l));
  }

  private identityOf(l: RankLaunch): PmiRankInfo {
    return l.pmi ?? { rank: l.rank, kvsname: this.o.group.kvsname, appnum: this.o.appnum(l.rank) };
  }

  /** The job-wide id of a PMI identity (the inverse of identities). */
  private idOf(info: PmiRankInfo): number | undefined {
    for (const [id, i] of this.identities) if (i.rank === info.rank && i.kvsname === info.kvsname) return id;
    return undefined;
  }

  private endpoints(): PmiEndpoint[] {
    return this.endpoint ? [this.endpoint, ...this.spawnEndpoints] : [...this.spawnEndpoints];
  }

  private get transport(): 'fd' | 'tcp' | 'unix' {
    return this.o.pmiTransport ?? 'fd';
  }

  /** The ranks of `o` that start() gives the native helper (spawnAll's rule): their exits carry their I/O. */
  static batchedRanks(o: HostProxyOptions): number[] {
    const helper = o.batchHelper === false ? undefined : (o.batchHelper ?? findNativeHelper(process.env));
    if (helper === undefined || (o.pmiTransport ?? 'fd') !== 'fd') return [];
    return o.launches.filter((l) => !l.stdin).map((l) => l.rank);
  }

  /** The storage I/O a rank's exit reported (ranks the native helper started), if any. */
  exitIo(rank: number): ExitIo | undefined {
    const h = this.ranks.get(rank);
    return h instanceof BatchRank ? h.exitIo : undefined;
  }

  /** Spawn every rank, in rank order (PMI_PORT modes: once the endpoint listens; PMIx: once its server is up). */
  start(): void {
    this.reaper = new GroupReaper();
    if (this.o.group.pmix !== undefined) this.startPmix();
    else this.startRanks(this.o.launches);
  }

  /**
   * PMIx (docs/pmix.md): first this host's PMIx server, which gives every rank its PMIx variables; then the
   * ranks as usual. Until then stdin goes to stand-ins and signals wait, as in PMI_PORT modes.
   */
  private startPmix(): void {
    const job = this.o.group.pmix;
    if (job === undefined) return;
    for (const l of this.o.launches) if (l.stdin) this.stdinStandIns.set(l.rank, new PassThrough());
    const ev = this.o.events;
    const kvsname = this.o.group.kvsname;
    const found = this.o.pmixServer !== undefined ? { path: this.o.pmixServer } : pmixServer(process.env);
    if (found.path === undefined) {
      this.notStarted(`Open MPI's PMIx route needs the PMIx server helper, and on ${this.host} ${found.why}`);
      return;
    }
    const server = found.path;
    this.pmixStarting = PmixHelper.start(server, job, {
      upstream: this.o.upstream,
      kvsname,
      connected: (r) => {
        if (this.pmixStates.get(r) !== 'finalized') this.pmixStates.set(r, 'initialized');
      },
      finalized: (r) => this.pmixStates.set(r, 'finalized'),
      aborted: (r, code, message) => ev.aborted(r, code, message),
      failed: (message) => ev.pmiError(undefined, message),
      refused: (message) => (ev.notice ? ev.notice(message) : ev.pmiError(undefined, message)),
      ...(this.o.debug ? { debug: this.o.debug } : {}),
    }).then(
      (helper) => {
        this.pmixHelper = helper;
        if (this.closed) return;
        if (this.killRequested) {
          this.notStarted('the job ended before the rank started');
          return;
        }
        const launches = this.o.launches.map((l) => ({ ...l, env: { ...l.env, ...helper.envOf(l.pmi?.rank ?? l.rank) } }));
        this.startRanks(launches);
        if (this.spawned) for (const s of this.pendingSignals.splice(0)) this.signal(s);
      },
      (e: unknown) => this.notStarted(`cannot start the PMIx server on ${this.host}: ${e instanceof Error ? e.message : String(e)}`),
    );
  }

  private startRanks(launches: RankLaunch[]): void {
    const transport = this.transport;
    if (transport === 'fd') {
      this.spawnAll(launches, undefined);
      return;
    }
    for (const l of launches) if (l.stdin && !this.stdinStandIns.has(l.rank)) this.stdinStandIns.set(l.rank, new PassThrough());
    this.pmi.setIdResolver((id): PmiRankInfo | undefined => this.identities.get(id));
    this.opening = this.openEndpoint(launches.length, 0).then(
      (ep) => {
        if (this.closed) {
          void ep.close();
          return;
        }
        this.endpoint = ep;
        this.o.debug?.(`PMI endpoint ${ep.port}`);
        if (this.killRequested) {
          this.notStarted('the job ended before the rank started');
          return;
        }
        this.spawnAll(launches, ep);
        for (const s of this.pendingSignals.splice(0)) this.signal(s);
      },
      (e: unknown) => this.notStarted(`cannot open the PMI endpoint: ${e instanceof Error ? e.message : String(e)}`),
    );
  }

  private openEndpoint(expected: number, serial: number): Promise<PmiEndpoint> {
    const ev = this.o.events;
    return PmiEndpoint.open({
      kind: this.transport as 'tcp' | 'unix',
      engine: this.pmi,
      expected,
      // connection ids of every endpoint of this PmiServer stay apart (PMI_FD connections use the rank ids)
      firstConnId: ENDPOINT_CONN_ID_BASE + serial * ENDPOINT_CONN_ID_STRIDE,
      notice: (line) => (ev.notice ? ev.notice(line) : ev.pmiError(undefined, line)),
      ...(this.o.pmiSocketBase !== undefined ? { socketBase: this.o.pmiSocketBase } : {}),
      ...(this.o.pmiRankSocketBase !== undefined ? { rankSocketBase: this.o.pmiRankSocketBase } : {}),
      ...(this.o.pmiHandshakeTimeoutMs !== undefined ? { handshakeTimeoutMs: this.o.pmiHandshakeTimeoutMs } : {}),
    });
  }

  /**
   * Start the ranks of a group spawned by MPI_Comm_spawn (their PMI group is new to this proxy: its KVS holds the
   * parent's preputs from the start). Resolves once they were started, with a reason if they could not be.
   * PMI_PORT modes open one more endpoint for them: the first one stopped listening once its own ranks were in.
   */
  async addRanks(group: PmiGroupInfo, launches: RankLaunch[]): Promise<string | undefined> {
    if (this.killRequested || this.closed) return 'the job is ending';
    this.pmi.addGroup(group);
    for (const l of launches) this.identities.set(l.rank, this.identityOf(l));
    let ep: PmiEndpoint | undefined;
    if (this.transport !== 'fd') {
      if (this.opening) await this.opening;
      try {
        ep = await this.openEndpoint(launches.length, this.spawnEndpoints.length + 1);
      } catch (e) {
        return `cannot open a PMI endpoint for the spawned ranks: ${e instanceof Error ? e.message : String(e)}`;
      }
      if (this.closed) {
        // close() ran while this one was opening: it is ours to remove
        void ep.close();
        return 'the job is ending';
      }
      this.spawnEndpoints.push(ep);
    }
    if (this.killRequested) return 'the job is ending';
    this.spawnAll(launches, ep);
    return undefined;
  }

  /** Every rank of this proxy ends before it began (the endpoint could not be opened, or the job was killed). */
  private notStarted(reason: string): void {
    const ev = this.o.events;
    this.spawned = true;
    for (const s of this.stdinStandIns.values()) s.destroy();
    for (const l of this.o.launches) {
      const outcome: RankOutcome = { kind: 'not-started', reason };
      ev.exited(l.rank, outcome);
      ev.settled(l.rank, outcome, 'none');
    }
  }

  private spawnAll(launches: RankLaunch[], ep: PmiEndpoint | undefined): void {
    this.spawned = true;
    const reaper = this.reaper as GroupReaper;
    const helper = this.o.batchHelper === false ? undefined : (this.o.batchHelper ?? findNativeHelper(process.env));
    let batch: RankLaunch[] = [];
    const flushBatch = (): void => {
      if (batch.length > 0) this.spawnBatch(helper as string, batch);
      batch = [];
    };
    for (const launch of launches) {
      // PMI_FD ranks without stdin go in batches through the native helper; the others one by one
      if (helper !== undefined && !ep && !launch.stdin) {
        batch.push(launch);
        if (batch.length === BATCH_SIZE) flushBatch();
        continue;
      }
      flushBatch();
      this.spawnOne(launch, ep);
      if (this.ranks.size % REAPER_BATCH === 0) reaper.flush();
    }
    flushBatch();
    reaper.flush();
  }

  /** The events of one rank's process, for RankProcess and BatchRank alike (both report exited before settled). */
  private rankEvents(launch: RankLaunch, ep: PmiEndpoint | undefined): RankProcessEvents {
    const ev = this.o.events;
    const rank = launch.rank;
    const who = this.identityOf(launch);
    let outcome: RankOutcome = { kind: 'exited', code: 0 };
    const report = (): void => {
      this.pmi.detach(rank);
      const pmixState = who.kvsname === this.o.group.kvsname ? this.pmixStates.get(who.rank) : undefined;
      const state = pmixState ?? this.pmi.state(who.rank, who.kvsname);
      ev.settled(rank, outcome, state === 'none' && this.pmiBroken.has(rank) ? 'initialized' : state);
    };
    return {
      stdout: (d) => this.relay(rank, 'stdout', d),
      stderr: (d) => this.relay(rank, 'stderr', d),
      streamEnd: (s) => ev.outputEnd(rank, s),
      exited: (o) => {
        outcome = o;
        ev.exited(rank, o);
      },
      settled: () => {
        // PMI_PORT: the rank's last words (finalize, abort) may still be in its own socket; wait for that
        // socket to close as PMI_FD mode waits for fd 3, and no longer.
        const closed = ep?.closedConnectionOf(who.rank, who.kvsname);
        if (!closed) return report();
        let t: NodeJS.Timeout | undefined;
        void Promise.race([closed, new Promise<void>((r) => (t = setTimeout(r, SETTLE_AFTER_EXIT_MS)))]).then(() => {
          clearTimeout(t);
          report();
        });
      },
    };
  }

  private spawnOne(launch: RankLaunch, ep: PmiEndpoint | undefined): void {
    const rank = launch.rank;
    const l = ep ? { ...launch, env: withPmiPort(launch.env, ep.port, rank) } : launch;
    const rp = new RankProcess(l, this.rankEvents(launch, ep));
    this.ranks.set(rank, rp);
    const sock = rp.start();
    if (rp.pid !== undefined) {
      (this.reaper as GroupReaper).add(rp.pid);
      this.o.events.started(rank, rp.pid);
    }
    if (sock && !ep) this.attachPmi(rank, this.identityOf(launch), sock);
    else sock?.destroy(); // PMI_PORT mode: the rank does not use fd 3
    this.connectStdin(rank, rp);
  }

  private spawnBatch(helper: string, launches: RankLaunch[]): void {
    const reaper = this.reaper as GroupReaper;
    const events = launches.map((l) => this.rankEvents(l, undefined));
    const started = startBatch(
      helper,
      launches,
      events,
      (i, pid) => {
        reaper.add(pid);
        this.o.events.started((launches[i] as RankLaunch).rank, pid);
      },
      () => reaper.flush(),
    );
    if (started === undefined) {
      // the helper could not be started here: Node starts them, as without it
      for (const l of launches) this.spawnOne(l, undefined);
      return;
    }
    started.forEach((h, i) => {
      const launch = launches[i] as RankLaunch;
      this.ranks.set(launch.rank, h);
      if (h.pmi) this.attachPmi(launch.rank, this.identityOf(launch), h.pmi);
    });
  }

  private connectStdin(rank: number, rp: RankHandle): void {
    const standIn = this.stdinStandIns.get(rank);
    if (!standIn) return;
    const target = rp.stdin;
    if (!target || target.destroyed) {
      standIn.destroy();
      return;
    }
    standIn.pipe(target);
    target.once('close', () => standIn.destroy());
  }

  private attachPmi(id: number, who: PmiRankInfo, sock: Socket): void {
    this.pmi.attach(
      id,
      {
        send: (data) => {
          if (!sock.destroyed) sock.write(data);
        },
        close: () => sock.destroy(),
      },
      who,
    );
    sock.on('data', (d: Buffer) => this.pmi.data(id, d));
    sock.on('error', () => {
      /* the rank vanished; 'close' follows */
    });
    sock.once('close', () => this.pmi.detach(id));
  }

  private relay(rank: number, stream: 'stdout' | 'stderr', data: Buffer): void {
    if (!this.o.events.output(rank, stream, data) && !this.paused) {
      this.paused = true;
      for (const r of this.ranks.values()) r.pauseOutput();
    }
  }

  resumeOutput(): void {
    if (!this.paused) return;
    this.paused = false;
    for (const r of this.ranks.values()) r.resumeOutput();
  }

  /** Signal every rank that is still running (its process group). */
  signal(sig: NodeJS.Signals): void {
    if (!this.spawned) {
      this.pendingSignals.push(sig);
      return;
    }
    for (const r of this.ranks.values()) if (r.running) r.signal(sig);
  }

  /** Kill every rank's process group, including leftovers of ranks that already exited. */
  killAll(): void {
    this.killRequested = true;
    for (const r of this.ranks.values()) r.signal('SIGKILL');
  }

  stdinOf(rank: number): Writable | undefined {
    return this.stdinStandIns.get(rank) ?? this.ranks.get(rank)?.stdin;
  }

  destroyStreams(): void {
    for (const r of this.ranks.values()) r.destroyStreams();
    for (const s of this.stdinStandIns.values()) s.destroy();
  }

  /** The job is over here: every group was killed; dismiss the reaper, close and remove the PMI endpoint. */
  async close(): Promise<void> {
    this.closed = true;
    this.reaper?.close();
    if (this.pmixStarting) await this.pmixStarting;
    if (this.opening) await this.opening;
    await this.pmixHelper?.close();
    await Promise.all(this.endpoints().map((e) => e.close()));
  }

  /** The PMI_PORT value ranks get (undefined with PMI_FD, or before the endpoint listens). */
  get pmiPort(): string | undefined {
    return this.endpoint?.port;
  }

  pidOf(rank: number): number | undefined {
    return this.ranks.get(rank)?.pid;
  }
}
