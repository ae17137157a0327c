// The controller's job state machine: launching → running → terminating → draining → done.
// It owns the exit policy (first cause wins; a failed rank or MPI_Abort ends the others; signals are
// forwarded, TERM escalates to KILL after the grace period, a second Ctrl-C kills at once), the merged
// output and stdin. Proxies are in-process objects here; the multi-host launcher gives it remote ones with
// the same events.
import { readdirSync } from 'node:fs';
import { assignGpus } from '../binding/gpus.js';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { Cause, HostUsage, JobOutcome, JobPlan, JobRequest, PhaseTimes, RankOutcome, RankTimes } from '../model/types.js';
import type { PmiState } from '../proxy/host-proxy.js';
import { IsolatedProxy, inBatchJob } from '../proxy/isolated.js';
import type { BindingSpec } from '../binding/policy.js';
import { podPrefix, podProxy } from './pod-proxy.js';
import type { ProxyEvents, ProxyHandle } from './proxy-handle.js';
import type { KvsOverflow, PmiGroupInfo, SpawnRequest, SpawnResult } from '../pmi/types.js';
import { processMapping } from '../placement/mapping.js';
import { isTsmpiError } from '../util/errors.js';
import type { RankLaunch } from '../proxy/rank-process.js';
import { KvsService } from '../pmi/kvs-service.js';
import { OutputMux } from '../io/mux.js';
import { checkPatternDirs } from '../io/patterns.js';
import { HostNoticeMerger } from '../report/host-notices.js';
import type { Sink } from '../io/sink.js';
import { forwardStdin, type StdinForwarder } from '../io/stdin.js';
import { pmiEnv, segmentEnv } from './rank-env.js';
import { checkWorkdir, resolveProgram, resolveSegmentProgram } from './resolve-program.js';
import { describeOutcome, formatBytes } from '../report/summary.js';
import { usageError, TsmpiError, ERROR_CODES } from '../util/errors.js';
import { detectMpi } from '../mpi/detect.js';
import { pmiLibrary, randomJobNumber, type PmiLibrary, wireSegment, type SegmentWiring } from '../mpi/wire-up.js';
import { pmixServer, type PmixServer } from '../pmix/server-path.js';
import type { PmixJob } from '../pmix/types.js';
import { EXIT } from './exit-status.js';

/** Containment settings shared by every host (src/isolate). */
export interface ContainmentSpec {
  mode: 'auto' | 'strict' | 'off';
  /** --tmp host: no private /tmp and /dev/shm (cgroups unchanged). */
  hostTmp?: boolean;
  memPerRankBytes?: number;
  pidsPerRank?: number;
  inBatch: boolean;
  /** -bind-to / -map-by: each proxy binds its ranks from its own host's topology (src/binding). */
  binding?: BindingSpec;
}

/** Everything needed to start one host's proxy, in-process or remote. */
export interface ProxySpec {
  /** Unique per job and host: names its cgroups and private /tmp. */
  jobId: string;
  containment: ContainmentSpec;
  index: number;
  host: string;
  group: PmiGroupInfo;
  appnums: Record<number, number>;
  pmiTransport: 'fd' | 'tcp' | 'unix';
  launches: RankLaunch[];
  kvs: KvsService;
  events: ProxyEvents;
  /** MPI_Comm_spawn from one of this proxy's ranks (the controller's Job.spawn). */
  spawn?(req: SpawnRequest): Promise<SpawnResult>;
}

/** The answer to PMI spawn where no job can start ranks (tests of a lone proxy). */
export const spawnUnsupported = async (): Promise<SpawnResult> => ({ ok: false, error: 'spawn is not supported here' });

/** A rank that exited non-zero, in exit order, until it is known whether it had finalized. */
interface PendingFailure {
  rank: number;
  outcome: RankOutcome;
  verdict: 'failed' | 'finalized' | undefined;
  timer: NodeJS.Timeout | undefined;
}

/** How long a rank that exited non-zero may take to say whether it had finalized (Job.rankExited). */
const PENDING_FAILURE_MS = 1000;

/** Upper bound on the processes MPI_Comm_spawn may add to one job (a runaway spawn loop ends here). */
export const MAX_SPAWNED_RANKS = 65536;

/**
 * A rank of a group started by MPI_Comm_spawn. Its job-wide id (output, events, PMI_ID) comes after the world
 * ranks; PMI knows it as rank `groupRank` of `kvsname`.
 */
interface SpawnedRank {
  id: number;
  /** 1 for the job's first spawn, ... */
  group: number;
  groupRank: number;
  kvsname: string;
  host: string;
  proxy: number;
  /** the segment whose environment the children inherit (their spawner's) */
  segment: number;
}

/**
 * This host's proxy: in-process (no second Node start-up), except for an unprivileged user whose ranks can
 * only be contained in a pod of namespaces (see pod-proxy.ts).
 */
export function localProxy(spec: ProxySpec): ProxyHandle {
  const pod = podPrefix(spec);
  if (pod) return podProxy(spec, pod, process.env);
  return new IsolatedProxy(
    {
      host: spec.host,
      group: spec.group,
      pmiTransport: spec.pmiTransport,
      appnum: (r) => spec.appnums[r] ?? 0,
      launches: spec.launches,
      upstream: spec.kvs.localUpstream(spec.index, spec.spawn ?? spawnUnsupported),
      events: spec.events,
    },
    { ...spec.containment, jobId: spec.jobId, notice: (l) => spec.events.notice(l), failed: (m) => spec.events.launchFailed(m) },
  );
}

