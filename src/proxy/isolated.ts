// A HostProxy inside the job's containment (src/isolate): each rank is started through the isolation's
// pre-exec wrapper (it joins its cgroup and the job's private /tmp before exec), OOM kills are recognised from
// the cgroup's own counters, and at the end everything left in the job's cgroups is killed atomically, the
// usage read and the cgroups and private /tmp removed. Setting up is asynchronous, so start() defers the real
// start and replays signals that arrive meanwhile.
import fs from 'node:fs';
import type { HostUsage, RankBindingInfo, RankOutcome } from '../model/types.js';
import { formatCpuList } from '../topology/cpulist.js';
import { setupIsolation, type Isolation, type IsolationMode } from '../isolate/index.js';
import { ownerTag } from '../isolate/janitor.js';
import { namedPaths } from '../isolate/keep-visible.js';
import { formatBytes } from '../report/summary.js';
import { HostProxy, type HostProxyOptions } from './host-proxy.js';
import type { RankLaunch } from './rank-process.js';
import { applyArgv0 } from './argv0.js';
import type { PmiGroupInfo } from '../pmi/types.js';
import { isTsmpiError } from '../util/errors.js';
import type { BindingSpec } from '../binding/policy.js';
import { hostBinding, type HostBinding } from '../binding/host.js';
import { innerArgv, memText, outerArgv } from '../binding/apply.js';
import { GPU_VARS } from '../binding/gpus.js';

export interface ContainmentOptions {
  mode: IsolationMode;
  jobId: string;
  memPerRankBytes?: number;
  pidsPerRank?: number;
  inBatch: boolean;
  /** --tmp host: no private /tmp and /dev/shm. */
  hostTmp?: boolean;
  /** Where the ranks run on this host's CPUs; undefined: not bound. */
  binding?: BindingSpec;
  /** One line for the user (fallback notices, cleanup leftovers). */
  notice(line: string): void;
  /** Strict mode could not be satisfied, or setup failed: the proxy did not start. */
  failed(message: string): void;
}

/** Each rank's GPU devices, as -gpus-per-proc put them into its environment (the first device variable set). */
function gpusOf(launches: readonly RankLaunch[]): Map<number, string> {
  const out = new Map<number, string>();
  for (const l of launches) {
    const v = GPU_VARS.find((k) => l.env[k] !== undefined);
    if (v !== undefined) out.set(l.rank, l.env[v] ?? '');
  }
  return out;
}

/** Batch systems whose process tracking we must stay inside. */
export function inBatchJob(env: Record<string, string | undefined>): boolean {
  return ['SLURM_JOB_ID', 'PBS_JOBID', 'LSB_JOBID', 'JOB_ID', '_CONDOR_SCRATCH_DIR', 'FLUX_JOB_ID'].some((k) => env[k] !== undefined);
}

export class IsolatedProxy {
  readonly host: string;
  private inner: HostProxy | undefined;
  private iso: Isolation | undefined;
  private pendingSignals: NodeJS.Signals[] = [];
  private killRequested = false;
  private killing: Promise<void> | undefined;
  private usageResult: HostUsage | undefined;
  private setupDone: Promise<void> | undefined;
  /** Launches of spawned ranks, for the usage report. */
  private readonly added: RankLaunch[] = [];
  private binding: HostBinding | undefined;

  constructor(
    private readonly o: HostProxyOptions,
    private readonly c: ContainmentOptions,
  ) {
    this.host = o.host;
  }

  start(): void {
    this.setupDone = this.setup();
  }

