// Reads a Linux host's topology from sysfs texts. Pure: the reader is passed in, so tests use fixture trees.
import { parseCpuList } from './cpulist.js';
import type { Pu, Topology } from './types.js';

/** Reads one file's text, or undefined when it does not exist. */
export type ReadText = (path: string) => string | undefined;
/** Lists a directory's entries, or [] when it does not exist. */
export type ListDir = (path: string) => string[];

export function readSysfsTopology(read: ReadText, list: ListDir, root = '/sys/devices/system'): Topology | undefined {
  const cpus = parseCpuList(read(`${root}/cpu/online`) ?? '') ??
    [];
  const known = cpus.length > 0 ? cpus : list(`${root}/cpu`).flatMap((e) => (/^cpu[0-9]+$/.test(e) ? [Number(e.slice(3))] : [])).sort((a, b) => a - b);
  if (known.length === 0) return undefined;
  const numaOf = new Map<number, number>();
  for (const e of list(`${root}/node`)) {
    if (!/^node[0-9]+$/.test(e)) continue;
    for (const c of parseCpuList(read(`${root}/node/${e}/cpulist`) ?? '') ?? []) numaOf.set(c, Number(e.slice(4)));
  }
  const pus: Pu[] = known.map((cpu) => {
    const dir = `${root}/cpu/cpu${String(cpu)}/topology`;
    const pkg = Number((read(`${dir}/physical_package_id`) ?? '0').trim());
    const coreId = (read(`${dir}/core_id`) ?? '').trim();
    const package_ = Number.isFinite(pkg) && pkg >= 0 ? pkg : 0;
    return { cpu, core: coreId === '' ? `pu${String(cpu)}` : `${String(package_)}:${coreId}`, package: package_, numa: numaOf.get(cpu) ?? -1 };
  });
  return { pus, source: 'sysfs' };
}

/** The process's own usable CPUs from /proc/self/status (Cpus_allowed_list), or undefined. */
export function allowedCpus(status: string): number[] | undefined {
  const m = /^Cpus_allowed_list:\s*(.*)$/m.exec(status);
  return m ? parseCpuList(m[1] ?? '') : undefined;
}

/** The memory nodes the process may use from /proc/self/status (Mems_allowed_list), or undefined. */
export function allowedMems(status: string): number[] | undefined {
  const m = /^Mems_allowed_list:\s*(.*)$/m.exec(status);
  return m ? parseCpuList(m[1] ?? '') : undefined;
}
