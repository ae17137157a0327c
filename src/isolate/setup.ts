// The entry points the proxy calls: setupIsolation (probe → plan → apply, returning the job's Isolation)
// and podCommand (the argv prefix an unprivileged proxy re-execs itself through to get a private /tmp).
import path from 'node:path';
import { ERROR_CODES, TsmpiError } from '../util/errors.js';
import { applyCgroups, applyRankCgroups, removeCgroupsRetrying, undoEnable, type AppliedCgroups } from './cgroup-apply.js';
import { parseProcStat } from './counters.js';
import { defaultDeps } from './deps.js';
import { startHolder, type Holder } from './holder.js';
import { killJob } from './kill.js';
import { assertInsideOwnCgroups, planIsolation, planRanks, validateRequest } from './plan.js';
import { findHierarchies } from './cgroup-paths.js';
import { cgroupHeadStart } from './head-start.js';
import { podArgv } from './pod-argv.js';
import { getCapabilities } from './probe.js';
import { JOB_ENV, RANK_ENV } from './proc-scan.js';
import { ProcSampler } from './proc-sampler.js';
import { createJobTmpdir, removeJobTmp } from './tmpdir.js';
import type { Capabilities, ExitIo, Isolation, IsolationDeps, IsolationPlan, IsolationRequest, RankUsage, TmpLeft } from './types.js';
import { countLeft } from './tmp-left.js';
import { readUsage, type UsageContext } from './usage.js';
import { wrapArgv } from './wrapper.js';

function resolveDeps(partial: Partial<IsolationDeps> | undefined): { deps: IsolationDeps; useCache: boolean } {
  const useCache = partial === undefined || Object.keys(partial).length === 0;
  return { deps: { ...defaultDeps(), ...partial }, useCache };
}

function joinNotice(base: string | undefined, host: string, extra: string[]): string | undefined {
  if (extra.length === 0) return base;
  const more = extra.join('; ');
  return base === undefined ? `isolation on ${host}: ${more}` : `${base}; ${more}`;
}

/** CPU time of our reaped children, from /proc/self/stat (cutime/cstime), in seconds. */
function childrenCpu(deps: IsolationDeps): { user: number; sys: number } {
  try {
    const st = parseProcStat(deps.fs.readFile(`${deps.procRoot}/${deps.pid}/stat`));
    if (st !== undefined) return { user: st.cutime / 100, sys: st.cstime / 100 };
  } catch {
    // no /proc: nothing to report
  }
  return { user: 0, sys: 0 };
}

class JobIsolation implements Isolation {
  readonly cgroup: Isolation['cgroup'];
  readonly tmp: Isolation['tmp'];
  readonly notice: string | undefined;
  private cleaned = false;
  private readonly usageCtx: UsageContext;
  private readonly startChildrenCpu: { user: number; sys: number };

  constructor(
    private readonly req: IsolationRequest,
    private readonly deps: IsolationDeps,
    private readonly caps: Capabilities,
    private readonly plan: IsolationPlan,
    private readonly applied: AppliedCgroups,
    private readonly holder: Holder | undefined,
    private readonly tmpdir: string | undefined,
    private readonly sampler: ProcSampler | undefined,
    notice: string | undefined,
  ) {
    this.cgroup = plan.cgroup;
    this.tmp = plan.tmp;
    this.notice = notice;
    this.usageCtx = {
      deps,
      accounting: plan.accounting,
      ioTrusted: applied.ioTrusted,
      sampledCpu: () => ({ user: 0, sys: 0 }),
    };
    this.startChildrenCpu = childrenCpu(deps);
    this.ranks = new Set(req.ranks);
  }

  addRanks(ranks: number[]): void {
    if (this.cleaned) throw new TsmpiError(ERROR_CODES.ISOLATION, `isolation for job ${this.req.jobId} was already cleaned up`);
    const fresh = ranks.filter((r) => !this.ranks.has(r));
    for (const r of fresh) {
      if (!Number.isInteger(r) || r < 0) throw new TsmpiError(ERROR_CODES.ISOLATION, 'rank must be a non-negative integer', { culprit: String(r) });
    }
    // spawned ranks get a blkio cgroup of their own (no ioAtExit); cgroups shared with earlier ranks exist already
    const made = new Set(Object.values(this.plan.rankDirs).flatMap((d) => Object.values(d)));
    const part = planRanks(this.plan, this.req.limits, fresh, new Set(), made);
    assertInsideOwnCgroups({ ...this.plan, mkdirs: part.mkdirs, writes: part.writes, join: part.join, holderJoin: [] });
    applyRankCgroups(this.deps, part, this.req.mode === 'strict' ? 'strict' : 'auto');
    Object.assign(this.plan.join, part.join);
    Object.assign(this.plan.rankDirs, part.rankDirs);
    for (const r of fresh) this.ranks.add(r);
  }

