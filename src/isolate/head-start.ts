// The cgroup.procs file bin/tsmpiexec.js moved this process into (its own cgroup) before loading the bundle, to
// start the kernel's first-migration wait early (see bin/cgroup-head-start.js). Isolation writes it again.
let file: string | undefined;

export function setCgroupHeadStart(procsFile: string): void {
  file = procsFile;
}

export function cgroupHeadStart(): string | undefined {
  return file;
}
