// A host's processing units as binding needs them: which core, package and NUMA node each CPU belongs to.

export interface Pu {
  /** The CPU number the OS uses (sched_setaffinity, taskset). */
  cpu: number;
  /** Identifies the core within the host (unique across packages). */
  core: string;
  package: number;
  /** NUMA node, or -1 when the host reports none. */
  numa: number;
}

export interface Topology {
  /** Sorted by CPU number. */
  pus: Pu[];
  /** Where it was read from, for --verbose. */
  source: 'hwloc-xml' | 'sysfs' | 'flat';
}