  private readonly ranks: Set<number>;

  private checkRank(rank: number): void {
    if (!this.ranks.has(rank)) {
      throw new TsmpiError(ERROR_CODES.ISOLATION, `rank ${rank} is not placed on ${this.req.host}`, { culprit: String(rank) });
    }
  }

  wrap(rank: number, argv: string[]): string[] {
    this.checkRank(rank);
    if (this.cleaned) throw new TsmpiError(ERROR_CODES.ISOLATION, `isolation for job ${this.req.jobId} was already cleaned up`);
    let mountNs: { nsenter: string; nsPath: string } | undefined;
    if (this.holder !== undefined) {
      // A dead holder's pid may be reused: entering /proc/PID/ns/mnt would then silently give the host's /tmp.
      let link = '';
      try {
        link = this.deps.fs.readlink(this.holder.nsPath);
      } catch {
        // gone
      }
      if (!this.holder.alive() || link !== this.holder.nsLink) {
        throw new TsmpiError(ERROR_CODES.ISOLATION, `the private /tmp namespace of job ${this.req.jobId} is gone`, { culprit: this.req.host });
      }
      mountNs = { nsenter: this.caps.tools.nsenter!, nsPath: this.holder.nsPath };
    }
    const helper = this.caps.tools.helper;
    return wrapArgv({ sh: this.caps.tools.sh, rank, join: this.plan.join[rank] ?? [], ...(mountNs ? { mountNs } : {}), ...(helper !== undefined ? { helper } : {}) }, argv);
  }

  env(rank: number): Record<string, string> {
    this.checkRank(rank);
    if (this.req.mode === 'off') return {};
    const env: Record<string, string> = { [JOB_ENV]: this.req.jobId, [RANK_ENV]: String(rank) };
    if (this.plan.tmpMethod === 'holder' || this.plan.tmpMethod === 'pod') env.TMPDIR = '/tmp';
    else if (this.tmpdir !== undefined) {
      env.TMPDIR = this.tmpdir;
      // Keep Open MPI's shared-memory segments in the job dir too (flux-core PR #3672).
      env.OMPI_MCA_btl_vader_backing_directory = this.tmpdir;
      env.OMPI_MCA_btl_sm_backing_directory = this.tmpdir;
    }
    return env;
  }

  async killAll(): Promise<void> {
    // counted before the first kill, which takes the namespace holder (and with it the way in) along
    this.countedLeft ??= this.tmpLeft();
    await killJob(this.deps, this.plan, this.req.jobId);
  }

  private countedLeft: TmpLeft | undefined;

  usage(rank: number, atExit?: ExitIo): RankUsage {
    this.checkRank(rank);
    const ctx: UsageContext = { ...this.usageCtx, sampledCpu: () => this.sampledCpu(rank) };
    const dirs = this.plan.rankDirs[rank] ?? {};
    const u = readUsage(ctx, dirs);
    const io = this.plan.accounting.io;
    if (io !== null && dirs[io.hier] === undefined && atExit !== undefined) {
      // no cgroup of its own counts its I/O (planRanks): what its exit reported, the same kernel counters per task
      u.ioReadBytes = atExit.readBytes;
      u.ioWriteBytes = atExit.writeBytes;
    }
    return u;
  }

