// Decides, without touching anything, how one job on one host is contained and accounted: which cgroup
// hierarchy serves which purpose, every directory and value to write, how to kill, where /tmp lives, and
// the one-line notice when auto had to fall back (isolation.md §5). strict refuses instead of falling back.
import { ERROR_CODES, TsmpiError } from '../util/errors.js';
import { hierarchyKey } from './cgroup-paths.js';
import { formatCpuList, parseCpuList } from '../topology/cpulist.js';
import type {
  AccountingPlan,
  Capabilities,
  CgroupKind,
  CpusetPlan,
  HierarchyCaps,
  IsolationPlan,
  IsolationRequest,
  KillPlan,
  PlannedWrite,
} from './types.js';

/** A no-op v1 throttle rule (1 TiB/s): without any rule this kernel's blkio counters read 0 (isolation.md finding 3). */
export const NOOP_BPS = '1099511627776';
const CPU_PERIOD_US = 100000;

export function jobCgroupName(req: Pick<IsolationRequest, 'jobId' | 'host'>): string {
  return `tsmpiexec-${req.jobId}-${req.host.replace(/[^A-Za-z0-9_.-]/g, '_')}`;
}

export function validateRequest(req: IsolationRequest): void {
  if (!/^[A-Za-z0-9_-]+$/.test(req.jobId)) {
    throw new TsmpiError(ERROR_CODES.ISOLATION, 'job id must match [A-Za-z0-9_-]+', { culprit: req.jobId });
  }
  for (const r of req.ranks) {
    if (!Number.isInteger(r) || r < 0) throw new TsmpiError(ERROR_CODES.ISOLATION, 'rank must be a non-negative integer', { culprit: String(r) });
  }
  const { memPerRankBytes: mem, pidsPerRank: pids, cpuPerRank: cpu } = req.limits;
  if (mem !== undefined && !(Number.isInteger(mem) && mem > 0)) throw new TsmpiError(ERROR_CODES.ISOLATION, 'memory limit must be a positive integer of bytes', { culprit: String(mem) });
  if (pids !== undefined && !(Number.isInteger(pids) && pids > 0)) throw new TsmpiError(ERROR_CODES.ISOLATION, 'pids limit must be a positive integer', { culprit: String(pids) });
  if (cpu !== undefined && !(Number.isFinite(cpu) && cpu > 0)) throw new TsmpiError(ERROR_CODES.ISOLATION, 'cpu limit must be a positive number of CPUs', { culprit: String(cpu) });
}

function offPlan(): IsolationPlan {
  return {
    cgroup: 'none', tmp: 'none', tmpMethod: 'none', notice: undefined,
    jobDirs: {}, ownDirs: {}, mkdirs: [], writes: [], join: {}, rankDirs: {}, limitHiers: {}, holderJoin: [], holderDirs: {},
    kill: { kind: 'none' }, accounting: { cpu: { kind: 'none' }, memory: null, pids: null, io: null }, ioRules: [],
  };
}

interface Choice {
  kill: KillPlan;
  accounting: AccountingPlan;
  memLimit: string | undefined; // hierarchy key
  pidsLimit: string | undefined;
  cpuLimit: string | undefined;
  /** Hierarchy key of the cpuset controller that confines bound ranks, when they are bound and there is one. */
  cpusetHier: string | undefined;
  /** v2 controllers to enable in ownDir and in the job dir. */
  v2Enable: string[];
  moveSelf: boolean;
  notes: string[];
}

function hasFile(h: HierarchyCaps | undefined, f: string): boolean {
  return h !== undefined && h.childFiles.includes(f);
}

