// Pure: a host's topology + the CPUs the launcher may use + its local rank count + the policy → each local
// rank's CPU list. CPUs are handed out in units of the -bind-to object (a core is all its usable hardware
// threads); -map-by only orders those units (socket/numa: round-robin over packages or NUMA nodes; ppr:N:OBJ:
// N units per OBJ, then the next). When units run out the ranks wrap and share, as Hydra does, and say so.
import { formatCpuList } from '../topology/cpulist.js';
import type { Pu, Topology } from '../topology/types.js';
import type { BindPolicy, MapPolicy, TopoObject } from './policy.js';

export type LocalBinding =
  | { kind: 'bound'; cpus: number[][]; policy: string; notice?: string }
  | { kind: 'unbound'; policy: string }
  /** the policy cannot be met on this host (a user list names a CPU it may not use) */
  | { kind: 'error'; message: string };

interface Unit {
  cpus: number[];
  package: number;
  numa: number;
}

function keyOf(p: Pu, o: TopoObject): string {
  switch (o) {
    case 'hwthread':
      return `t${String(p.cpu)}`;
    case 'core':
      return p.core;
    case 'socket':
      return `p${String(p.package)}`;
    case 'numa':
      return p.numa < 0 ? `p${String(p.package)}` : `n${String(p.numa)}`;
  }
}

/** The usable units of one object type, in CPU order of their first CPU. */
function unitsOf(pus: readonly Pu[], o: TopoObject): Unit[] {
  const byKey = new Map<string, Unit>();
  for (const p of pus) {
    const k = keyOf(p, o);
    const u = byKey.get(k);
    if (u) u.cpus.push(p.cpu);
    else byKey.set(k, { cpus: [p.cpu], package: p.package, numa: p.numa });
  }
  return [...byKey.values()].sort((a, b) => (a.cpus[0] ?? 0) - (b.cpus[0] ?? 0));
}

const FINENESS: Record<TopoObject, number> = { hwthread: 0, core: 1, numa: 2, socket: 3 };

/** Orders units by the map policy: groups by the map object, then `per` units from each group in turn. */
function ordered(units: Unit[], bindObj: TopoObject, map: MapPolicy | undefined): Unit[] {
  if (!map) return units;
  const obj = map.object;
  const per = map.kind === 'ppr' ? map.perObject : 1;
  if (map.kind === 'object' && FINENESS[obj] <= FINENESS[bindObj]) return units;
  const groups = new Map<string, Unit[]>();
  for (const u of units) {
    const k = obj === 'socket' ? `p${String(u.package)}` : obj === 'numa' ? `n${String(u.numa)}` : `u${String(u.cpus[0])}`;
    const g = groups.get(k);
    if (g) g.push(u);
    else groups.set(k, [u]);
  }
  const lists = [...groups.values()];
  const out: Unit[] = [];
  for (let round = 0; out.length < units.length; round++) {
    for (const g of lists) out.push(...g.slice(round * per, round * per + per));
  }
  return out;
}

const NAMES: Record<TopoObject, string> = { hwthread: 'hardware thread', core: 'core', socket: 'socket', numa: 'NUMA node' };

function plural(n: number, word: string): string {
  return `${String(n)} ${word}${n === 1 ? '' : 's'}`;
}

export interface BindInput {
  topology: Topology;
  /** The launcher's own affinity; undefined = every CPU of the topology. */
  usable: readonly number[] | undefined;
  localRanks: number;
  bind: BindPolicy;
  map?: MapPolicy;
}

export function localBinding(input: BindInput): LocalBinding {
  const { bind, localRanks: n } = input;
  const allowed = input.usable ? new Set(input.usable) : undefined;
  const pus = input.topology.pus.filter((p) => !allowed || allowed.has(p.cpu));
  if (bind.kind === 'none') return { kind: 'unbound', policy: 'binding: none (-bind-to none)' };
  if (bind.kind === 'user') {
    const usable = new Set(pus.map((p) => p.cpu));
    const bad = bind.lists.flat().find((c) => !usable.has(c));
    if (bad !== undefined) {
      return { kind: 'error', message: `-bind-to user: CPU ${String(bad)} is not usable here (usable: ${formatCpuList([...usable])})` };
    }
    const cpus = Array.from({ length: n }, (_, i) => bind.lists[i % bind.lists.length] ?? []);
    return { kind: 'bound', cpus, policy: `binding: the user's CPU list (${plural(n, 'rank')})` };
  }
  if (pus.length === 0) return { kind: 'unbound', policy: 'binding: none, no usable CPU found in the topology' };
  const object = bind.kind === 'default' ? 'core' : bind.object;
  const count = bind.kind === 'default' ? 1 : bind.count;
  const units = ordered(unitsOf(pus, object), object, input.map);
  if (bind.kind === 'default' && n > units.length) {
    return { kind: 'unbound', policy: `binding: none, ${plural(n, 'rank')} oversubscribe ${plural(units.length, 'usable core')}` };
  }
  const cpus = Array.from({ length: n }, (_, i) => {
    const mine: number[] = [];
    for (let j = 0; j < count; j++) mine.push(...(units[(i * count + j) % units.length]?.cpus ?? []));
    return [...new Set(mine)].sort((a, b) => a - b);
  });
  const what = count === 1 ? `one ${NAMES[object]}` : `${String(count)} ${NAMES[object]}s`;
  const policy = `binding: ${what} per rank (${plural(n, 'rank')}, ${plural(units.length, `usable ${NAMES[object]}`)})`;
  if (n * count > units.length) {
    return { kind: 'bound', cpus, policy, notice: `${plural(n, 'rank')} need ${String(n * count)} ${NAMES[object]}s but ${String(units.length)} are usable: ranks share them` };
  }
  return { kind: 'bound', cpus, policy };
}