  hostUsage(ranks?: Readonly<Record<number, RankUsage>>): RankUsage {
    const ctx: UsageContext = {
      ...this.usageCtx,
      sampledCpu: () => {
        const now = childrenCpu(this.deps);
        const reaped = { user: now.user - this.startChildrenCpu.user, sys: now.sys - this.startChildrenCpu.sys };
        const sampled = this.sampledCpu(undefined);
        return { user: Math.max(reaped.user, sampled.user), sys: Math.max(reaped.sys, sampled.sys) };
      },
    };
    const u = readUsage(ctx, this.plan.jobDirs);
    // v1 memory.oom_control (and v2 with memory_localevents) count only OOMs in that very cgroup.
    u.oomKilled ||= [...this.ranks].some((r) => (ranks?.[r] ?? this.usage(r)).oomKilled);
    return u;
  }

  private sampledCpu(rank: number | undefined): { user: number; sys: number } {
    if (this.sampler === undefined) return { user: 0, sys: 0 };
    this.sampler.sample();
    return this.sampler.cpu(rank);
  }

  /**
   * Idempotent, and a second caller waits for the first: a remote proxy closes on 'shutdown' and again when the
   * channel ends, and exits when the second close resolves (it used to resolve at once, mid-way through the
   * first cleanup's rmdir retries, leaving the job's memory cgroup behind).
   */
  cleanup(): Promise<{ leftovers: string[]; tmpLeft?: TmpLeft }> {
    this.cleaning ??= this.cleanupOnce();
    return this.cleaning;
  }

  private cleaning: Promise<{ leftovers: string[]; tmpLeft?: TmpLeft }> | undefined;

  /** What the ranks left in the private /tmp and /dev/shm (the host entries kept visible are not theirs). */
  private tmpLeft(): TmpLeft | undefined {
    const kept = keepEntries(this.req.keepVisible ?? []);
    const skip = new Set(kept.ok ? kept.entries.map((e) => path.basename(e)) : []);
    if (this.holder !== undefined) return countLeft([`/proc/${this.holder.pid}/root/tmp`, `/proc/${this.holder.pid}/root/dev/shm`], skip);
    if (this.tmpdir !== undefined) return countLeft([this.tmpdir], new Set());
    return undefined;
  }