  private async setup(): Promise<void> {
    const { o, c } = this;
    // Binding first: where a cpuset controller exists the job's cgroups are made with its ranks' CPUs.
    if (c.binding) {
      try {
        this.binding = hostBinding(c.binding, o.host, o.launches.map((l) => l.rank), process.env, c.binding.gpus ? gpusOf(o.launches) : undefined);
      } catch (e) {
        c.notice(`binding not applied on ${o.host}: ${(e as Error).message}`);
      }
      if (this.binding?.error !== undefined) {
        // hostBinding has given back its claim already
        c.failed(this.binding.error);
        this.binding = undefined;
        return;
      }
    }
    const cpus = this.binding !== undefined && this.binding.cpus.size > 0 ? Object.fromEntries(this.binding.cpus) : undefined;
    try {
      this.iso = await setupIsolation({
        // the owner's pid in the name lets a later job sweep what a killed proxy left (isolate/janitor.ts)
        jobId: `${ownerTag()}-${c.jobId}`,
        host: o.host,
        mode: c.mode,
        limits: { memPerRankBytes: c.memPerRankBytes, pidsPerRank: c.pidsPerRank },
        ranks: o.launches.map((l) => l.rank),
        inBatch: c.inBatch,
        keepVisible: namedPaths(o.launches, fs.existsSync),
        ...(c.hostTmp === true ? { hostTmp: true } : {}),
        ...(process.env._CONDOR_SCRATCH_DIR ? { scratchDir: process.env._CONDOR_SCRATCH_DIR } : {}),
        ...(cpus !== undefined ? { cpus } : {}),
        ioAtExit: HostProxy.batchedRanks(o),
      });
    } catch (e) {
      this.binding?.release();
      this.binding = undefined;
      c.failed(isTsmpiError(e) ? `${e.message}${e.hint ? ` (${e.hint})` : ''}` : `isolation setup failed: ${(e as Error).message}`);
      return;
    }
    const iso = this.iso;
    if (iso.notice) c.notice(iso.notice);
    for (const line of this.binding?.lines ?? []) c.notice(line);
    const launches = o.launches.map((l) => this.contained(iso, l));
    const events = {
      ...o.events,
      exited: (rank: number, outcome: RankOutcome) => o.events.exited(rank, this.withOom(rank, outcome)),
      settled: (rank: number, outcome: RankOutcome, pmi: 'none' | 'initialized' | 'finalized') => o.events.settled(rank, this.withOom(rank, outcome), pmi),
    };
    this.inner = new HostProxy({ ...o, launches, events });
    this.inner.start();
    for (const s of this.pendingSignals) this.inner.signal(s);
    if (this.killRequested) this.killAll();
  }

  /** The launch through the isolation's pre-exec wrapper (joins the rank's cgroups and private /tmp). */
  private contained(iso: Isolation, l: RankLaunch): RankLaunch {
    const b = this.binding;
    const cpus = b?.cpus.get(l.rank);
    const mem = b?.mems.get(l.rank);
    const inner = b ? innerArgv(b.binder, cpus, [l.file, ...l.args], mem !== undefined && b.numactl !== undefined ? { binding: mem, numactl: b.numactl } : undefined) : [l.file, ...l.args];
    const wrapped = b ? outerArgv(b.binder, cpus, iso.wrap(l.rank, inner), `rank ${String(l.rank)}`, mem) : iso.wrap(l.rank, inner);
    const argv = applyArgv0(wrapped, l.file, l.argv0);
    return { ...l, file: argv[0] ?? l.file, args: argv.slice(1), argv0: argv[0] === l.file ? l.argv0 : undefined, env: { ...l.env, ...iso.env(l.rank) } };
  }

  /** Ranks of a spawned group (MPI_Comm_spawn): their own cgroups first, then started like the others. */
  async addRanks(group: PmiGroupInfo, launches: RankLaunch[]): Promise<string | undefined> {
    await this.setupDone;
    const { iso, inner } = this;
    if (!iso || !inner || this.killRequested) return 'the job is ending';
    try {
      iso.addRanks(launches.map((l) => l.rank));
    } catch (e) {
      return isTsmpiError(e) ? e.message : `isolation for the spawned ranks failed: ${(e as Error).message}`;
    }
    this.added.push(...launches);
    let contained: RankLaunch[];
    try {
      contained = launches.map((l) => this.contained(iso, l));
    } catch (e) {
      return (e as Error).message;
    }
    return inner.addRanks(group, contained);
  }