export interface JobDeps {
  /** Builds the proxy for one host; default: in-process. */
  makeProxy?(spec: ProxySpec): ProxyHandle;
  env: Record<string, string | undefined>;
  cwd: string;
  stdout: Sink;
  stderr: Sink;
  openFile(path: string): Sink;
  /** Opened only when some rank takes stdin. */
  stdinSource(): Readable | undefined;
  /** Rank label colouring (report/); identity when undefined. */
  label?(rank: number, stream: 'stdout' | 'stderr'): string;
  /** One notice line to the user (already prefixed by the caller if wanted). */
  notice?(line: string): void;
}

const TERMINATING_SIGNALS = new Set(['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT']);
/** After the last rank settled, how long escaped descendants may hold our pipes before we stop reading. */
const DRAIN_LIMIT_MS = 1000;

type Phase = 'new' | 'running' | 'terminating' | 'draining' | 'done';

export class Job {
  private phase: Phase = 'new';
  private readonly causes: Cause[] = [];
  private readonly outcomes = new Map<number, RankOutcome>();
  private readonly proxies: ProxyHandle[] = [];
  private readonly proxyOfRank: number[] = [];
  /** Per proxy: the ranks it speaks for (its world ranks, and spawned ranks placed there later). */
  private readonly ownRanks: Array<Set<number>> = [];
  private readonly spawned = new Map<number, SpawnedRank>();
  private spawnGroups = 0;
  /** Environment of each segment, before per-rank PMI variables (spawned ranks take their spawner's). */
  private segEnv: Array<Record<string, string>> = [];
  /** What each segment's MPI needs, and whether its ranks must speak PMI (src/mpi). */
  private segWiring: SegmentWiring[] = [];
  /** Ranks that exited non-zero, until it is known whether they had finalized (rankSettled). */
  private readonly pendingFailures: PendingFailure[] = [];
  /** Ranks that exited non-zero after MPI_Finalize: they end nobody else. */
  private readonly afterFinalize: Array<{ rank: number; code: number; host: string }> = [];
  /** Ranks whose failure a notice already named. */
  private readonly announced: number[] = [];
  /** Notices every host says alike, said once naming the hosts. */
  private readonly hostNotices: HostNoticeMerger;
  /** The singleton trap speaks once per job. */
  private noPmiSaid = false;
  private readonly mux: OutputMux;
  private readonly kvs = new KvsService(() => {
    this.phases.firstBarrierMs ??= this.now();
  });
  private readonly settledRanks = new Set<number>();
  private openStreams = 0;
  private graceTimer: NodeJS.Timeout | undefined;
  private interruptTimer: NodeJS.Timeout | undefined;
  private timeoutTimer: NodeJS.Timeout | undefined;
  private killedAll = false;
  private stdin: StdinForwarder | undefined;
  private resolveDone!: (o: JobOutcome) => void;
  private streamsClosed: (() => void) | undefined;

  constructor(
    private readonly req: JobRequest,
    readonly plan: JobPlan,
    private readonly deps: JobDeps,
  ) {
    this.hostNotices = new HostNoticeMerger(new Set(plan.proxies.map((p) => p.host)), (line) => this.notice(line));
    this.mux = new OutputMux({
      stdout: deps.stdout,
      stderr: deps.stderr,
      prependRank: req.prependRank,
      prependPattern: req.prependPattern,
      timestamp: req.timestampOutput ? () => new Date().toISOString() : undefined,
      outfilePattern: req.outfilePattern,
      errfilePattern: req.errfilePattern,
      rankInfo: (r) => ({ rank: r, host: this.hostOf(r), group: this.spawned.get(r)?.group ?? 0, proxy: plan.ranks[r]?.proxy ?? this.spawned.get(r)?.proxy ?? 0 }),
      openFile: deps.openFile,
      label: (rank, stream) => this.label(rank, stream),
    });
  }

  /** Validate and compute every rank's launch before anything starts (bad input leaves nothing behind). */
  private launches(): RankLaunch[][] {
    const { req, plan, deps } = this;
    if (req.stdin.kind === 'rank' && req.stdin.rank >= plan.size) {
      throw usageError(`--stdin names rank ${req.stdin.rank} but the job has ${plan.size} ranks`, `--stdin ${req.stdin.rank}`, `use a rank from 0 to ${plan.size - 1}, or all, or none`);
    }
    const segEnv = req.segments.map((s) => segmentEnv(deps.env, req.genv, s.env));
    this.segEnv = segEnv;
    const segCwd = req.segments.map((s) => {
      const dir = path.resolve(deps.cwd, s.wdir ?? req.wdir ?? '.');
      checkWorkdir(dir);
      return dir;
    });
    const segFile = req.segments.map((s, i) => resolveSegmentProgram(s.program, segCwd[i] ?? deps.cwd, segEnv[i] ?? {}, deps.env));
    this.segWiring = this.wireSegments(segFile, segCwd, segEnv);
    const where = plan.ranks.map((r) => ({ rank: r.rank, host: r.host, group: 0, proxy: r.proxy }));
    if (req.outfilePattern !== undefined) checkPatternDirs('-outfile-pattern', req.outfilePattern, where, deps.cwd);
    if (req.errfilePattern !== undefined) checkPatternDirs('-errfile-pattern', req.errfilePattern, where, deps.cwd);
    const out: RankLaunch[][] = plan.proxies.map(() => []);
    const gpus = this.gpuEnvs();
    for (const r of plan.ranks) {
      const proxy = plan.proxies[r.proxy];
      if (!proxy) continue;
      const baseEnv = segEnv[r.segment] ?? {};
      const extraEnv = { ...this.segWiring[r.segment]?.env, ...gpus(r.proxy, r.localRank), ...pmiEnv({ rank: r.rank, size: plan.size, localRank: r.localRank, localSize: proxy.ranks.length, fd: 3 }) };
      const env = { ...baseEnv, ...extraEnv };
      out[r.proxy]?.push({
        rank: r.rank,
        file: segFile[r.segment] ?? r.program,
        argv0: req.segments[r.segment]?.program,
        args: r.args,
        cwd: segCwd[r.segment] ?? deps.cwd,
        env,
        baseEnv,
        extraEnv,
        stdin: this.takesStdin(r.rank),
      });
      this.proxyOfRank[r.rank] = r.proxy;
    }
    return out;
  }

