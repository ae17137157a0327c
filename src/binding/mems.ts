// -membind on one host (pure): each local rank's memory policy, over the listed NUMA nodes or, without a list,
// over the nodes of the rank's own CPUs (all usable CPUs for a rank that is not bound). Nodes outside the
// launcher's own memory nodes (a cpuset's mems) cannot be used: a listed one is an error, derived ones are left out.
import { formatCpuList } from '../topology/cpulist.js';
import type { Topology } from '../topology/types.js';
import type { MemBinding } from './apply.js';
import type { MemPolicy } from './policy.js';

export type LocalMems = { kind: 'ok'; perRank: Array<MemBinding | undefined> } | { kind: 'error'; message: string };

export interface MemInput {
  policy: MemPolicy;
  topology: Topology;
  /** Each local rank's CPUs; undefined for a rank that is not bound. */
  cpus: ReadonlyArray<readonly number[] | undefined>;
  /** The launcher's usable CPUs. */
  usable: readonly number[];
  /** The launcher's memory nodes (Mems_allowed_list); undefined when unknown. */
  mems: readonly number[] | undefined;
}

export function localMems(input: MemInput): LocalMems {
  const { policy } = input;
  if (policy.kind === 'none') return { kind: 'ok', perRank: input.cpus.map(() => undefined) };
  const mode = policy.kind;
  const allowed = input.mems ? new Set(input.mems) : undefined;
  if (policy.nodes !== undefined) {
    const bad = policy.nodes.find((n) => allowed !== undefined && !allowed.has(n));
    if (bad !== undefined) {
      return { kind: 'error', message: `-membind ${mode}: memory node ${String(bad)} is not usable here (usable: ${formatCpuList(input.mems ?? [])})` };
    }
    const nodes = [...policy.nodes];
    return { kind: 'ok', perRank: input.cpus.map(() => ({ mode, nodes })) };
  }
  const nodeOf = new Map(input.topology.pus.map((p) => [p.cpu, p.numa]));
  const fallback = input.mems && input.mems.length > 0 ? [...input.mems] : [0];
  const perRank = input.cpus.map((c) => {
    const found = new Set<number>();
    for (const cpu of c ?? input.usable) {
      const n = nodeOf.get(cpu);
      if (n !== undefined && n >= 0 && (allowed === undefined || allowed.has(n))) found.add(n);
    }
    const nodes = found.size > 0 ? [...found].sort((a, b) => a - b) : fallback;
    return { mode, nodes };
  });
  return { kind: 'ok', perRank };
}
