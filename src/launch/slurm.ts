// The Slurm launcher: each remote proxy is one task of its own job step inside the existing allocation,
//   srun --jobid=J --overlap -N1 -n1 -w HOST --export=ALL --kill-on-bad-exit=1 --unbuffered --mpi=none ...
// so Slurm accounts for it, confines it, and kills it with the job (never ssh, setsid or systemd-run here).
//
// The control channel is srun's own stdin/stdout. Checked on Slurm 22.05 (test/e2e/slurm-cluster.test.ts
// keeps checking it): with --unbuffered, srun and slurmstepd pass bytes through unchanged and at once, both
// ways (NUL, CR, 0xFF, frames without a newline); without it slurmstepd holds task output back until a
// newline, which would stall a binary frame forever. Stdin closing reaches the proxy as EOF. So no TCP
// connect-back and no secret are needed: only we hold the pipes to srun, as with ssh.
//
// One hazard written down: srun is two processes (22.05: the one we spawn and a helper it forks). SIGKILL of
// ours alone is survived by the helper, which cancels the step; but when both die at once (a process-group
// SIGKILL, the OOM killer) the step keeps running with the proxy in it, and the proxy's stdin never sees EOF:
// an orphaned proxy with live ranks until the job ends (seen here with srun outside an allocation). So a
// SIGKILL asked of the launched child becomes SIGTERM first (srun's documented way to cancel its step, which
// kills the proxy, whose reaper kills the ranks), and SIGKILL only if srun is still there after a grace period.
import type { ChildProcess } from 'node:child_process';
import { spawnWithTail, type LaunchedProxy, type Launcher } from './launcher.js';

/** How long srun gets to cancel its step after SIGTERM before it is killed outright. */
export const SRUN_TERM_GRACE_MS = 5000;

/**
 * srun reads these as defaults for its own options (srun(1), INPUT ENVIRONMENT VARIABLES); inherited from
 * the batch script or an outer step they would reshape or contradict the one-task proxy step.
 */
const SRUN_INPUT_VARS = [
  'SLURM_NTASKS', 'SLURM_NPROCS', 'SLURM_NNODES', 'SLURM_NTASKS_PER_NODE', 'SLURM_NTASKS_PER_SOCKET',
  'SLURM_NTASKS_PER_CORE', 'SLURM_NTASKS_PER_GPU', 'SLURM_NTASKS_PER_TRES', 'SLURM_CPUS_PER_TASK',
  'SLURM_CPUS_PER_GPU', 'SLURM_TRES_PER_TASK', 'SLURM_GPUS_PER_TASK', 'SLURM_DISTRIBUTION', 'SLURM_ARBITRARY',
  'SLURM_HOSTFILE', 'SLURM_EXCLUSIVE', 'SLURM_OVERCOMMIT', 'SLURM_CPU_BIND', 'SLURM_MEM_BIND',
  'SLURM_MEM_PER_CPU', 'SLURM_MEM_PER_GPU', 'SLURM_MEM_PER_NODE', 'SLURM_HINT', 'SLURM_THREADS_PER_CORE',
  'SLURM_EXACT', 'SLURM_WHOLE', 'SLURM_MPI_TYPE', 'SLURM_EXPORT_ENV', 'SLURM_STDINMODE', 'SLURM_STDOUTMODE',
  'SLURM_STDERRMODE', 'SLURM_LABELIO', 'SLURM_UNBUFFEREDIO', 'SLURM_PTY', 'SLURM_KILL_BAD_EXIT',
  'SLURM_WAIT', 'SLURM_OPEN_MODE', 'SLURM_NO_KILL', 'SLURM_SPREAD_JOB', 'SLURM_USE_MIN_NODES',
];

/** The environment srun runs with: ours, minus the variables that would change the proxy step's shape. */
export function srunEnv(env: Readonly<Record<string, string | undefined>>): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined || SRUN_INPUT_VARS.includes(k) || k.startsWith('SLURM_CPU_BIND') || k.startsWith('SLURM_MEM_BIND')) continue;
    out[k] = v;
  }
  return out;
}

