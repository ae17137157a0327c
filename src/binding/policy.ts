// The binding and mapping policies as the command line states them (-bind-to, -map-by), and their parsers.
// Pure: the CPUs are worked out later on each host from its own topology (cpus.ts).
import { badValue } from '../cli/values.js';
import { parseCpuList } from '../topology/cpulist.js';

/** Objects a rank can be bound to or mapped by. */
export type TopoObject = 'hwthread' | 'core' | 'socket' | 'numa';

export const TOPO_OBJECTS: readonly TopoObject[] = ['hwthread', 'core', 'socket', 'numa'];

/** -bind-to: what each local rank is confined to. */
export type BindPolicy =
  /** not given: one core per rank when the host's ranks fit its usable cores, else nothing */
  | { kind: 'default' }
  | { kind: 'none' }
  /** `count` consecutive objects per rank (`core:2`) */
  | { kind: 'object'; object: TopoObject; count: number }
  /** `user:0+1,2+3`: local rank i gets entry i mod the list's length (CPU numbers as the OS counts them) */
  | { kind: 'user'; lists: number[][] };

/** -map-by: in which order a host's objects are handed to its local ranks. */
export type MapPolicy =
  | { kind: 'object'; object: TopoObject }
  /** ppr:N:OBJ: N consecutive local ranks per object before moving to the next one */
  | { kind: 'ppr'; perObject: number; object: TopoObject };

/** -membind: where each rank's memory comes from. */
export type MemPolicy =
  /** none, firsttouch: the kernel's default (a page comes from the node of the CPU that first touches it) */
  | { kind: 'none' }
  /** bind (MPOL_BIND) or interleave (MPOL_INTERLEAVE) over the listed NUMA nodes, or without a list over the
   *  nodes of the rank's own CPUs */
  | { kind: 'bind' | 'interleave'; nodes?: number[] };

/** What goes to every host's proxy. */
export interface BindingSpec {
  bind: BindPolicy;
  map?: MapPolicy;
  mem?: MemPolicy;
  /** -gpus-per-proc was given: --report-bindings names each rank's devices. */
  gpus?: boolean;
  report: boolean;
  verbose: boolean;
}

/** Spellings other launchers use for the same objects. */
const SYNONYMS: Readonly<Record<string, TopoObject>> = {
  hwthread: 'hwthread', thread: 'hwthread', pu: 'hwthread',
  core: 'core',
  socket: 'socket', package: 'socket', board: 'socket',
  numa: 'numa', numanode: 'numa',
};

function topoObject(text: string, label: string, whole: string): TopoObject {
  const o = SYNONYMS[text.toLowerCase()];
  if (o === undefined) {
    throw badValue(`${label} does not know '${whole}'`, label, `use none, hwthread, core, socket, numa (with an optional :N count) or user:0,1,...; e.g. ${label} core`);
  }
  return o;
}

export function parseBindTo(text: string, label: string): BindPolicy {
  if (text === 'none') return { kind: 'none' };
  if (text.startsWith('user:')) {
    const body = text.slice(5);
    const hint = `list one CPU (or a+b+c) per local rank, e.g. ${label} user:0,1 or ${label} user:0+1,2+3`;
    if (body === '') throw badValue(`${label} user: needs a CPU list, got '${text}'`, label, hint);
    const lists = body.split(',').map((entry) => {
      if (!/^[0-9]+(\+[0-9]+)*$/.test(entry)) throw badValue(`${label} has a bad CPU entry '${entry}' in '${text}'`, label, hint);
      return [...new Set(entry.split('+').map(Number))].sort((a, b) => a - b);
    });
    return { kind: 'user', lists };
  }
  const [name = '', count, ...rest] = text.split(':');
  if (rest.length > 0) throw badValue(`${label} does not know '${text}'`, label, `e.g. ${label} core or ${label} core:2`);
  const object = topoObject(name, label, text);
  if (count !== undefined && !/^[1-9][0-9]{0,5}$/.test(count)) {
    throw badValue(`${label} needs a positive count after '${name}:', got '${text}'`, label, `e.g. ${label} ${name}:2`);
  }
  return { kind: 'object', object, count: count === undefined ? 1 : Number(count) };
}

export function parseMapBy(text: string, label: string): MapPolicy {
  const parts = text.split(':');
  if (parts[0]?.toLowerCase() === 'ppr') {
    if (parts.length !== 3) throw badValue(`${label} ppr needs ppr:N:OBJECT, got '${text}'`, label, `e.g. ${label} ppr:2:socket`);
    if (!/^[1-9][0-9]{0,5}$/.test(parts[1] ?? '')) throw badValue(`${label} ppr needs a positive count, got '${text}'`, label, `e.g. ${label} ppr:2:socket`);
    return { kind: 'ppr', perObject: Number(parts[1]), object: topoObject(parts[2] ?? '', label, text) };
  }
  if (parts.length !== 1) throw badValue(`${label} does not know '${text}'`, label, `use core, hwthread, socket, numa or ppr:N:OBJECT; e.g. ${label} core`);
  const o = SYNONYMS[text.toLowerCase()];
  if (o === undefined) throw badValue(`${label} does not know '${text}'`, label, `use core, hwthread, socket, numa or ppr:N:OBJECT; e.g. ${label} core`);
  return { kind: 'object', object: o };
}

const MEMBIND_HINT = 'use none, firsttouch, bind, bind:NODES, interleave or interleave:NODES (NODES like 0,1 or 0-3)';

export function parseMembind(text: string, label: string): MemPolicy {
  const [name = '', list, ...rest] = text.split(':');
  const kind = name.toLowerCase();
  if (rest.length === 0 && list === undefined && (kind === 'none' || kind === 'firsttouch' || kind === 'default' || kind === 'local')) return { kind: 'none' };
  if (kind === 'nexttouch') {
    throw badValue(`${label} nexttouch is not supported: Linux has no next-touch memory policy`, label, `${MEMBIND_HINT}; e.g. ${label} bind`);
  }
  if ((kind !== 'bind' && kind !== 'interleave') || rest.length > 0) throw badValue(`${label} does not know '${text}'`, label, `${MEMBIND_HINT}; e.g. ${label} bind`);
  if (list === undefined) return { kind };
  const nodes = parseCpuList(list);
  if (nodes === undefined || nodes.length === 0) throw badValue(`${label} needs NUMA node numbers after '${kind}:', got '${text}'`, label, `${MEMBIND_HINT}; e.g. ${label} ${kind}:0,1`);
  return { kind, nodes };
}