  /** Which MPI each segment's program uses, and what its ranks need for it (src/mpi); checked before any start. */
  private wireSegments(files: readonly string[], cwds: readonly string[], envs: ReadonlyArray<Record<string, string>>): SegmentWiring[] {
    const { req, plan, deps } = this;
    const jobNumber = randomJobNumber();
    let library: PmiLibrary | undefined;
    let pmix: PmixServer | undefined;
    return req.segments.map((s, i) => {
      const file = files[i] ?? s.program;
      const env = envs[i] ?? {};
      const detection = req.mpi === 'none' ? { usesMpi: false, via: 'not looked at' } : detectMpi(file, s.args, cwds[i] ?? deps.cwd, env);
      library ??= pmiLibrary(deps.env);
      pmix ??= pmixServer(deps.env);
      const w = wireSegment(s.program, detection, { choice: req.mpi, size: plan.size, jobNumber, library, pmixServer: pmix });
      if (!w.ok) throw new TsmpiError(ERROR_CODES.PROGRAM, w.message, { culprit: s.program, hint: w.hint, exitStatus: EXIT.LAUNCH_FAILED });
      if (req.verbose) this.notice(`MPI: ${w.wiring.describe}`);
      return w.wiring;
    });
  }

  /** -gpus-per-proc: each rank's device variable, checked for every host before anything starts. */
  private gpuEnvs(): (proxy: number, localRank: number) => Record<string, string> {
    const { req, plan, deps } = this;
    const per = req.gpusPerProc;
    if (per === undefined) return () => ({});
    const nodes = readDeviceNodes();
    const byProxy = plan.proxies.map((p) => {
      const a = assignGpus(deps.env, nodes, per, p.ranks.length);
      if (a.kind === 'error') throw usageError(`${a.message} (${p.host})`, `-gpus-per-proc ${String(per)}`, a.hint);
      return a;
    });
    return (proxy, localRank) => {
      const a = byProxy[proxy];
      const devices = a?.perRank[localRank];
      return a && devices ? { [a.variable]: devices.join(',') } : {};
    };
  }

  private takesStdin(rank: number): boolean {
    const s = this.req.stdin;
    return s.kind === 'all' || (s.kind === 'rank' && s.rank === rank);
  }

  private notice(line: string): void {
    if (this.deps.notice) this.deps.notice(line);
    else this.deps.stderr.write(Buffer.from(`tsmpiexec: ${line}\n`));
  }

  private hostOf(rank: number): string {
    return this.plan.ranks[rank]?.host ?? this.spawned.get(rank)?.host ?? '?';
  }

  /** World ranks and spawned ranks together: the job ends when all of them settled. */
  private get total(): number {
    return this.plan.size + this.spawned.size;
  }

  /** How messages name a rank: `rank 3`, or `rank 0 of spawn 1` for a spawned one. */
  private rankName(rank: number): string {
    const s = this.spawned.get(rank);
    return s ? `rank ${s.groupRank} of spawn ${s.group}` : `rank ${rank}`;
  }

  /** The -l label: `[3] ` for world rank 3, `[1:0] ` for rank 0 of the job's first spawn. */
  private label(rank: number, stream: 'stdout' | 'stderr'): string {
    const s = this.spawned.get(rank);
    if (s) return `[${s.group}:${s.groupRank}] `;
    return this.deps.label?.(rank, stream) ?? `[${rank}] `;
  }

