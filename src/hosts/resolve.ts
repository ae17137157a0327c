// Where the job runs: -hosts, else -f hostfile, else this host. (Batch allocations join here later.)
import os from 'node:os';
import type { HostSource, HostSpec, JobRequest } from '../model/types.js';
import { parseHostFile } from '../cli/hostlist.js';
import { TsmpiError, ERROR_CODES } from '../util/errors.js';

export interface HostDeps {
  readFile(path: string): string;
  hostname?: string;
}

export interface ResolvedHosts {
  hosts: HostSpec[];
  source: HostSource;
}

export function resolveHosts(req: Pick<JobRequest, 'hosts' | 'hostfile'>, deps: HostDeps): ResolvedHosts {
  if (req.hosts && req.hosts.length > 0) return { hosts: req.hosts, source: { kind: 'cmdline' } };
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
    return { hosts, source: { kind: 'hostfile', path: req.hostfile } };
  }
  return { hosts: [{ name: deps.hostname ?? os.hostname() }], source: { kind: 'default' } };
}

/** Ranks to run without -n: every slot once (a host without a count has one slot). */
export function defaultRankCount(hosts: readonly HostSpec[], ppn: number | undefined): number {
  return hosts.reduce((n, h) => n + (ppn ?? h.slots ?? 1), 0);
}