/**
 * Variables an outer srun (or the batch step) sets for its own task, which would lie to our ranks: task
 * identity (SLURM_PROCID = 0 in every rank would make Slurm-aware libraries think they are all rank 0),
 * the step and its srun's address, PMI plugin settings, and the node-specific ones of the controller's node.
 * The job-level SLURM_JOB_* variables stay. (PMI_* / PMIX_* are already dropped by run/rank-env.ts.)
 */
export function isSlurmTaskVar(name: string): boolean {
  if (!name.startsWith('SLURM') ) return false;
  return (
    name.startsWith('SLURM_STEP_') ||
    name.startsWith('SLURM_SRUN_COMM_') ||
    name.startsWith('SLURM_PMIX') ||
    name.startsWith('SLURM_PMI2') ||
    name.startsWith('SLURM_CPU_BIND') ||
    name.startsWith('SLURM_TOPOLOGY_ADDR') ||
    [
      'SLURM_STEPID', 'SLURM_PROCID', 'SLURM_LOCALID', 'SLURM_NODEID', 'SLURM_GTIDS', 'SLURM_TASK_PID',
      'SLURM_LAUNCH_NODE_IPADDR', 'SLURM_MPI_TYPE', 'SLURM_CPUS_ON_NODE', 'SLURMD_NODENAME', 'SLURM_PRIO_PROCESS',
      'SLURM_UMASK', 'SLURM_DISTRIBUTION',
    ].includes(name)
  );
}

export interface SlurmLauncherOptions {
  /** -launcher-exec: srun's path (and extra options) instead of `srun`. */
  exec?: readonly string[];
  jobId: string;
  /** The job's CPUs on each host: the proxy's step asks for all of them, so its ranks are not squeezed onto one. */
  cpusPerHost?: Readonly<Record<string, number>>;
}

export function srunArgv(o: SlurmLauncherOptions, host: string, proxyArgv: readonly string[]): string[] {
  const base = o.exec && o.exec.length > 0 ? [...o.exec] : ['srun'];
  const cpus = o.cpusPerHost?.[host];
  return [
    ...base,
    `--jobid=${o.jobId}`,
    '--overlap',
    '--nodes=1',
    '--ntasks=1',
    `--nodelist=${host}`,
    ...(cpus !== undefined && cpus > 0 ? [`--cpus-per-task=${cpus}`] : []),
    '--cpu-bind=none',
    '--mpi=none',
    '--export=ALL',
    '--kill-on-bad-exit=1',
    '--unbuffered',
    '--job-name=tsmpiexec-proxy',
    ...proxyArgv,
  ];
}

/** SIGKILL of srun orphans its step (see the header): turn it into SIGTERM, then SIGKILL after a grace period. */
export function softenKill(child: ChildProcess, graceMs = SRUN_TERM_GRACE_MS): void {
  const hardKill = child.kill.bind(child);
  let timer: NodeJS.Timeout | undefined;
  child.once('exit', () => clearTimeout(timer));
  child.kill = ((signal?: NodeJS.Signals | number): boolean => {
    const alive = child.exitCode === null && child.signalCode === null;
    if (!alive || (signal !== 'SIGKILL' && signal !== 9)) return hardKill(signal);
    if (timer !== undefined) return true;
    timer = setTimeout(() => hardKill('SIGKILL'), graceMs);
    timer.unref();
    return hardKill('SIGTERM');
  }) as ChildProcess['kill'];
}

export class SlurmLauncher implements Launcher {
  readonly name = 'slurm';
  constructor(private readonly o: SlurmLauncherOptions) {}
  start(host: string, proxyArgv: string[], env: Record<string, string | undefined>): LaunchedProxy {
    const argv = srunArgv(this.o, host, proxyArgv);
    const lp = spawnWithTail(argv[0] as string, argv.slice(1), srunEnv(env));
    softenKill(lp.child);
    return lp;
  }
}