  /** Runs the job to the end. Throws TsmpiError for bad input before anything was started. */
  run(): Promise<JobOutcome> {
    const launches = this.launches();
    const done = new Promise<JobOutcome>((resolve) => (this.resolveDone = resolve));
    const { plan } = this;
    this.kvs.addGroup(plan.kvsname, plan.proxies.length);
    this.phase = 'running';
    // PMIx (src/pmix): every proxy serves the whole job's map; a segment over PMIx makes the job one
    const pmixJob: PmixJob | undefined = this.segWiring.some((w) => w.pmix === true)
      ? {
          nspace: plan.kvsname,
          nodes: plan.proxies.map((p) => p.host),
          nodeRanks: plan.proxies.map((p) => [...p.ranks]),
          nodeIndex: 0,
          appnums: plan.ranks.map((r) => r.appnum),
          universeSize: plan.universeSize ?? plan.size,
        }
      : undefined;
    plan.proxies.forEach((p, i) => {
      // A proxy speaks only for its own ranks, with outcomes that are objects: anything else (a corrupted or
      // mismatched remote proxy) ends the job naming the host, rather than a crash or a rank settled twice.
      const mine = new Set(p.ranks);
      this.ownRanks[i] = mine;
      const own = (rank: number, ...outcome: [RankOutcome] | []): boolean => {
        const o: unknown = outcome.length === 0 ? { kind: '' } : outcome[0];
        if (mine.has(rank) && typeof o === 'object' && o !== null && typeof (o as { kind?: unknown }).kind === 'string') return true;
        this.proxyFailed(i, 'lost', `it sent a malformed event for rank ${String(rank)}`);
        return false;
      };
      const appnums: Record<number, number> = {};
      for (const r of p.ranks) appnums[r] = plan.ranks[r]?.appnum ?? 0;
      const spec: ProxySpec = {
        jobId: plan.kvsname.replace(/[^A-Za-z0-9_-]/g, '_'),
        containment: {
          mode: this.req.isolate,
          memPerRankBytes: this.req.memPerRankBytes,
          pidsPerRank: this.req.pidsPerRank,
          inBatch: inBatchJob(this.deps.env),
          ...(this.req.tmp === 'host' ? { hostTmp: true } : {}),
          binding: {
            bind: this.req.bindTo,
            ...(this.req.mapBy ? { map: this.req.mapBy } : {}),
            ...(this.req.membind && this.req.membind.kind !== 'none' ? { mem: this.req.membind } : {}),
            ...(this.req.gpusPerProc !== undefined ? { gpus: true } : {}),
            report: this.req.reportBindings,
            verbose: this.req.verbose,
          },
        },
        index: i,
        host: p.host,
        group: {
          kvsname: plan.kvsname,
          size: plan.size,
          processMapping: plan.processMapping,
          universeSize: plan.universeSize ?? plan.size,
          kvsLimits: this.req.kvsLimits,
          localCount: p.ranks.length,
          spawned: false,
          ...(pmixJob ? { pmix: { ...pmixJob, nodeIndex: i } } : {}),
        },
        appnums,
        pmiTransport: this.req.pmiTransport,
        launches: launches[i] ?? [],
        kvs: this.kvs,
        events: {
          output: (rank, stream, data) => (own(rank) ? this.output(rank, stream, data) : true),
          outputEnd: (rank, stream) => own(rank) && this.outputEnd(rank, stream),
          started: (rank) => {
            if (!own(rank)) return;
            this.openStreams += 2;
            this.times.set(rank, { startMs: this.now() });
            if (rank < plan.size && ++this.startedCount === plan.size) this.phases.ranksStartedMs = this.now();
          },
          exited: (rank, outcome) => own(rank, outcome) && this.rankExited(rank, outcome),
          settled: (rank, outcome, pmi) => own(rank, outcome) && this.rankSettled(rank, outcome, pmi),
          aborted: (rank, code, message) => (rank === undefined || own(rank)) && this.aborted(rank, code, message),
          pmiError: (rank, message) => (rank === undefined || own(rank)) && this.pmiFailed(rank, (who) => `PMI protocol error from ${who}: ${message}`),
          pmiLimit: (rank, over) =>
            (rank === undefined || own(rank)) &&
            this.pmiFailed(rank, (who) => `${who} put more than the job's PMI KVS limit of ${kvsLimitText(over)} (hint: raise it with --kvs-max-${over.limit})`),
          launchFailed: (message) => this.proxyFailed(i, 'launch', message),
          lost: (message) => this.proxyFailed(i, 'lost', message),
          notice: (line) => this.hostNotices.add(line),
        },
        spawn: (req) => this.spawn(req),
      };
      this.proxies.push((this.deps.makeProxy ?? localProxy)(spec));
    });
    const everyProxy = new Set(plan.proxies.map((_, i) => i));
    for (const p of this.proxies) p.barrierGroup?.(plan.kvsname, everyProxy);
    for (const p of this.proxies) p.start();
    void Promise.all(this.proxies.map((p) => p.ready?.())).then(() => {
      this.hostNotices.flush();
      this.startStdin();
    });
    if (this.req.timeoutSec !== undefined) {
      const secs = this.req.timeoutSec;
      this.timeoutTimer = setTimeout(() => {
        if (this.phase !== 'running') return;
        this.addCause({ kind: 'timeout', seconds: secs });
        this.notice(`job timed out after ${secs} s: terminating all ranks`);
        this.terminate('SIGTERM');
      }, secs * 1000);
    }
    return done;
  }

  /**
   * MPI_Comm_spawn (PMI-1 mcmd=spawn, PMI-2 spawn) from any rank: a new PMI group with its own KVS holding the
   * spawner's preputs, ranks 0..n-1 (appnum = command index), placed over the job's hosts as the world ranks
   * were (or on the hosts an info key `host` names), started by the proxies of those hosts with PMI_SPAWNED=1.
   * Resolves once they were started; they take part in the exit policy like any rank, and the job ends when they
   * have settled too.
   */
  async spawn(req: SpawnRequest): Promise<SpawnResult> {
    if (this.phase !== 'running') return { ok: false, error: 'the job is ending' };
    const res = await this.spawnGroup(req);
    if (!res.ok && this.phase === 'running') {
      const who = req.parentKvsname === this.plan.kvsname ? `rank ${req.parentRank}` : `rank ${req.parentRank} of ${req.parentKvsname}`;
      this.notice(`MPI_Comm_spawn from ${who} failed: ${res.error}`);
    }
    return res;
  }

