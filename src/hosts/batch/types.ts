// What a batch system's environment says about the job's hosts, in one shape for every system, plus the
// one error all the parsers throw: a single line naming the variable and the part that could not be read.
import type { HostSpec } from '../../model/types.js';
import { ERROR_CODES, TsmpiError } from '../../util/errors.js';

export type BatchSystem = 'Slurm' | 'PBS' | 'LSF' | 'Grid Engine' | 'HTCondor';

export interface BatchAllocation {
  system: BatchSystem;
  /** The variables the hosts and slot counts were read from, in the order used (for --verbose, --dry-run). */
  variables: string[];
  /** Hosts in the batch system's order, each with its slot count; a host appears once. */
  hosts: HostSpec[];
  /** Sum of the slot counts: the default -n and the limit without --oversubscribe. */
  slots: number;
  jobId?: string;
  /** Slurm: CPUs of the job on each host (SLURM_JOB_CPUS_PER_NODE), so a proxy's step can use all of them. */
  cpusPerHost?: Record<string, number>;
  /** HTCondor: the job's scratch directory (where a private /tmp belongs). */
  scratchDir?: string;
  /** One remark for --verbose, e.g. why slots are CPUs rather than tasks. */
  note?: string;
}

/** Environment as the parsers see it (process.env in main, a captured set in tests). */
export type Env = Readonly<Record<string, string | undefined>>;

/** The value of a variable, or undefined when unset or empty. */
export function envValue(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v;
}

const HINT = 'the batch system set a value tsmpiexec cannot read; give the hosts yourself with -hosts or -f to bypass it';

/** `tsmpiexec: VARIABLE: what is wrong with 'the bad part' [allocation]`. */
export function allocationError(variable: string, message: string): TsmpiError {
  return new TsmpiError(ERROR_CODES.ALLOCATION, `${variable}: ${message}`, { hint: HINT, exitStatus: 2 });
}

/** A value shortened for an error line (host lists can be kilobytes long). */
export function excerpt(text: string, max = 60): string {
  const t = text.replace(/\s+/g, ' ').trim();
  return t.length <= max ? t : `${t.slice(0, max - 3)}...`;
}

const HOST_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;

export function isHostName(name: string): boolean {
  return HOST_NAME.test(name);
}

/** Appends slots to a host list, merging a host named again into its first entry. */
export class HostTally {
  readonly hosts: HostSpec[] = [];
  private readonly index = new Map<string, HostSpec>();
  add(name: string, slots: number): void {
    const seen = this.index.get(name);
    if (seen) {
      seen.slots = (seen.slots ?? 0) + slots;
      return;
    }
    const h: HostSpec = { name, slots };
    this.index.set(name, h);
    this.hosts.push(h);
  }
  get total(): number {
    return this.hosts.reduce((n, h) => n + (h.slots ?? 0), 0);
  }
}
