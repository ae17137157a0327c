// Turns a rank's CPU list (and memory policy) into its argv, so the binding is set in the rank's own process
// before it execs (its threads and children inherit it). Pure. Order matters: joining a cgroup v1 cpuset resets
// the affinity of the joining task, so the binding comes after the isolation wrapper's joins: with the native
// helper as `--cpus`/`--mems` of the same `exec` step (it joins first), with taskset and numactl as the
// innermost programs the wrapper execs.
import { formatCpuList } from '../topology/cpulist.js';

export type Binder = { kind: 'helper'; path: string } | { kind: 'taskset'; path: string } | { kind: 'none' };

/** A rank's memory policy: MPOL_BIND or MPOL_INTERLEAVE over these NUMA nodes. */
export interface MemBinding {
  mode: 'bind' | 'interleave';
  nodes: number[];
}

/** The native helper when there is one, else taskset, else nothing. */
export function chooseBinder(helper: string | undefined, taskset: string | undefined): Binder {
  if (helper !== undefined) return { kind: 'helper', path: helper };
  if (taskset !== undefined) return { kind: 'taskset', path: taskset };
  return { kind: 'none' };
}

/** "bind:0,1" (as numa_maps shows a policy, and as the helper's --mems takes it). */
export function memText(m: MemBinding): string {
  return `${m.mode}:${formatCpuList(m.nodes)}`;
}

/** The argv handed to the isolation wrapper (taskset and numactl go here, inside it). */
export function innerArgv(binder: Binder, cpus: readonly number[] | undefined, argv: string[], mem?: { binding: MemBinding; numactl: string }): string[] {
  let out = argv;
  if (mem !== undefined && binder.kind !== 'helper') {
    const flag = mem.binding.mode === 'bind' ? '--membind' : '--interleave';
    out = [mem.numactl, `${flag}=${formatCpuList(mem.binding.nodes)}`, '--', ...out];
  }
  if (cpus !== undefined && binder.kind === 'taskset') out = [binder.path, '-c', formatCpuList(cpus), ...out];
  return out;
}

/** The argv after the isolation wrapper (the helper's --cpus/--mems go here, into its exec step or a new one). */
export function outerArgv(binder: Binder, cpus: readonly number[] | undefined, argv: string[], label: string, mem?: MemBinding): string[] {
  if (binder.kind !== 'helper' || (cpus === undefined && mem === undefined)) return argv;
  const opts = [...(cpus !== undefined ? ['--cpus', formatCpuList(cpus)] : []), ...(mem !== undefined ? ['--mems', memText(mem)] : [])];
  if (argv[0] === binder.path && argv[1] === 'exec') return [binder.path, 'exec', ...opts, ...argv.slice(2)];
  return [binder.path, 'exec', ...opts, '--label', label, '--', ...argv];
}