  private async spawnGroup(req: SpawnRequest): Promise<SpawnResult> {
    const count = req.commands.reduce((n, c) => n + c.maxprocs, 0);
    if (count === 0) return { ok: false, error: 'spawn of no processes' };
    if (this.spawned.size + count > MAX_SPAWNED_RANKS) {
      return { ok: false, error: `spawning ${count} more processes would pass the limit of ${MAX_SPAWNED_RANKS} spawned processes per job` };
    }
    let placed: ReturnType<Job['placeSpawn']>;
    try {
      placed = this.placeSpawn(req, count);
    } catch (e) {
      return { ok: false, error: isTsmpiError(e) ? `${e.message}${e.culprit && !e.message.includes(e.culprit) ? ` (${e.culprit})` : ''}` : String(e) };
    }
    const { kvsname, group, byProxy, ranks } = placed;
    this.kvs.addGroup(kvsname, byProxy.size);
    const participants = new Set(byProxy.keys());
    for (const p of this.proxies) p.barrierGroup?.(kvsname, participants);
    for (const r of ranks) {
      this.spawned.set(r.id, r);
      this.proxyOfRank[r.id] = r.proxy;
      this.ownRanks[r.proxy]?.add(r.id);
    }
    const results = await Promise.all(
      [...byProxy].map(async ([index, launches]) => {
        const proxy = this.proxies[index];
        const info: PmiGroupInfo = { ...group, localCount: launches.length };
        const error = proxy?.addRanks ? await proxy.addRanks(info, launches) : 'its proxy cannot start ranks after the start';
        return { index, launches, error };
      }),
    );
    const failed = results.filter((r) => r.error !== undefined);
    if (failed.length === 0) return { ok: true, kvsname };
    // Ranks that never started settle here; if some of the group did start, they would wait for the others in
    // their first barrier forever, so the job ends.
    for (const f of failed) {
      for (const l of f.launches) {
        if (this.outcomes.has(l.rank)) continue;
        const outcome: RankOutcome = { kind: 'not-started', reason: f.error ?? '' };
        this.outcomes.set(l.rank, outcome);
      }
    }
    const first = failed[0] as (typeof failed)[number];
    const host = this.plan.proxies[first.index]?.host ?? '?';
    const error = `cannot start the spawned processes on ${host}: ${first.error ?? ''}`;
    if (failed.length < results.length && this.phase === 'running') {
      this.addCause({ kind: 'launch-failed', host, message: error });
      this.notice(`${error}: terminating the job`);
      this.terminate('SIGTERM');
    }
    for (const f of failed) for (const l of f.launches) this.settledRanks.add(l.rank);
    if (this.settledRanks.size === this.total) void this.finish();
    return { ok: false, error };
  }