/** Pick a hierarchy for each purpose: v2 with controllers, else v2 core + v1 controllers, else v1 only. */
function choose(req: IsolationRequest, caps: Capabilities): Choice {
  const writable = caps.hierarchies.filter((h) => h.writable);
  const v2 = writable.find((h) => h.version === 2);
  const v1 = (ctl: string): HierarchyCaps | undefined => writable.find((h) => h.version === 1 && h.controllers.includes(ctl));
  const notes: string[] = [];

  // Pure v2 controllers: available in ownDir, and either enabled already or enable-able (root cgroup, or we
  // are alone in ownDir and can move ourselves to a leaf: the no-internal-process rule).
  const boundCpus = Object.values(req.cpus ?? {}).flat();
  const wantCpuset = boundCpus.length > 0;
  let v2ctl = new Set<string>();
  let moveSelf = false;
  if (v2 !== undefined) {
    const avail = v2.controllers.filter((c) => ['memory', 'pids', 'io', 'cpu', ...(wantCpuset ? ['cpuset'] : [])].includes(c));
    const enabled = new Set(v2.subtreeControl ?? []);
    const missing = avail.filter((c) => !enabled.has(c));
    if (missing.length === 0 || v2.ownIsRoot === true || (v2.ownOtherProcs ?? 0) === 0) {
      v2ctl = new Set(avail);
      moveSelf = missing.length > 0 && v2.ownIsRoot !== true;
    } else {
      v2ctl = new Set(avail.filter((c) => enabled.has(c)));
      notes.push(`v2 controllers ${missing.join(',')} not enabled: ${String(v2.ownOtherProcs)} other processes share our cgroup`);
    }
  }
  const key = (h: HierarchyCaps): string => hierarchyKey(h);
  const memV1 = v1('memory');
  const pidsV1 = v1('pids');
  const blkV1 = v1('blkio');
  const cpuacctV1 = v1('cpuacct');
  const cpuV1 = v1('cpu');
  const freezerV1 = v1('freezer');

  let kill: KillPlan;
  if (v2 !== undefined && hasFile(v2, 'cgroup.kill')) kill = { kind: 'cgroup.kill', hier: 'v2' };
  else if (freezerV1 !== undefined) kill = { kind: 'freezer', hier: key(freezerV1) };
  else if (v2 !== undefined) kill = { kind: 'signal-cgroup', hier: 'v2' };
  else {
    const any = memV1 ?? pidsV1 ?? cpuacctV1 ?? writable.find((h) => h.version === 1);
    kill = any !== undefined ? { kind: 'signal-cgroup', hier: key(any) } : caps.inPod !== undefined ? { kind: 'pod-sweep' } : { kind: 'marker-sweep' };
  }
  if (kill.kind === 'signal-cgroup') notes.push('no atomic kill (neither cgroup.kill nor a v1 freezer): killing by pid list');

  const accounting: AccountingPlan = { cpu: { kind: 'sampled' }, memory: null, pids: null, io: null };
  if (v2 !== undefined && hasFile(v2, 'cpu.stat')) accounting.cpu = { hier: 'v2', kind: 'v2' };
  else if (cpuacctV1 !== undefined) accounting.cpu = { hier: key(cpuacctV1), kind: 'v1-cpuacct' };
  if (v2ctl.has('memory')) accounting.memory = { hier: 'v2', kind: 'v2' };
  else if (memV1 !== undefined) accounting.memory = { hier: key(memV1), kind: 'v1' };
  if (v2ctl.has('pids')) accounting.pids = { hier: 'v2' };
  else if (pidsV1 !== undefined) accounting.pids = { hier: key(pidsV1) };
  if (v2ctl.has('io')) accounting.io = { hier: 'v2', kind: 'v2' };
  else if (blkV1 !== undefined && caps.blockDevices.length > 0) accounting.io = { hier: key(blkV1), kind: 'v1-blkio' };

  const cpuLimit = req.limits.cpuPerRank === undefined ? undefined : v2ctl.has('cpu') ? 'v2' : cpuV1 !== undefined ? key(cpuV1) : undefined;
  // The bound ranks' CPU sets: v2's cpuset where it can be enabled, else a v1 cpuset hierarchy.
  let cpusetHier: string | undefined;
  if (wantCpuset) {
    const cpusetV1 = v1('cpuset');
    const h = v2ctl.has('cpuset') ? v2 : cpusetV1;
    const own = parseCpuList(h?.cpuset?.cpus ?? '') ?? [];
    const outside = boundCpus.filter((x) => !own.includes(x));
    if (h === undefined) notes.push('no cpuset controller: a rank may widen its CPU binding');
    else if (h.version === 1 && (h.cpuset?.mems ?? '') === '') notes.push('no memory nodes in our cpuset: a rank may widen its CPU binding');
    else if (own.length > 0 && outside.length > 0) notes.push(`our cpuset (${h.cpuset?.cpus ?? ''}) lacks CPUs ${formatCpuList(outside)}: a rank may widen its CPU binding`);
    else cpusetHier = key(h);
    if (cpusetHier !== 'v2') v2ctl.delete('cpuset');
  }
  const v2Enable = [...v2ctl].filter((c) => c !== 'cpu' || cpuLimit === 'v2').sort();
  return {
    kill,
    accounting,
    memLimit: accounting.memory?.hier,
    pidsLimit: accounting.pids?.hier,
    cpuLimit,
    cpusetHier,
    v2Enable,
    moveSelf: moveSelf && v2Enable.some((c) => !(v2?.subtreeControl ?? []).includes(c)),
    notes,
  };
}