  private withOom(rank: number, outcome: RankOutcome): RankOutcome {
    // The OOM killer's SIGKILL, seen directly or through a shell's 137.
    const killed = (outcome.kind === 'signaled' && outcome.signal === 'SIGKILL') || (outcome.kind === 'exited' && outcome.code === 137);
    if (!killed || !this.iso || this.c.memPerRankBytes === undefined) return outcome;
    try {
      return this.iso.usage(rank).oomKilled ? { ...outcome, oomLimitBytes: this.c.memPerRankBytes } : outcome;
    } catch {
      return outcome;
    }
  }

  signal(sig: NodeJS.Signals): void {
    if (this.inner) this.inner.signal(sig);
    else this.pendingSignals.push(sig);
  }

  /** Kill the ranks' groups and, atomically, everything else in the job's cgroups (setsid daemons too). */
  killAll(): void {
    this.killRequested = true;
    this.inner?.killAll();
    if (this.iso && !this.killing) this.killing = this.iso.killAll().catch(() => undefined);
  }

  resumeOutput(): void {
    this.inner?.resumeOutput();
  }

  stdinOf(rank: number): import('node:stream').Writable | undefined {
    return this.inner?.stdinOf(rank);
  }

  destroyStreams(): void {
    this.inner?.destroyStreams();
  }

  /** After the job: kill leftovers, read usage, remove cgroups and private /tmp (reporting what stays). */
  async close(): Promise<void> {
    await this.setupDone;
    const iso = this.iso;
    await this.inner?.close();
    if (!iso) return;
    this.killAll();
    await this.killing;
    const ranks: HostUsage['ranks'] = {};
    for (const l of [...this.o.launches, ...this.added]) {
      try {
        ranks[l.rank] = iso.usage(l.rank, this.inner?.exitIo(l.rank));
      } catch {
        /* no figures for a rank that never started */
      }
    }
    let total: HostUsage['total'] | undefined;
    try {
      total = iso.hostUsage(ranks);
    } catch {
      total = undefined;
    }
    if (total) this.usageResult = { host: this.host, cgroup: iso.cgroup, tmp: iso.tmp, total, ranks, ...(this.binding ? { bindings: this.bindingInfo(this.binding) } : {}) };
    this.binding?.release();
    const { leftovers, tmpLeft } = await iso.cleanup();
    if (leftovers.length > 0) this.c.notice(`could not remove on ${this.host}: ${leftovers.join(', ')}`);
    if (tmpLeft !== undefined && tmpLeft.files > 0) {
      const what = `${tmpLeft.files} file${tmpLeft.files === 1 ? '' : 's'} (${formatBytes(tmpLeft.bytes)})`;
      this.c.notice(`files left in the private /tmp on ${this.host}: ${what}, removed with it; --tmp host keeps the ranks' files in the host's /tmp`);
    }
  }

  private bindingInfo(b: HostBinding): Record<number, RankBindingInfo> {
    const gpus = this.c.binding?.gpus ? gpusOf(this.o.launches) : undefined;
    const out: Record<number, RankBindingInfo> = {};
    for (const l of this.o.launches) {
      const cpus = b.cpus.get(l.rank);
      const mem = b.mems.get(l.rank);
      out[l.rank] = { cpus: cpus ? formatCpuList(cpus) : null, mems: mem ? memText(mem) : null, gpus: gpus?.get(l.rank) ?? null };
    }
    return out;
  }

  usage(): HostUsage | undefined {
    return this.usageResult;
  }

  /** Resolves once the ranks were started (or setup failed). */
  async ready(): Promise<void> {
    await this.setupDone;
  }
}