  /** Where the ranks of a spawn go and how each is started; throws TsmpiError for a bad host or program. */
  private placeSpawn(req: SpawnRequest, count: number): {
    kvsname: string;
    group: Omit<PmiGroupInfo, 'localCount'>;
    byProxy: Map<number, RankLaunch[]>;
    ranks: SpawnedRank[];
  } {
    const { plan, deps } = this;
    const parent = this.spawnedByKvs(req.parentKvsname, req.parentRank);
    const segment = parent?.segment ?? plan.ranks[req.parentRank]?.segment ?? 0;
    const baseEnv = this.segEnv[segment] ?? this.segEnv[0] ?? {};
    const groupNo = this.spawnGroups + 1;
    const kvsname = `${plan.kvsname}_spawn${groupNo}`;
    const firstId = this.total;
    const worldSeq = plan.ranks.map((r) => r.proxy);
    const proxyOfHost = new Map(plan.proxies.map((p) => [p.host, p.index] as const));
    let next = 0;
    const placedProxy: number[] = [];
    const perRank: Array<{ file: string; argv0: string; args: string[]; cwd: string; appnum: number }> = [];
    req.commands.forEach((cmd, appnum) => {
      const info = new Map(cmd.info);
      if (info.has('hostfile')) throw usageError(`the info key hostfile is not supported`, 'hostfile', 'name the hosts with the info key host');
      const wanted = (info.get('host') ?? info.get('hosts') ?? '').split(',').map((h) => h.trim()).filter(Boolean);
      const hosts = wanted.map((h) => {
        const i = proxyOfHost.get(h);
        if (i === undefined) throw usageError(`host ${h} is not one of the job's hosts (${plan.proxies.map((p) => p.host).join(', ')})`, h, 'spawned processes run on the hosts of the job');
        return i;
      });
      const cwd = path.resolve(deps.cwd, info.get('wdir') ?? this.req.wdir ?? '.');
      checkWorkdir(cwd);
      const extraPath = info.get('path');
      const searchPath = extraPath ? `${extraPath}:${baseEnv.PATH ?? ''}` : baseEnv.PATH;
      const file = resolveProgram(cmd.command, cwd, searchPath);
      for (let k = 0; k < cmd.maxprocs; k++) {
        placedProxy.push(hosts.length > 0 ? (hosts[k % hosts.length] as number) : (worldSeq[next++ % worldSeq.length] ?? 0));
        perRank.push({ file, argv0: cmd.command, args: cmd.args, cwd, appnum });
      }
    });
    const localSize = new Map<number, number>();
    for (const p of placedProxy) localSize.set(p, (localSize.get(p) ?? 0) + 1);
    const localSeen = new Map<number, number>();
    const byProxy = new Map<number, RankLaunch[]>();
    const ranks: SpawnedRank[] = [];
    for (let r = 0; r < count; r++) {
      const proxy = placedProxy[r] as number;
      const localRank = localSeen.get(proxy) ?? 0;
      localSeen.set(proxy, localRank + 1);
      const id = firstId + r;
      const what = perRank[r] as (typeof perRank)[number];
      const extraEnv = pmiEnv({ rank: r, size: count, localRank, localSize: localSize.get(proxy) ?? 1, fd: 3, spawned: true });
      const list = byProxy.get(proxy) ?? [];
      list.push({
        rank: id,
        file: what.file,
        argv0: what.argv0,
        args: what.args,
        cwd: what.cwd,
        env: { ...baseEnv, ...extraEnv },
        baseEnv,
        extraEnv,
        stdin: false,
        pmi: { kvsname, rank: r, appnum: what.appnum },
      });
      byProxy.set(proxy, list);
      ranks.push({ id, group: groupNo, groupRank: r, kvsname, host: plan.proxies[proxy]?.host ?? '?', proxy, segment });
    }
    this.spawnGroups = groupNo;
    return {
      kvsname,
      group: {
        kvsname,
        size: count,
        processMapping: processMapping(placedProxy),
        universeSize: plan.universeSize ?? plan.size,
        kvsLimits: this.req.kvsLimits,
        spawned: true,
        parentKvsname: req.parentKvsname,
        initialKvs: req.preput,
      },
      byProxy,
      ranks,
    };
  }

  private spawnedByKvs(kvsname: string, groupRank: number): SpawnedRank | undefined {
    if (kvsname === this.plan.kvsname) return undefined;
    for (const s of this.spawned.values()) if (s.kvsname === kvsname && s.groupRank === groupRank) return s;
    return undefined;
  }

  private drainPending = false;
  /** Error codes of output files that failed (see outputFailed). */
  private readonly outputFailures = new Set<string>();
  private readonly t0 = Date.now();
  private readonly times = new Map<number, RankTimes>();
  private readonly phases: PhaseTimes = {};
  private startedCount = 0;

  private now(): number {
    return Date.now() - this.t0;
  }

  /** Rank output into the mux; on back-pressure the proxy pauses its ranks and we resume them on drain. */
  private output(rank: number, stream: 'stdout' | 'stderr', data: Buffer): boolean {
    const ok = this.mux.write(rank, stream, data);
    if (!ok && !this.drainPending) {
      this.drainPending = true;
      this.mux.onDrain(() => {
        this.drainPending = false;
        for (const p of this.proxies) p.resumeOutput();
      });
    }
    return ok;
  }

  private startStdin(): void {
    const targets = this.plan.ranks
      .filter((r) => this.takesStdin(r.rank))
      .map((r) => this.proxies[r.proxy]?.stdinOf(r.rank))
      .filter((w): w is NonNullable<typeof w> => w !== undefined);
    if (targets.length === 0) return;
    const src = this.deps.stdinSource();
    if (!src) {
      for (const t of targets) t.end();
      return;
    }
    this.stdin = forwardStdin(src, targets);
  }

  private addCause(c: Cause): void {
    this.causes.push(c);
  }

  private rankExited(rank: number, outcome: RankOutcome): void {
    this.outcomes.set(rank, outcome);
    const t = this.times.get(rank) ?? {};
    t.endMs = this.now();
    this.times.set(rank, t);
    const failed = outcome.kind !== 'exited' || outcome.code !== 0;
    if (!failed || this.phase !== 'running') return;
    if (outcome.kind === 'exited') {
      // A non-zero exit after MPI_Finalize ends nobody else (see rankSettled); whether the rank finalized is
      // known once its PMI conversation is complete, which is almost at once. A rank that does not settle
      // within a second (a child holding its output open) is taken as failed without that answer.
      const entry: PendingFailure = { rank, outcome, verdict: undefined, timer: undefined };
      entry.timer = setTimeout(() => this.judge(entry, 'failed'), PENDING_FAILURE_MS);
      this.pendingFailures.push(entry);
      return;
    }
    this.rankFailed(rank, outcome);
  }

  /**
   * A pending failure is now known to be one (or an exit after MPI_Finalize). Verdicts are acted on in the order
   * the ranks exited, so the first rank to fail stays the first cause whichever rank's answer comes first.
   */
  private judge(entry: PendingFailure, verdict: 'failed' | 'finalized'): void {
    clearTimeout(entry.timer);
    entry.verdict ??= verdict;
    while (this.pendingFailures[0]?.verdict !== undefined) {
      const e = this.pendingFailures.shift() as PendingFailure;
      if (e.verdict === 'finalized' && e.outcome.kind === 'exited') this.afterFinalize.push({ rank: e.rank, code: e.outcome.code, host: this.hostOf(e.rank) });
      else this.rankFailed(e.rank, e.outcome);
    }
  }

