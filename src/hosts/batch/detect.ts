// Which batch system (if any) this tsmpiexec runs under, and its allocation. Like Hydra, the first system
// whose variables are present wins, in the order Slurm, LSF, Grid Engine, PBS, HTCondor (Slurm first: its
// spank_pbs plugin sets PBS_* variables too). A user's -hosts or -f is handled before this is asked.
import { condorAllocation } from './condor.js';
import { parseLsfHosts, parsePbsNodefile, parseSgeHostfile, readNamedFile } from './files.js';
import { slurmAllocation, slurmNodelistVariable } from './slurm.js';
import { envValue, type BatchAllocation, type BatchSystem, type Env } from './types.js';

export interface DetectDeps {
  readFile(path: string): string;
  hostname: string;
}

/** The batch system whose variables are present, without reading them (for "ignored because of -hosts"). */
export function batchSystemPresent(env: Env): { system: BatchSystem; variable: string } | undefined {
  const slurm = slurmNodelistVariable(env);
  if (slurm !== undefined) return { system: 'Slurm', variable: slurm };
  if (envValue(env, 'LSB_MCPU_HOSTS') !== undefined) return { system: 'LSF', variable: 'LSB_MCPU_HOSTS' };
  if (envValue(env, 'PE_HOSTFILE') !== undefined) return { system: 'Grid Engine', variable: 'PE_HOSTFILE' };
  if (envValue(env, 'PBS_NODEFILE') !== undefined) return { system: 'PBS', variable: 'PBS_NODEFILE' };
  if (envValue(env, '_CONDOR_SCRATCH_DIR') !== undefined) return { system: 'HTCondor', variable: '_CONDOR_SCRATCH_DIR' };
  return undefined;
}

/** The allocation, or undefined outside any batch system. Malformed variables throw an allocation error. */
export function detectAllocation(env: Env, deps: DetectDeps): BatchAllocation | undefined {
  const present = batchSystemPresent(env);
  if (present === undefined) return undefined;
  switch (present.system) {
    case 'Slurm':
      return slurmAllocation(env);
    case 'LSF':
      return parseLsfHosts(env.LSB_MCPU_HOSTS ?? '', envValue(env, 'LSB_JOBID'));
    case 'Grid Engine': {
      const path = env.PE_HOSTFILE ?? '';
      return parseSgeHostfile(readNamedFile('PE_HOSTFILE', path, deps.readFile), path, envValue(env, 'JOB_ID'));
    }
    case 'PBS': {
      const path = env.PBS_NODEFILE ?? '';
      return parsePbsNodefile(readNamedFile('PBS_NODEFILE', path, deps.readFile), path, envValue(env, 'PBS_JOBID'));
    }
    case 'HTCondor':
      return condorAllocation(env, deps.hostname, deps.readFile);
  }
}

/**
 * `the Slurm allocation of job 42 (SLURM_JOB_NODELIST, SLURM_TASKS_PER_NODE): 2 hosts, 6 slots`: variable
 * names, never their values (--verbose promises that; a job id is not a secret).
 */
export function describeAllocation(a: BatchAllocation): string {
  const job = a.jobId !== undefined ? ` of job ${a.jobId}` : '';
  const size = `${a.hosts.length} host${a.hosts.length === 1 ? '' : 's'}, ${a.slots} slot${a.slots === 1 ? '' : 's'}`;
  return `the ${a.system} allocation${job} (${a.variables.join(', ')}): ${size}${a.note !== undefined ? `; ${a.note}` : ''}`;
}
