// Where the job runs: -hosts, else -f hostfile, else the batch system's allocation (Slurm, LSF, Grid Engine,
// PBS, HTCondor: see hosts/batch/), else this host. A user's list always wins over the allocation. Also
// the checks and words that depend on where the list came from: the slot limit of an allocation
// (--oversubscribe lifts it), the --verbose line, and the default launcher.
import os from 'node:os';
import type { HostSource, HostSpec, JobRequest, LauncherName } from '../model/types.js';
import { parseHostFile } from '../cli/hostlist.js';
import { TsmpiError, ERROR_CODES } from '../util/errors.js';
import { batchSystemPresent, describeAllocation, detectAllocation } from './batch/detect.js';
import { insideSlurmJob } from './batch/slurm.js';
import type { BatchAllocation, Env } from './batch/types.js';

export interface HostDeps {
  readFile(path: string): string;
  hostname?: string;
  /** The launcher's environment, where batch systems leave their allocation; none: no batch detection. */
  env?: Env;
}

export interface ResolvedHosts {
  hosts: HostSpec[];
  source: HostSource;
  /** Set when the hosts came from a batch allocation. */
  allocation?: BatchAllocation;
  /** A batch system whose allocation was present but not used because -hosts or -f was given. */
  overridden?: { system: string; variable: string };
}

export function resolveHosts(req: Pick<JobRequest, 'hosts' | 'hostfile'>, deps: HostDeps): ResolvedHosts {
  const env = deps.env ?? {};
  const withOverride = (r: ResolvedHosts): ResolvedHosts => {
    const present = batchSystemPresent(env);
    return present ? { ...r, overridden: present } : r;
  };
  if (req.hosts && req.hosts.length > 0) return withOverride({ hosts: req.hosts, source: { kind: 'cmdline' } });
  if (req.hostfile !== undefined) {
    let text: string;
    try {
      text = deps.readFile(req.hostfile);
    } catch (e) {
      throw new TsmpiError(ERROR_CODES.HOSTFILE, `cannot read host file: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
        culprit: req.hostfile,
        hint: 'check the path given to -f',
      });
    }
    const hosts = parseHostFile(text, req.hostfile);
    if (hosts.length === 0) {
      throw new TsmpiError(ERROR_CODES.HOSTFILE, 'host file names no host', {
        culprit: req.hostfile,
        hint: 'add one host per line: NAME, NAME:SLOTS or NAME slots=SLOTS',
      });
    }
    return withOverride({ hosts, source: { kind: 'hostfile', path: req.hostfile } });
  }
  const hostname = deps.hostname ?? os.hostname();
  const allocation = detectAllocation(env, { readFile: deps.readFile, hostname });
  if (allocation) {
    return {
      hosts: allocation.hosts.map((h) => ({ ...h })),
      source: { kind: 'batch', system: allocation.system, variable: allocation.variables.join(', ') },
      allocation,
    };
  }
  return { hosts: [{ name: hostname }], source: { kind: 'default' } };
}

/**
 * The universe size (-usize): SYSTEM is the slots of the host list or allocation (this host alone: one per usable
 * CPU), never below the job's size; INFINITE is -1 (no limit); N as given, never below the job's size.
 */
export function universeSize(usize: number | 'system' | 'infinite' | undefined, hosts: readonly HostSpec[], ppn: number | undefined, defaultHost: boolean, size: number, cpus: number): number {
  if (usize === 'infinite') return -1;
  if (typeof usize === 'number') return Math.max(usize, size);
  const slots = defaultHost && ppn === undefined ? cpus : defaultRankCount(hosts, ppn);
  return Math.max(slots, size);
}

/** Ranks to run without -n: every slot once (a host without a count has one slot). */
export function defaultRankCount(hosts: readonly HostSpec[], ppn: number | undefined): number {
  return hosts.reduce((n, h) => n + (ppn ?? h.slots ?? 1), 0);
}

/** More ranks than an allocation's slots is an error unless --oversubscribe (user host lists wrap, as in Hydra). */
export function checkSlots(size: number, resolved: ResolvedHosts, oversubscribe: boolean): void {
  const a = resolved.allocation;
  if (!a || oversubscribe || size <= a.slots) return;
  throw new TsmpiError(
    ERROR_CODES.ALLOCATION,
    `${size} ranks asked for, but the ${a.system} allocation has ${a.slots} slot${a.slots === 1 ? '' : 's'} (${a.variables.join(', ')})`,
    { hint: `run at most ${a.slots} ranks, ask the batch system for more, or add --oversubscribe to run ${size} anyway` },
  );
}

/** One line for --verbose: where the host list came from. */
export function describeHosts(resolved: ResolvedHosts): string {
  const s = resolved.source;
  switch (s.kind) {
    case 'batch':
      return resolved.allocation ? `hosts from ${describeAllocation(resolved.allocation)}` : `hosts from the ${s.system} allocation (${s.variable})`;
    case 'cmdline':
    case 'hostfile': {
      const from = s.kind === 'cmdline' ? '-hosts' : `host file ${s.path}`;
      const o = resolved.overridden;
      return o ? `hosts from ${from} (the ${o.system} allocation in ${o.variable} is not used)` : `hosts from ${from}`;
    }
    case 'default':
      return 'hosts: this host only (no -hosts, -f or batch allocation)';
  }
}

/** -launcher's default: srun inside a Slurm allocation the hosts came from, else fork or ssh. */
export function defaultLauncher(resolved: ResolvedHosts, env: Env, anyRemote: boolean): LauncherName {
  if (resolved.allocation?.system === 'Slurm' && insideSlurmJob(env)) return 'slurm';
  return anyRemote ? 'ssh' : 'fork';
}
