// One host's binding, worked out in its proxy (each host from its own topology and affinity): the CPU list and
// memory policy of each local rank and the lines to show (--verbose policy, --report-bindings, a notice when it
// cannot apply).
import { formatCpuList } from '../topology/cpulist.js';
import { readTopology, usableCpus, usableMems } from '../topology/read.js';
import { findNativeHelper } from '../isolate/native.js';
import { which } from '../isolate/deps.js';
import { chooseBinder, memText, type Binder, type MemBinding } from './apply.js';
import { localBinding } from './cpus.js';
import { localMems } from './mems.js';
import type { BindingSpec } from './policy.js';
import { claimsDir, withClaims } from './claims.js';

export interface HostBinding {
  binder: Binder;
  /** CPUs by global rank; a rank not in it is not bound. */
  cpus: Map<number, number[]>;
  /** Memory policy by global rank (-membind); a rank not in it keeps the kernel's default. */
  mems: Map<number, MemBinding>;
  /** numactl, which sets the memory policy when there is no native helper. */
  numactl?: string;
  /** Lines for the user, in order. */
  lines: string[];
  /** Set when the policy cannot be met: the host's ranks must not start. */
  error?: string;
  /** Gives back the CPUs this job holds (other jobs may then use them). */
  release(): void;
}

const NOTHING = (): void => undefined;

/** What --report-bindings says of one rank: its CPUs, memory policy and GPUs. */
export function reportLine(host: string, rank: number, cpus: readonly number[] | undefined, mem: MemBinding | undefined, gpus: string | undefined): string {
  const parts = [cpus ? `CPUs ${formatCpuList(cpus)}` : 'not bound'];
  if (mem) parts.push(`memory ${memText(mem)}`);
  if (gpus !== undefined) parts.push(`GPUs ${gpus === '' ? 'none' : gpus}`);
  return `rank ${String(rank)} on ${host}: ${parts.join(', ')}`;
}

/** `gpus`: each rank's devices (-gpus-per-proc), for --report-bindings. */
export function hostBinding(
  spec: BindingSpec,
  host: string,
  ranks: readonly number[],
  env: Record<string, string | undefined>,
  gpus?: ReadonlyMap<number, string>,
): HostBinding {
  const cpus = new Map<number, number[]>();
  const mems = new Map<number, MemBinding>();
  const lines: string[] = [];
  const topology = readTopology(env);
  const usable = usableCpus() ?? topology.pus.map((p) => p.cpu);
  const decide = (held: ReadonlySet<number>) => {
    // only the default policy steers clear of CPUs other jobs hold; an explicit -bind-to says where to run
    const free = spec.bind.kind === 'default' ? usable.filter((c) => !held.has(c)) : usable;
    if (free.length === 0) return { kind: 'unbound', policy: `binding: none, other tsmpiexec jobs hold all ${String(usable.length)} usable CPUs` } as const;
    return localBinding({ topology, usable: free, localRanks: ranks.length, bind: spec.bind, ...(spec.map ? { map: spec.map } : {}) });
  };
  let r: ReturnType<typeof localBinding> | undefined;
  let heldCount = 0;
  let release = NOTHING;
  if (spec.bind.kind !== 'default') r = decide(new Set());
  else {
    try {
      release = withClaims(claimsDir(env), (held) => {
        heldCount = usable.filter((c) => held.has(c)).length;
        r = decide(held);
        return r.kind === 'bound' ? r.cpus.flat() : [];
      });
    } catch {
      r = decide(new Set()); // no runtime directory: choose as if alone
    }
  }
  const b: ReturnType<typeof localBinding> = r ?? decide(new Set());
  const fail = (message: string): HostBinding => {
    release();
    return { binder: { kind: 'none' }, cpus, mems, lines, error: `${message} on ${host}`, release: NOTHING };
  };
  if (b.kind === 'error') return fail(b.message);
  const m = localMems({ policy: spec.mem ?? { kind: 'none' }, topology, cpus: ranks.map((_, i) => (b.kind === 'bound' ? b.cpus[i] : undefined)), usable, mems: usableMems() });
  if (m.kind === 'error') return fail(m.message);
  const wantMem = m.perRank.some((x) => x !== undefined);
  if (heldCount > 0 && spec.verbose) lines.push(`${String(heldCount)} of ${String(usable.length)} usable CPUs on ${host} are held by other tsmpiexec jobs`);
  const wanted = b.kind === 'bound' || wantMem;
  const helper = wanted ? findNativeHelper(env) : undefined;
  const binder = wanted ? chooseBinder(helper, b.kind === 'bound' ? which('taskset', env.PATH) : undefined) : ({ kind: 'none' } as const);
  const numactl = wantMem && helper === undefined ? which('numactl', env.PATH) : undefined;
  if (spec.verbose) lines.push(`${b.policy} on ${host}`);
  if (b.kind === 'bound') {
    if (b.notice) lines.push(`${b.notice} on ${host}`);
    if (binder.kind === 'none') lines.push(`binding not applied on ${host}: neither the native helper nor taskset is available`);
    else ranks.forEach((rank, i) => cpus.set(rank, b.cpus[i] ?? []));
  }
  if (wantMem) {
    if (binder.kind !== 'helper' && numactl === undefined) lines.push(`memory binding not applied on ${host}: neither the native helper nor numactl is available`);
    else {
      ranks.forEach((rank, i) => {
        const x = m.perRank[i];
        if (x) mems.set(rank, x);
      });
    }
  }
  if (spec.report) {
    for (const rank of ranks) lines.push(reportLine(host, rank, cpus.get(rank), mems.get(rank), spec.gpus ? (gpus?.get(rank) ?? '') : undefined));
  }
  if (cpus.size === 0) {
    release();
    release = NOTHING;
  }
  return { binder: cpus.size > 0 || mems.size > 0 ? binder : { kind: 'none' }, cpus, mems, ...(numactl !== undefined ? { numactl } : {}), lines, release };
}