function usedHierarchies(c: Choice, kill: KillPlan): Set<string> {
  const used = new Set<string>();
  if (kill.kind === 'cgroup.kill' || kill.kind === 'freezer' || kill.kind === 'signal-cgroup') used.add(kill.hier);
  const a = c.accounting;
  if (a.cpu.kind === 'v2' || a.cpu.kind === 'v1-cpuacct') used.add(a.cpu.hier);
  for (const x of [a.memory?.hier, a.pids?.hier, a.io?.hier, c.cpuLimit, c.cpusetHier]) if (x !== undefined) used.add(x);
  return used;
}

function cgroupKind(used: Set<string>): CgroupKind {
  if (used.size === 0) return 'none';
  const hasV2 = used.has('v2');
  if (hasV2 && used.size === 1) return 'v2';
  return hasV2 ? 'hybrid' : 'v1';
}

/** Shorten failure reasons of the hierarchies to one clause ("mkdir in /sys/fs/cgroup/unified: EACCES"). */
function cgroupReasons(caps: Capabilities): string {
  const v2 = caps.hierarchies.find((h) => h.version === 2);
  const mem = caps.hierarchies.find((h) => h.version === 1 && h.controllers.includes('memory'));
  const rs = [v2?.reason, mem?.reason].filter((r): r is string => r !== undefined);
  return rs.length > 0 ? rs.join(', ') : caps.hierarchies.length === 0 ? 'no cgroup hierarchy mounted' : 'no usable hierarchy';
}