  private async cleanupOnce(): Promise<{ leftovers: string[]; tmpLeft?: TmpLeft }> {
    this.cleaned = true;
    const leftovers: string[] = [];
    this.sampler?.stop();
    const tmpLeft = this.countedLeft ?? this.tmpLeft();
    let killedAll = false;
    try {
      killedAll = await killJob(this.deps, this.plan, this.req.jobId);
    } catch (e) {
      leftovers.push(`kill failed: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (this.holder !== undefined) {
      await this.holder.stop();
      if (this.holder.alive()) leftovers.push(`process ${this.holder.pid} (the /tmp namespace holder)`);
    }
    leftovers.push(...(await removeCgroupsRetrying(this.deps, this.plan)));
    leftovers.push(...undoEnable(this.deps, this.applied.enabled));
    leftovers.push(...removeJobTmp(this.deps, this.tmpdir, this.req.jobId));
    if (this.req.scratchDir !== undefined) {
      const st = scratchTmpDir(this.req.scratchDir, this.req.jobId);
      try {
        if (this.deps.fs.exists(st)) this.deps.fs.rmTree(st);
      } catch {
        leftovers.push(st);
      }
    }
    if (!killedAll && leftovers.length === 0) leftovers.push(`processes of job ${this.req.jobId} that survived the kill`);
    return tmpLeft !== undefined ? { leftovers, tmpLeft } : { leftovers };
  }
}

function offIsolation(): Isolation {
  const none: RankUsage = { cpuUserSec: 0, cpuSysSec: 0, memPeakBytes: null, ioReadBytes: null, ioWriteBytes: null, pidsPeak: null, oomKilled: false };
  return {
    cgroup: 'none',
    tmp: 'none',
    notice: undefined,
    wrap: (_rank, argv) => [...argv],
    env: () => ({}),
    killAll: async () => {},
    usage: () => ({ ...none }),
    hostUsage: () => ({ ...none }),
    addRanks: () => {},
    cleanup: async () => ({ leftovers: [] }),
  };
}

import { sweepStaleJobs } from './janitor.js';
import { keepEntries, scratchTmpDir } from './keep-visible.js';

/** The cgroup.procs file of our own cgroup: the one the shim already wrote, else the first hierarchy's. */
function ownProcsFile(deps: IsolationDeps): string | undefined {
  const shim = cgroupHeadStart();
  if (shim !== undefined) return shim;
  try {
    const own = findHierarchies(deps.readMountinfo(), deps.readSelfCgroup())[0];
    return own !== undefined ? `${own.ownDir}/cgroup.procs` : undefined;
  } catch {
    return undefined; // no /proc: no cgroups either
  }
}

/**
 * The first cgroup migration after a quiet spell waits for an RCU grace period (6-15 ms on the 2-CPU test host:
 * the kernel's cgroup_threadgroup_rwsem leaves its fast mode), holding the cgroup mutex, so cgroup mkdirs wait
 * too; the next migrations within about 20 ms do not wait. Moving ourselves into the cgroup we are already in is a
 * migration that changes nothing. bin/tsmpiexec.js made one before loading the bundle (cgroupHeadStart): this
 * second one, in the thread pool, keeps the fast mode on until the holder and the ranks move, and costs nothing
 * when it is still on. Without the shim (tests, the bundle run directly) it is the first and only head start.
 * Errors (no cgroups, no right to write there) are nobody's business: it is only a head start.
 */
function startMigrationEarly(deps: IsolationDeps): () => void {
  const write = deps.fs.writeFileAsync;
  const procs = ownProcsFile(deps);
  if (procs === undefined || write === undefined) return () => undefined;
  write(procs, String(deps.pid)).catch(() => undefined);
  // The same move again, while we create many cgroups (setupIsolation's applyCgroups, 4 per rank): one every few
  // milliseconds keeps the fast mode on for the holder and the ranks, at a few microseconds each. Were it already
  // off, this one waits instead of the next real migration: nothing lost.
  return () => {
    try {
      deps.fs.writeFile(procs, String(deps.pid));
    } catch {
      // only a head start
    }
  };
}

export async function setupIsolation(req: IsolationRequest, depsIn?: Partial<IsolationDeps>): Promise<Isolation> {
  validateRequest(req);
  if (req.mode === 'off') return offIsolation();
  const { deps, useCache } = resolveDeps(depsIn);
  const keepWarm = useCache ? startMigrationEarly(deps) : undefined;
  const caps = getCapabilities(deps, useCache);
  const plan = planIsolation(req, caps); // strict throws here, before anything exists
  // Leftovers of proxies that died without cleaning up (named with their pid) go first.
  sweepStaleJobs(deps, Object.values(plan.jobDirs).map((d) => d.slice(0, d.lastIndexOf('/'))));
  const keep = keepEntries(req.keepVisible ?? []);
  if (plan.tmpMethod === 'holder' && !keep.ok && req.mode === 'strict') {
    throw new TsmpiError(ERROR_CODES.ISOLATION, `strict isolation: no private /tmp on ${req.host}: ${keep.reason}`, { culprit: req.host, hint: 'run the job from a directory outside /tmp, or use --isolate auto' });
  }
  const scratchTmp = req.scratchDir !== undefined ? scratchTmpDir(req.scratchDir, req.jobId) : undefined;
  let applied: AppliedCgroups | undefined;
  const mode = req.mode; // 'auto' | 'strict' here
  let applyError: unknown;
  const apply = (): void => {
    try {
      applied = applyCgroups(deps, plan, mode, keepWarm);
    } catch (e) {
      applyError = e;
      throw e;
    }
  };
  const tmpNotes: string[] = [];
  let holder: Holder | undefined;
  let tmpdir: string | undefined;
  let effective = plan;
  let scratchMade = false;
  try {
    if (plan.tmpMethod === 'holder' && keep.ok) {
      if (scratchTmp !== undefined) {
        deps.fs.mkdir(scratchTmp, 0o700);
        scratchMade = true;
      }
      try {
        // The holder execs and sets up its namespace while the cgroups are made (apply), then joins its own.
        holder = await startHolder(
          deps,
          {
            sh: caps.tools.sh,
            ...(caps.tools.helper !== undefined ? { helper: caps.tools.helper } : {}),
            setpriv: caps.tools.setpriv!,
            unshare: caps.tools.unshare!,
            jobId: req.jobId,
            uid: deps.uid,
            gid: deps.gid,
            join: plan.holderJoin,
            ...(plan.tmpfsSize !== undefined ? { tmpfsSize: plan.tmpfsSize } : {}),
            keep: keep.entries,
            ...(scratchTmp !== undefined ? { tmpSource: scratchTmp } : {}),
          },
          apply,
        );
      } catch (e) {
        if (applyError !== undefined || mode === 'strict') throw e; // the cgroups' own error comes first
        if (applied === undefined) apply(); // the holder failed before the cgroups were made
        tmpNotes.push(`no private /tmp (${e instanceof Error ? e.message : String(e)}): TMPDIR is a 0700 per-job directory`);
        effective = { ...plan, tmp: 'tmpdir', tmpMethod: 'tmpdir' };
      }
    } else {
      apply();
      if (plan.tmpMethod === 'holder' && !keep.ok) {
        tmpNotes.push(`no private /tmp (${keep.reason}): TMPDIR is a 0700 per-job directory`);
        effective = { ...plan, tmp: 'tmpdir', tmpMethod: 'tmpdir' };
      }
    }
    if (effective.tmpMethod === 'tmpdir') tmpdir = createJobTmpdir(deps, req.jobId, req.host);
  } catch (e) {
    // applyCgroups removed what it made if it failed itself; after it, everything goes here.
    if (applied !== undefined) {
      await removeCgroupsRetrying(deps, plan, 1000);
      undoEnable(deps, applied.enabled);
    }
    if (scratchMade && scratchTmp !== undefined) {
      try {
        deps.fs.rmTree(scratchTmp);
      } catch {
        // a batch system's scratch dir goes with the job anyway
      }
    }
    throw e;
  }
  const done = applied as AppliedCgroups;
  const notes = [...done.notes, ...tmpNotes];
  let sampler: ProcSampler | undefined;
  if (effective.accounting.cpu.kind === 'sampled') {
    sampler = new ProcSampler(deps, req.jobId);
    sampler.start();
  }
  const notice = joinNotice(effective.notice, req.host, notes);
  return new JobIsolation(req, deps, caps, effective, done, holder, tmpdir, sampler, notice);
}

/**
 * The argv prefix that starts a whole proxy inside a pod (private /tmp and /dev/shm, PID namespace, dies with
 * its parent), or undefined when none is needed (root uses cgroups and a joinable namespace; already in a pod)
 * or possible (then setupIsolation falls back to a 0700 TMPDIR, or strict refuses with the reason).
 * The proxy re-execs itself as [...podCommand(req), process.execPath, ...process.argv.slice(1)].
 */
export function podCommand(req: IsolationRequest, depsIn?: Partial<IsolationDeps>): string[] | undefined {
  validateRequest(req);
  if (req.mode === 'off') return undefined;
  const { deps, useCache } = resolveDeps(depsIn);
  const caps = getCapabilities(deps, useCache);
  if (caps.inPod !== undefined) return undefined;
  if (caps.root && caps.mountNs.ok) return undefined;
  if (!caps.pod.ok) {
    if (req.mode === 'strict') {
      throw new TsmpiError(ERROR_CODES.ISOLATION, `strict isolation unavailable on ${req.host}: no pod (${caps.pod.reason})`, {
        culprit: req.host,
        hint: 'enable unprivileged user namespaces or install bubblewrap, or use isolation mode auto',
      });
    }
    return undefined;
  }
  const keep = keepEntries(req.keepVisible ?? []);
  if (!keep.ok) {
    if (req.mode === 'strict') throw new TsmpiError(ERROR_CODES.ISOLATION, `strict isolation: no private /tmp on ${req.host}: ${keep.reason}`, { culprit: req.host, hint: 'run the job from a directory outside /tmp, or use --isolate auto' });
    return undefined;
  }
  const size = req.limits.memPerRankBytes !== undefined ? req.limits.memPerRankBytes * Math.max(1, req.ranks.length) : undefined;
  const scratchTmp = req.scratchDir !== undefined ? scratchTmpDir(req.scratchDir, req.jobId) : undefined;
  if (scratchTmp !== undefined) deps.fs.mkdir(scratchTmp, 0o700);
  return podArgv({ keep: keep.entries, ...(scratchTmp !== undefined ? { tmpSource: scratchTmp } : {}), tool: caps.pod.tool, tools: caps.tools, jobId: req.jobId, uid: caps.uid, gid: caps.gid, ...(size !== undefined ? { tmpfsSize: size } : {}) });
}