  /** A rank failed while the job runs: its cause, one line, and the others terminated. */
  private rankFailed(rank: number, outcome: RankOutcome): void {
    if (this.phase !== 'running') return;
    const host = this.hostOf(rank);
    if (outcome.kind === 'not-started') {
      this.addCause({ kind: 'launch-failed', host, message: `${this.rankName(rank)}: ${outcome.reason}` });
    } else {
      this.addCause({ kind: 'rank-failed', rank, host, outcome });
    }
    const others = this.total - this.outcomes.size;
    this.announced.push(rank);
    this.notice(`${this.rankName(rank)} on ${host} ${describeOutcome(outcome)}${others > 0 ? `: terminating the other ${others} rank${others === 1 ? '' : 's'}` : ''}`);
    this.terminate('SIGTERM');
  }

  private rankSettled(rank: number, outcome: RankOutcome, pmi: PmiState): void {
    const pending = this.pendingFailures.find((e) => e.rank === rank && e.verdict === undefined);
    if (pending !== undefined) this.judge(pending, pmi === 'finalized' ? 'finalized' : 'failed');
    if (pmi === 'initialized' && outcome.kind === 'exited' && outcome.code === 0 && this.phase === 'running') {
      const host = this.hostOf(rank);
      this.addCause({ kind: 'no-finalize', rank, host });
      this.notice(`${this.rankName(rank)} on ${host} exited without calling MPI_Finalize (PMI finalize): terminating the job`);
      this.terminate('SIGTERM');
    }
    const seg = this.plan.ranks[rank]?.segment;
    if (pmi === 'none' && seg !== undefined && this.segWiring[seg]?.trapSingletons && outcome.kind === 'exited' && outcome.code === 0 && this.phase === 'running') {
      const host = this.hostOf(rank);
      this.addCause({ kind: 'no-pmi', rank, host });
      if (!this.noPmiSaid) {
        this.noPmiSaid = true;
        const program = this.req.segments[seg]?.program ?? '?';
        const hint = this.segWiring[seg]?.singletonHint ?? '';
        this.notice(`${this.rankName(rank)} on ${host} (${program}, an MPI program) ended without ever contacting the PMI server: it ran as a one-rank job of its own, not as rank ${rank} of ${this.plan.size}; ${hint}`);
        // that line is the job's story: the ranks ended for it are not listed again one by one
        for (const r of this.plan.ranks) this.announced.push(r.rank);
      }
      this.terminate('SIGTERM');
    }
    this.settledRanks.add(rank);
    if (this.settledRanks.size === this.total) void this.finish();
  }

  /** A proxy never came up, or vanished: its unsettled ranks end here, and so does the job. */
  private proxyFailed(index: number, how: 'launch' | 'lost', message: string): void {
    const p = this.plan.proxies[index];
    if (!p) return;
    if (this.phase === 'running') {
      if (how === 'launch') {
        this.addCause({ kind: 'launch-failed', host: p.host, message });
        this.notice(`cannot start the proxy on ${p.host}: ${message}`);
      } else {
        this.addCause({ kind: 'proxy-lost', host: p.host, message });
        this.notice(`lost the proxy on ${p.host}: ${message}`);
      }
      this.terminate('SIGTERM');
    }
    for (const r of this.ownRanks[index] ?? p.ranks) {
      if (this.settledRanks.has(r)) continue;
      if (!this.outcomes.has(r)) {
        this.outcomes.set(r, how === 'launch' ? { kind: 'not-started', reason: `proxy on ${p.host} did not start` } : { kind: 'lost', reason: `proxy on ${p.host} lost` });
      }
      this.settledRanks.add(r);
    }
    if (this.settledRanks.size === this.total) void this.finish();
  }

  private aborted(rank: number | undefined, code: number, message: string): void {
    if (this.phase !== 'running') return;
    const r = rank ?? -1;
    const host = rank === undefined ? '?' : this.hostOf(rank);
    this.addCause({ kind: 'aborted', rank: r, host, code, message });
    this.notice(`${rank === undefined ? 'rank -1' : this.rankName(rank)} on ${host} called MPI_Abort with code ${code}${message ? ` (${message})` : ''}: killing all ranks`);
    this.terminate('SIGKILL');
  }

  /**
   * A rank broke the PMI protocol (its connection is closed) or went over a KVS limit: the job ends, with
   * EXIT.PMI, instead of waiting for the rank's later failure (a SIGPIPE, a barrier nobody completes). A
   * connection that never said which rank it is (a stray PMI_PORT client) ends nothing: one line only.
   */
  private pmiFailed(rank: number | undefined, text: (who: string) => string): void {
    if (rank === undefined || this.phase !== 'running') {
      this.notice(text(rank === undefined ? 'rank ?' : this.rankName(rank)));
      return;
    }
    const host = this.hostOf(rank);
    const message = text(`${this.rankName(rank)} on ${host}`);
    this.addCause({ kind: 'pmi-error', rank, host, message });
    this.announced.push(rank);
    const others = this.total - this.outcomes.size - 1;
    this.notice(`${message}${others > 0 ? `: terminating the other ${others} rank${others === 1 ? '' : 's'}` : ''}`);
    this.terminate('SIGTERM');
  }