export function planIsolation(req: IsolationRequest, caps: Capabilities): IsolationPlan {
  validateRequest(req);
  if (req.mode === 'off') return offPlan();
  const c = choose(req, caps);
  const used = usedHierarchies(c, c.kill);
  const cgroup = cgroupKind(used);
  const notes = [...c.notes];
  const fatal: string[] = [];
  const byKey = new Map(caps.hierarchies.map((h) => [hierarchyKey(h), h]));
  const name = jobCgroupName(req);
  const ownDirs: Record<string, string> = {};
  const jobDirs: Record<string, string> = {};
  for (const k of [...used].sort(sortV2First)) {
    const h = byKey.get(k);
    if (h === undefined) continue;
    ownDirs[k] = h.ownDir;
    jobDirs[k] = `${h.ownDir}/${name}`;
  }

  // Private /tmp: root holder namespace, or the pod we already run in, or a 0700 directory.
  let tmp: IsolationPlan['tmp'] = 'tmpdir';
  let tmpMethod: IsolationPlan['tmpMethod'] = 'tmpdir';
  if (req.hostTmp === true) {
    tmp = 'none';
    tmpMethod = 'none';
  } else if (caps.inPod !== undefined) {
    tmp = 'private';
    tmpMethod = 'pod';
  } else if (caps.root && caps.mountNs.ok && caps.tools.nsenter !== undefined && caps.tools.setpriv !== undefined) {
    tmp = 'private';
    tmpMethod = 'holder';
  } else {
    const why = caps.root
      ? caps.mountNs.ok ? 'nsenter/setpriv not found' : `mount namespace failed: ${caps.mountNs.reason ?? '?'}`
      : caps.pod.ok ? 'the proxy was not started through podCommand()' : `user namespaces unavailable: ${caps.pod.reason}`;
    const what = `no private /tmp (${why}): TMPDIR is a 0700 per-job directory`;
    if (req.mode === 'strict') fatal.push(what);
    else notes.push(what);
  }

  if (cgroup === 'none') {
    const contain = c.kill.kind === 'pod-sweep' ? 'containment by the PID-namespace pod' : 'containment is best effort (job-marker sweep)';
    const what = `no cgroups (${cgroupReasons(caps)}): ${contain}, CPU time sampled, no limits`;
    if (req.mode === 'strict') fatal.push(what);
    else notes.push(what);
  } else {
    if (c.accounting.memory === null) notes.push('memory peak and OOM not measured (no memory controller)');
    if (c.accounting.io === null) notes.push('block I/O not measured (no io/blkio controller)');
    if (c.accounting.pids === null) notes.push('pids peak not measured (no pids controller)');
  }
  const unmet: string[] = [];
  if (req.limits.memPerRankBytes !== undefined && c.memLimit === undefined) unmet.push('memory');
  if (req.limits.pidsPerRank !== undefined && c.pidsLimit === undefined) unmet.push('pids');
  if (req.limits.cpuPerRank !== undefined && c.cpuLimit === undefined) unmet.push('cpu');
  if (unmet.length > 0) {
    const what = `${unmet.join(', ')} limit not enforced (no writable controller)`;
    if (req.mode === 'strict') fatal.push(what);
    else notes.push(what);
  }
  if (fatal.length > 0) {
    throw new TsmpiError(ERROR_CODES.ISOLATION, `strict isolation unavailable on ${req.host}: ${fatal.join('; ')}`, {
      culprit: req.host,
      hint: caps.root ? 'run with isolation mode auto to accept the fallback' : 'run as root, delegate a cgroup v2 subtree, or use isolation mode auto',
    });
  }

  const mkdirs: string[] = [];
  const writes: PlannedWrite[] = [];
  const join: Record<number, string[]> = {};
  const rankDirs: Record<number, Record<string, string>> = {};
  const holderDirs: Record<string, string> = {};
  const holderJoin: string[] = [];
  const lim = req.limits;
  const keys = Object.keys(jobDirs).sort(sortV2First);

  for (const k of keys) mkdirs.push(jobDirs[k]!);
  let enable: IsolationPlan['enable'];
  if (c.v2Enable.length > 0 && jobDirs.v2 !== undefined) {
    const own = ownDirs.v2!;
    enable = { hier: 'v2', controllers: c.v2Enable, ...(c.moveSelf ? { moveSelfTo: `${own}/tsmpiexec-proxy-${caps.pid}` } : {}) };
    writes.push({ path: `${jobDirs.v2}/cgroup.subtree_control`, value: c.v2Enable.map((x) => `+${x}`).join(' '), what: 'enable v2 controllers' });
  }
  // One no-op read and write rule per device on the job cgroup makes its rank children count I/O.
  const ioRules: string[] = [];
  if (c.accounting.io?.kind === 'v1-blkio') {
    const dir = jobDirs[c.accounting.io.hier]!;
    for (const dev of caps.blockDevices) {
      for (const rw of ['read', 'write']) {
        const path = `${dir}/blkio.throttle.${rw}_bps_device`;
        writes.push({ path, value: `${dev} ${NOOP_BPS}`, optional: true, what: 'no-op blkio rule' });
        ioRules.push(path);
      }
    }
  }
  const limitHiers: IsolationPlan['limitHiers'] = { mem: c.memLimit, pids: c.pidsLimit, cpu: c.cpuLimit };
  const cpuset = c.cpusetHier !== undefined ? planCpuset(req, caps, c.cpusetHier) : undefined;
  if (cpuset !== undefined) writes.push(...cpusetWrites(cpuset, jobDirs[cpuset.hier]!, cpuset.jobCpus));
  // v1 blkio counts a rank's I/O only in a cgroup of its own; the native helper's wait4 gives the same per rank
  const ioAtExitHier = c.accounting.io?.kind === 'v1-blkio' && caps.tools.helper !== undefined ? c.accounting.io.hier : undefined;
  const perRank = planRanks(
    { jobDirs, limitHiers, ...(cpuset !== undefined ? { cpuset } : {}), ...(ioAtExitHier !== undefined ? { ioAtExitHier } : {}) },
    lim,
    req.ranks,
    new Set(req.ioAtExit ?? []),
  );
  mkdirs.push(...perRank.mkdirs);
  writes.push(...perRank.writes);
  Object.assign(join, perRank.join);
  Object.assign(rankDirs, perRank.rankDirs);
  // The root-namespace holder process lives in its own leaf of the kill hierarchy, so killAll takes it too.
  const killHier = c.kill.kind === 'cgroup.kill' || c.kill.kind === 'freezer' || c.kill.kind === 'signal-cgroup' ? c.kill.hier : undefined;
  if (tmpMethod === 'holder' && killHier !== undefined && jobDirs[killHier] !== undefined) {
    const d = `${jobDirs[killHier]}/holder`;
    mkdirs.push(d);
    holderDirs[killHier] = d;
    holderJoin.push(`${d}/cgroup.procs`);
    // a v1 cpuset cgroup with no CPUs cannot be joined: the holder gets the job's
    if (cpuset?.version === 1 && cpuset.hier === killHier) writes.push(...cpusetWrites(cpuset, d, cpuset.jobCpus));
  }
  const tmpfsSize = lim.memPerRankBytes !== undefined ? lim.memPerRankBytes * Math.max(1, req.ranks.length) : undefined;
  const plan: IsolationPlan = {
    cgroup,
    tmp,
    tmpMethod,
    notice: notes.length > 0 ? `isolation on ${req.host}: ${notes.join('; ')}`.replace(/\s*\n\s*/g, ' ') : undefined,
    jobDirs,
    ownDirs,
    mkdirs,
    writes,
    join,
    rankDirs,
    limitHiers,
    holderJoin,
    holderDirs,
    ...(cpuset !== undefined ? { cpuset } : {}),
    ...(ioAtExitHier !== undefined ? { ioAtExitHier } : {}),
    kill: c.kill,
    accounting: c.accounting,
    ioRules,
    ...(enable !== undefined ? { enable } : {}),
    ...(tmpfsSize !== undefined ? { tmpfsSize } : {}),
  };
  assertInsideOwnCgroups(plan);
  return plan;
}

