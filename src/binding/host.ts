// One host's binding, worked out in its proxy (each host from its own topology and affinity): the CPU list of
// each local rank and the lines to show (--verbose policy, --report-bindings, a notice when it cannot apply).
import fs from 'node:fs';
import path from 'node:path';
import { formatCpuList } from '../topology/cpulist.js';
import { readTopology, usableCpus } from '../topology/read.js';
import { findNativeHelper } from '../isolate/native.js';
import { chooseBinder, type Binder } from './apply.js';
import { localBinding } from './cpus.js';
import type { BindingSpec } from './policy.js';

export interface HostBinding {
  binder: Binder;
  /** CPUs by global rank; a rank not in it is not bound. */
  cpus: Map<number, number[]>;
  /** Lines for the user, in order. */
  lines: string[];
  /** Set when the policy cannot be met: the host's ranks must not start. */
  error?: string;
}

function findOnPath(name: string, env: Record<string, string | undefined>): string | undefined {
  for (const dir of (env.PATH ?? '/usr/bin:/bin').split(':')) {
    if (dir === '') continue;
    const p = path.join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

export function hostBinding(spec: BindingSpec, host: string, ranks: readonly number[], env: Record<string, string | undefined>): HostBinding {
  const cpus = new Map<number, number[]>();
  const lines: string[] = [];
  const r = localBinding({ topology: readTopology(env), usable: usableCpus(), localRanks: ranks.length, bind: spec.bind, ...(spec.map ? { map: spec.map } : {}) });
  if (r.kind === 'error') return { binder: { kind: 'none' }, cpus, lines, error: `${r.message} on ${host}` };
  const wanted = r.kind === 'bound';
  const binder = wanted ? chooseBinder(findNativeHelper(env), findOnPath('taskset', env)) : ({ kind: 'none' } as const);
  if (spec.verbose) lines.push(`${r.policy} on ${host}`);
  if (r.kind === 'bound') {
    if (r.notice) lines.push(`${r.notice} on ${host}`);
    if (binder.kind === 'none') lines.push(`binding not applied on ${host}: neither the native helper nor taskset is available`);
    else ranks.forEach((rank, i) => cpus.set(rank, r.cpus[i] ?? []));
  }
  if (spec.report) {
    for (const rank of ranks) {
      const c = cpus.get(rank);
      lines.push(`rank ${String(rank)} on ${host}: ${c ? `CPUs ${formatCpuList(c)}` : 'not bound'}`);
    }
  }
  return { binder, cpus, lines };
}
