// Turns a rank's CPU list into its argv, so the binding is set in the rank's own process before it execs
// (its threads and children inherit it). Pure. Order matters: joining a cgroup v1 cpuset resets the affinity
// of the joining task, so the binding comes after the isolation wrapper's joins: with the native helper as
// `--cpus` of the same `exec` step (it joins first), with taskset as the innermost program the wrapper execs.
import { formatCpuList } from '../topology/cpulist.js';

export type Binder = { kind: 'helper'; path: string } | { kind: 'taskset'; path: string } | { kind: 'none' };

/** The native helper when there is one, else taskset, else nothing. */
export function chooseBinder(helper: string | undefined, taskset: string | undefined): Binder {
  if (helper !== undefined) return { kind: 'helper', path: helper };
  if (taskset !== undefined) return { kind: 'taskset', path: taskset };
  return { kind: 'none' };
}

/** The argv handed to the isolation wrapper (taskset goes here, inside it). */
export function innerArgv(binder: Binder, cpus: readonly number[] | undefined, argv: string[]): string[] {
  if (cpus === undefined || binder.kind !== 'taskset') return argv;
  return [binder.path, '-c', formatCpuList(cpus), ...argv];
}

/** The argv after the isolation wrapper (the helper's --cpus goes here, into its exec step or a new one). */
export function outerArgv(binder: Binder, cpus: readonly number[] | undefined, argv: string[], label: string): string[] {
  if (cpus === undefined || binder.kind !== 'helper') return argv;
  const list = formatCpuList(cpus);
  if (argv[0] === binder.path && argv[1] === 'exec') return [binder.path, 'exec', '--cpus', list, ...argv.slice(2)];
  return [binder.path, 'exec', '--cpus', list, '--label', label, '--', ...argv];
}