/**
 * The cgroups of some ranks, with their limits: at setup, and for ranks spawned later. A rank has a cgroup of its
 * own only where its figures or limits are read or set; in the other hierarchies it joins the job's cgroup, which
 * the native helper joins once for all the ranks it starts (they are born in it: no migration per rank). Those:
 * v1 blkio for a rank whose storage I/O comes with its exit (`ioAtExit`, wait4's rusage in the helper), and the v1
 * cpuset, where ranks with the same CPUs share one cgroup (`cpus-LIST`) and ranks with the job's CPUs use the
 * job's. `made`: cgroups that exist already (ranks added later share them).
 */
export function planRanks(
  plan: Pick<IsolationPlan, 'jobDirs' | 'limitHiers' | 'cpuset' | 'ioAtExitHier'>,
  lim: IsolationRequest['limits'],
  ranks: readonly number[],
  ioAtExit: ReadonlySet<number> = new Set(),
  made: ReadonlySet<string> = new Set(),
): Pick<IsolationPlan, 'mkdirs' | 'writes' | 'join' | 'rankDirs'> {
  const { jobDirs } = plan;
  const h = plan.limitHiers;
  const keys = Object.keys(jobDirs).sort(sortV2First);
  const mkdirs: string[] = [];
  const writes: PlannedWrite[] = [];
  const join: Record<number, string[]> = {};
  const rankDirs: Record<number, Record<string, string>> = {};
  const cs = plan.cpuset;
  const sharedCpuset = cs !== undefined && cs.version === 1 && cs.hier !== h.mem && cs.hier !== h.pids && cs.hier !== h.cpu ? cs.hier : undefined;
  const planned = new Set(made);
  for (const rank of ranks) {
    rankDirs[rank] = {};
    join[rank] = [];
    for (const k of keys) {
      if (k === sharedCpuset) {
        const mine = cs!.ranks[rank] ?? cs!.jobCpus;
        if (mine === cs!.jobCpus) {
          join[rank].push(`${jobDirs[k]}/cgroup.procs`);
          continue;
        }
        const dir = `${jobDirs[k]}/cpus-${mine.replace(/,/g, '_')}`;
        if (!planned.has(dir)) {
          planned.add(dir);
          mkdirs.push(dir);
          writes.push(...cpusetWrites(cs!, dir, mine));
        }
        rankDirs[rank][k] = dir;
        join[rank].push(`${dir}/cgroup.procs`);
        continue;
      }
      if (k === plan.ioAtExitHier && ioAtExit.has(rank)) {
        join[rank].push(`${jobDirs[k]}/cgroup.procs`);
        continue;
      }
      const dir = `${jobDirs[k]}/rank-${rank}`;
      mkdirs.push(dir);
      rankDirs[rank][k] = dir;
      join[rank].push(`${dir}/cgroup.procs`);
    }
    if (cs !== undefined && cs.hier !== sharedCpuset && rankDirs[rank][cs.hier] !== undefined) {
      // a v2 cgroup without CPUs of its own uses its parent's; a v1 one must be given them (the job's)
      const mine = cs.ranks[rank] ?? (cs.version === 1 ? cs.jobCpus : undefined);
      if (mine !== undefined) writes.push(...cpusetWrites(cs, rankDirs[rank][cs.hier]!, mine));
    }
    if (lim.memPerRankBytes !== undefined && h.mem !== undefined) {
      const d = rankDirs[rank][h.mem]!;
      if (h.mem === 'v2') {
        writes.push({ path: `${d}/memory.max`, value: String(lim.memPerRankBytes), what: 'memory limit' });
        writes.push({ path: `${d}/memory.swap.max`, value: '0', optional: true, what: 'swap limit' });
      } else {
        writes.push({ path: `${d}/memory.limit_in_bytes`, value: String(lim.memPerRankBytes), what: 'memory limit' });
        writes.push({ path: `${d}/memory.memsw.limit_in_bytes`, value: String(lim.memPerRankBytes), optional: true, what: 'swap limit' });
      }
    }
    if (h.mem === 'v2') writes.push({ path: `${rankDirs[rank].v2}/memory.oom.group`, value: '1', optional: true, what: 'OOM kills the whole rank' });
    if (lim.pidsPerRank !== undefined && h.pids !== undefined) {
      writes.push({ path: `${rankDirs[rank][h.pids]}/pids.max`, value: String(lim.pidsPerRank), what: 'pids limit' });
    }
    if (lim.cpuPerRank !== undefined && h.cpu !== undefined) {
      const quota = Math.max(1000, Math.round(lim.cpuPerRank * CPU_PERIOD_US));
      const d = rankDirs[rank][h.cpu]!;
      if (h.cpu === 'v2') writes.push({ path: `${d}/cpu.max`, value: `${quota} ${CPU_PERIOD_US}`, what: 'cpu limit' });
      else {
        writes.push({ path: `${d}/cpu.cfs_period_us`, value: String(CPU_PERIOD_US), what: 'cpu limit' });
        writes.push({ path: `${d}/cpu.cfs_quota_us`, value: String(quota), what: 'cpu limit' });
      }
    }
  }
  return { mkdirs, writes, join, rankDirs };
}

