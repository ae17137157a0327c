// A Slurm allocation from the variables slurmd sets for a job: SLURM_JOB_NODELIST (compressed, `n[01-04]`)
// with SLURM_TASKS_PER_NODE (`2(x3),1`). Inside a job step (tsmpiexec itself started by srun),
// SLURM_TASKS_PER_NODE and SLURM_NTASKS describe that step (often one task), not the job, so there the slots
// are the job's CPUs per node (SLURM_JOB_CPUS_PER_NODE, which srun leaves alone): the tsmpiexec in
// `srun -n1 tsmpiexec ./a` gets the whole allocation, as it would in the batch script itself.
import { BadPart, expandCounts, expandHostList } from './hostlist.js';
import { HostTally, allocationError, envValue, excerpt, type BatchAllocation, type Env } from './types.js';

/** SLURM_JOB_NODELIST, or SLURM_NODELIST on old releases; undefined outside Slurm. */
export function slurmNodelistVariable(env: Env): string | undefined {
  if (envValue(env, 'SLURM_JOB_NODELIST') !== undefined) return 'SLURM_JOB_NODELIST';
  if (envValue(env, 'SLURM_NODELIST') !== undefined) return 'SLURM_NODELIST';
  return undefined;
}

/** Inside an allocation srun can start steps in: the default launcher is then `slurm`. */
export function insideSlurmJob(env: Env): boolean {
  return envValue(env, 'SLURM_JOB_ID') !== undefined && envValue(env, 'SLURM_JOB_NODELIST') !== undefined;
}

/** Inside a job step (srun), not the batch script or an salloc shell. */
export function insideSlurmStep(env: Env): boolean {
  return envValue(env, 'SLURM_STEP_ID') !== undefined || envValue(env, 'SLURM_STEPID') !== undefined;
}

function counts(env: Env, variable: string): number[] {
  try {
    return expandCounts(env[variable] ?? '');
  } catch (e) {
    if (e instanceof BadPart) throw allocationError(variable, `${e.message} in '${excerpt(env[variable] ?? '')}'`);
    throw e;
  }
}

export function slurmAllocation(env: Env): BatchAllocation | undefined {
  const listVar = slurmNodelistVariable(env);
  if (listVar === undefined) return undefined;
  const listText = env[listVar] ?? '';
  let names: string[];
  try {
    names = expandHostList(listText);
  } catch (e) {
    if (e instanceof BadPart) {
      const whole = `'${excerpt(listText)}'`;
      throw allocationError(listVar, e.message.includes(whole) ? e.message : `${e.message} (in ${whole})`);
    }
    throw e;
  }
  const step = insideSlurmStep(env);
  const cpusVar = envValue(env, 'SLURM_JOB_CPUS_PER_NODE') !== undefined ? 'SLURM_JOB_CPUS_PER_NODE' : undefined;
  const tasksVar = envValue(env, 'SLURM_TASKS_PER_NODE') !== undefined ? 'SLURM_TASKS_PER_NODE' : undefined;
  const slotVar = step ? (cpusVar ?? undefined) : (tasksVar ?? cpusVar);
  const per = slotVar === undefined ? names.map(() => 1) : counts(env, slotVar);
  if (per.length !== names.length) {
    throw allocationError(slotVar ?? listVar, `'${excerpt(env[slotVar ?? listVar] ?? '')}' gives ${per.length} count${per.length === 1 ? '' : 's'} for the ${names.length} host${names.length === 1 ? '' : 's'} of ${listVar}`);
  }
  const tally = new HostTally();
  names.forEach((n, i) => {
    const k = per[i] ?? 0;
    if (k > 0) tally.add(n, k);
  });
  if (tally.hosts.length === 0) throw allocationError(slotVar ?? listVar, 'no host has a slot');
  let cpusPerHost: Record<string, number> | undefined;
  if (cpusVar !== undefined) {
    const cpus = counts(env, cpusVar);
    if (cpus.length === names.length) {
      cpusPerHost = {};
      names.forEach((n, i) => {
        if (cpusPerHost) cpusPerHost[n] = cpus[i] ?? 1;
      });
    }
  }
  const jobId = envValue(env, 'SLURM_JOB_ID') ?? envValue(env, 'SLURM_JOBID');
  const alloc: BatchAllocation = {
    system: 'Slurm',
    variables: slotVar === undefined ? [listVar] : [listVar, slotVar],
    hosts: tally.hosts,
    slots: tally.total,
  };
  if (jobId !== undefined) alloc.jobId = jobId;
  if (cpusPerHost) alloc.cpusPerHost = cpusPerHost;
  if (step) {
    alloc.note =
      slotVar === undefined
        ? 'inside a job step, without SLURM_JOB_CPUS_PER_NODE: one slot per node'
        : 'inside a job step: slots are the job\'s CPUs per node, SLURM_TASKS_PER_NODE describes the step';
  } else if (slotVar === undefined) {
    alloc.note = 'neither SLURM_TASKS_PER_NODE nor SLURM_JOB_CPUS_PER_NODE is set: one slot per node';
  }
  return alloc;
}
