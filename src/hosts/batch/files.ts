// The batch systems that hand the job a host list as text: PBS/Torque's PBS_NODEFILE (one line per slot),
// LSF's LSB_MCPU_HOSTS (`h1 4 h2 4`) and Grid Engine's PE_HOSTFILE (`host slots queue processors`).
import { HostTally, allocationError, excerpt, isHostName, type BatchAllocation } from './types.js';

/** Reads a file named by a variable; any failure is an allocation error naming both. */
export function readNamedFile(variable: string, path: string, readFile: (p: string) => string): string {
  try {
    return readFile(path);
  } catch (e) {
    throw allocationError(variable, `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** PBS_NODEFILE: one host name per line, once per slot (`n1\nn1\nn2`); blank lines are skipped. */
export function parsePbsNodefile(text: string, path: string, jobId?: string): BatchAllocation {
  const variable = 'PBS_NODEFILE';
  const tally = new HostTally();
  text.split('\n').forEach((raw, k) => {
    const line = raw.trim();
    if (line === '') return;
    if (!isHostName(line)) throw allocationError(variable, `${path}:${k + 1}: '${excerpt(line)}' is not a host name`);
    tally.add(line, 1);
  });
  if (tally.hosts.length === 0) throw allocationError(variable, `${path} names no host`);
  const alloc: BatchAllocation = { system: 'PBS', variables: [variable], hosts: tally.hosts, slots: tally.total };
  if (jobId !== undefined) alloc.jobId = jobId;
  return alloc;
}

function slotCount(text: string): number | undefined {
  if (!/^[0-9]{1,9}$/.test(text)) return undefined;
  const n = Number(text);
  return n >= 1 ? n : undefined;
}

/** LSB_MCPU_HOSTS: pairs of host name and slot count separated by blanks (`hostA 4 hostB 2`). */
export function parseLsfHosts(value: string, jobId?: string): BatchAllocation {
  const variable = 'LSB_MCPU_HOSTS';
  const words = value.trim().split(/\s+/).filter((w) => w !== '');
  const tally = new HostTally();
  for (let i = 0; i < words.length; i += 2) {
    const name = words[i] as string;
    const count = words[i + 1];
    if (!isHostName(name)) throw allocationError(variable, `'${excerpt(name)}' is not a host name (in '${excerpt(value)}')`);
    if (count === undefined) throw allocationError(variable, `host '${name}' has no slot count (in '${excerpt(value)}')`);
    const n = slotCount(count);
    if (n === undefined) throw allocationError(variable, `slot count '${excerpt(count)}' of host '${name}' is not a positive whole number`);
    tally.add(name, n);
  }
  if (tally.hosts.length === 0) throw allocationError(variable, 'names no host');
  const alloc: BatchAllocation = { system: 'LSF', variables: [variable], hosts: tally.hosts, slots: tally.total };
  if (jobId !== undefined) alloc.jobId = jobId;
  return alloc;
}

/** PE_HOSTFILE: `host slots queue processor-range` per line; only the first two fields matter. */
export function parseSgeHostfile(text: string, path: string, jobId?: string): BatchAllocation {
  const variable = 'PE_HOSTFILE';
  const tally = new HostTally();
  text.split('\n').forEach((raw, k) => {
    const line = raw.trim();
    if (line === '') return;
    const [name = '', count] = line.split(/\s+/);
    const where = `${path}:${k + 1}`;
    if (!isHostName(name)) throw allocationError(variable, `${where}: '${excerpt(name)}' is not a host name`);
    if (count === undefined) throw allocationError(variable, `${where}: host '${name}' has no slot count`);
    const n = slotCount(count);
    if (n === undefined) throw allocationError(variable, `${where}: slot count '${excerpt(count)}' is not a positive whole number`);
    tally.add(name, n);
  });
  if (tally.hosts.length === 0) throw allocationError(variable, `${path} names no host`);
  const alloc: BatchAllocation = { system: 'Grid Engine', variables: [variable], hosts: tally.hosts, slots: tally.total };
  if (jobId !== undefined) alloc.jobId = jobId;
  return alloc;
}