/** The job's CPU set: its bound ranks' CPUs, each rank's own, and (v1) the memory nodes our own cgroup has. */
function planCpuset(req: IsolationRequest, caps: Capabilities, hier: string): CpusetPlan {
  const h = caps.hierarchies.find((x) => hierarchyKey(x) === hier)!;
  const ranks: Record<number, string> = {};
  const all: number[] = [];
  for (const [rank, list] of Object.entries(req.cpus ?? {})) {
    if (list.length === 0) continue;
    ranks[Number(rank)] = formatCpuList(list);
    all.push(...list);
  }
  return { hier, version: h.version, jobCpus: formatCpuList(all), ranks, ...(h.version === 1 ? { mems: h.cpuset?.mems ?? '' } : {}) };
}

/** v1: cpus and mems, both needed before any task may join, so setup fails without them; v2: cpus only (the
 *  memory nodes come from the parent), and a failure only leaves the rank free to widen its binding. */
function cpusetWrites(cs: CpusetPlan, dir: string, cpus: string): PlannedWrite[] {
  if (cs.version === 2) return [{ path: `${dir}/cpuset.cpus`, value: cpus, optional: true, what: 'CPU set' }];
  return [
    { path: `${dir}/cpuset.cpus`, value: cpus, critical: true, what: 'CPU set' },
    { path: `${dir}/cpuset.mems`, value: cs.mems ?? '', critical: true, what: 'CPU set memory nodes' },
  ];
}

function sortV2First(a: string, b: string): number {
  if (a === b) return 0;
  if (a === 'v2') return -1;
  if (b === 'v2') return 1;
  return a < b ? -1 : 1;
}

/** Never write outside our own cgroup subtree in any hierarchy (the batch-system rule). A violation is a bug. */
export function assertInsideOwnCgroups(plan: IsolationPlan): void {
  const owns = Object.values(plan.ownDirs);
  const paths = [...plan.mkdirs, ...plan.writes.map((w) => w.path), ...Object.values(plan.join).flat(), ...plan.holderJoin];
  if (plan.enable?.moveSelfTo !== undefined) paths.push(plan.enable.moveSelfTo);
  for (const p of paths) {
    if (p.includes('/../') || !owns.some((o) => p.startsWith(`${o}/`))) {
      throw new Error(`isolation plan writes outside our own cgroup: ${p} (this is a bug in tsmpiexec)`);
    }
  }
}
