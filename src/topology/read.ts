// This host's topology and usable CPUs: the only topology file that touches the file system or runs anything.
// HWLOC_XMLFILE (as hwloc itself honours it) wins; else sysfs, which costs a few file reads and no process; lstopo
// is run only where sysfs says nothing (it takes tens of milliseconds to start, on every job).
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { parseHwlocXml } from './hwloc-xml.js';
import { allowedCpus, allowedMems, readSysfsTopology } from './sysfs.js';
import type { Topology } from './types.js';

function readText(p: string): string | undefined {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    return undefined;
  }
}

function listDir(p: string): string[] {
  try {
    return fs.readdirSync(p);
  } catch {
    return [];
  }
}

export function readTopology(env: Record<string, string | undefined>): Topology {
  const xmlFile = env.HWLOC_XMLFILE;
  if (xmlFile) {
    const t = parseHwlocXml(readText(xmlFile) ?? '');
    if (t) return t;
  }
  const sys = readSysfsTopology(readText, listDir);
  if (sys) return sys;
  try {
    const t = parseHwlocXml(execFileSync('lstopo', ['--of', 'xml', '-'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 }));
    if (t) return t;
  } catch {
    /* no hwloc */
  }
  return { pus: [{ cpu: 0, core: 'pu0', package: 0, numa: -1 }], source: 'flat' };
}

/** The CPUs this process may run on (taskset, a batch system's binding, a cpuset); undefined when unknown. */
export function usableCpus(): number[] | undefined {
  return allowedCpus(readText('/proc/self/status') ?? '');
}

/** The memory nodes this process may use (a cpuset's mems); undefined when unknown. */
export function usableMems(): number[] | undefined {
  return allowedMems(readText('/proc/self/status') ?? '');
}
