// One host's binding, worked out in its proxy (each host from its own topology and affinity): the CPU list of
// each local rank and the lines to show (--verbose policy, --report-bindings, a notice when it cannot apply).
import { formatCpuList } from '../topology/cpulist.js';
import { readTopology, usableCpus } from '../topology/read.js';
import { findNativeHelper } from '../isolate/native.js';
import { which } from '../isolate/deps.js';
import { chooseBinder, type Binder } from './apply.js';
import { localBinding } from './cpus.js';
import type { BindingSpec } from './policy.js';
import { claimsDir, withClaims } from './claims.js';

export interface HostBinding {
  binder: Binder;
  /** CPUs by global rank; a rank not in it is not bound. */
  cpus: Map<number, number[]>;
  /** Lines for the user, in order. */
  lines: string[];
  /** Set when the policy cannot be met: the host's ranks must not start. */
  error?: string;
  /** Gives back the CPUs this job holds (other jobs may then use them). */
  release(): void;
}

const NOTHING = (): void => undefined;

export function hostBinding(spec: BindingSpec, host: string, ranks: readonly number[], env: Record<string, string | undefined>): HostBinding {
  const cpus = new Map<number, number[]>();
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
  if (b.kind === 'error') {
    release();
    return { binder: { kind: 'none' }, cpus, lines, error: `${b.message} on ${host}`, release: NOTHING };
  }
  if (heldCount > 0 && spec.verbose) lines.push(`${String(heldCount)} of ${String(usable.length)} usable CPUs on ${host} are held by other tsmpiexec jobs`);
  const wanted = b.kind === 'bound';
  const binder = wanted ? chooseBinder(findNativeHelper(env), which('taskset', env.PATH)) : ({ kind: 'none' } as const);
  if (spec.verbose) lines.push(`${b.policy} on ${host}`);
  if (b.kind === 'bound') {
    if (b.notice) lines.push(`${b.notice} on ${host}`);
    if (binder.kind === 'none') lines.push(`binding not applied on ${host}: neither the native helper nor taskset is available`);
    else ranks.forEach((rank, i) => cpus.set(rank, b.cpus[i] ?? []));
  }
  if (spec.report) {
    for (const rank of ranks) {
      const c = cpus.get(rank);
      lines.push(`rank ${String(rank)} on ${host}: ${c ? `CPUs ${formatCpuList(c)}` : 'not bound'}`);
    }
  }
  if (binder.kind === 'none') {
    release();
    release = NOTHING;
  }
  return { binder, cpus, lines, release };
}