  /** Our stdout reader went away (`| head -1`): end the job as a SIGPIPE would. */
  stdoutClosed(): void {
    if (this.phase !== 'running') return;
    this.addCause({ kind: 'signal', signal: 'SIGPIPE' });
    this.terminate('SIGTERM');
  }

  outputFailed(path: string, message: string): void {
    if (this.phase === 'done') return;
    // One line per kind of failure: several output files on one full file system all fail with ENOSPC.
    if (this.outputFailures.has(message)) return;
    this.outputFailures.add(message);
    this.notice(`cannot write rank output to ${path}: ${message}`);
    if (this.phase === 'running') {
      this.addCause({ kind: 'output-failed', path, message });
      this.terminate('SIGTERM');
    }
  }

  /** A signal delivered to tsmpiexec. */
  signal(sig: NodeJS.Signals): void {
    if (this.phase === 'done' || this.phase === 'new') return;
    if (!TERMINATING_SIGNALS.has(sig)) {
      for (const p of this.proxies) p.signal(sig);
      return;
    }
    if (this.phase === 'terminating' || this.phase === 'draining') {
      // second interrupt: no more grace
      this.killAll();
      return;
    }
    this.addCause({ kind: 'signal', signal: sig });
    this.terminate(sig);
    // ranks that ignore the interrupt would otherwise keep the user waiting in silence for the grace period
    if (sig === 'SIGINT' && this.req.graceSec > 1) {
      this.interruptTimer = setTimeout(() => {
        if (this.phase === 'terminating' && !this.killedAll) {
          this.notice(`interrupted: the ranks still running get ${this.req.graceSec} s to end before SIGKILL; press Ctrl-C again to kill them now`);
        }
      }, 1000);
      this.interruptTimer.unref();
    }
  }

  private terminate(sig: NodeJS.Signals): void {
    if (this.phase === 'running') this.phase = 'terminating';
    if (sig === 'SIGKILL') {
      this.killAll();
      return;
    }
    for (const p of this.proxies) p.signal(sig);
    if (!this.graceTimer) {
      this.graceTimer = setTimeout(() => this.killAll(), this.req.graceSec * 1000);
    }
  }

  private killAll(): void {
    this.killedAll = true;
    for (const p of this.proxies) p.killAll();
  }

  private outputEnd(rank: number, stream: 'stdout' | 'stderr'): void {
    this.mux.end(rank, stream);
    this.openStreams--;
    if (this.openStreams <= 0) this.streamsClosed?.();
  }

  private async finish(): Promise<void> {
    if (this.phase === 'draining' || this.phase === 'done') return;
    this.phase = 'draining';
    this.hostNotices.flush();
    for (const e of this.pendingFailures) clearTimeout(e.timer);
    // Ranks that exited non-zero after MPI_Finalize: the job's status is the highest of their codes (the lowest
    // rank among equals), whatever order they ended in; a cause recorded earlier still comes first.
    const worst = [...this.afterFinalize].sort((a, b) => b.code - a.code || a.rank - b.rank)[0];
    if (worst) this.addCause({ kind: 'rank-failed', rank: worst.rank, host: worst.host, outcome: { kind: 'exited', code: worst.code } });
    clearTimeout(this.graceTimer);
    clearTimeout(this.interruptTimer);
    clearTimeout(this.timeoutTimer);
    this.stdin?.stop();
    // Leftovers in the ranks' process groups go now; they may hold our pipes.
    for (const p of this.proxies) p.killAll();
    if (this.openStreams > 0) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, DRAIN_LIMIT_MS);
        this.streamsClosed = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    for (const p of this.proxies) p.destroyStreams();
    await Promise.all(this.proxies.map((p) => p.close?.()));
    await this.mux.finish();
    this.phase = 'done';
    this.phases.lastRankEndedMs = Math.max(0, ...[...this.times.values()].map((t) => t.endMs ?? 0));
    this.phases.doneMs = this.now();
    const all: Array<{ rank: number; host: string; spawn?: { group: number; rank: number } }> = [
      ...this.plan.ranks.map((r) => ({ rank: r.rank, host: r.host })),
      ...[...this.spawned.values()].map((s) => ({ rank: s.id, host: s.host, spawn: { group: s.group, rank: s.groupRank } })),
    ];
    const ranks = all.map((r) => ({
      ...r,
      times: this.times.get(r.rank),
      outcome: this.outcomes.get(r.rank) ?? ({ kind: 'not-started', reason: 'never started' } as RankOutcome),
    }));
    const usage = this.proxies.map((p) => p.usage?.()).filter((u): u is HostUsage => u !== undefined);
    this.resolveDone({ causes: this.causes, ranks, usage, phases: this.phases, announced: this.announced, startedAtMs: this.t0 });
  }

  /** Whether tsmpiexec had to SIGKILL (for the summary). */
  get escalated(): boolean {
    return this.killedAll;
  }
}

/** The names under /dev (the NVIDIA device nodes tell the GPUs of a host); none when /dev cannot be read. */
function kvsLimitText(o: KvsOverflow): string {
  return o.limit === 'keys' ? `${o.max} keys` : formatBytes(o.max);
}

function readDeviceNodes(): string[] {
  try {
    return readdirSync('/dev');
  } catch {
    return [];
  }
}
