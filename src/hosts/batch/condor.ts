// HTCondor gives a job no host list: `_CONDOR_SCRATCH_DIR` only says we run as an HTCondor job, on this host.
// The slot's CPU count comes from the machine ad (`Cpus = 4`), else the job ad (`RequestCpus = 4`); the
// scratch directory is recorded because that is where a private /tmp belongs.
import { allocationError, envValue, type BatchAllocation, type Env } from './types.js';

/** `Name = 4` from a ClassAd file (one attribute per line); undefined when absent or not a number. */
export function classAdNumber(text: string, name: string): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (!m || (m[1] as string).toLowerCase() !== name.toLowerCase()) continue;
    return /^[0-9]{1,6}$/.test(m[2] as string) && Number(m[2]) >= 1 ? Number(m[2]) : undefined;
  }
  return undefined;
}

export function condorAllocation(env: Env, hostname: string, readFile: (p: string) => string): BatchAllocation | undefined {
  const scratch = envValue(env, '_CONDOR_SCRATCH_DIR');
  if (scratch === undefined) return undefined;
  if (!scratch.startsWith('/')) throw allocationError('_CONDOR_SCRATCH_DIR', `'${scratch}' is not an absolute path`);
  let slots: number | undefined;
  const variables = ['_CONDOR_SCRATCH_DIR'];
  for (const [variable, attr] of [['_CONDOR_MACHINE_AD', 'Cpus'], ['_CONDOR_JOB_AD', 'RequestCpus']] as const) {
    const path = envValue(env, variable);
    if (path === undefined) continue;
    let text: string;
    try {
      text = readFile(path);
    } catch {
      continue; // an unreadable ad only costs us the slot count
    }
    slots = classAdNumber(text, attr);
    if (slots !== undefined) {
      variables.push(`${variable} (${attr})`);
      break;
    }
  }
  const alloc: BatchAllocation = {
    system: 'HTCondor',
    variables,
    hosts: [slots === undefined ? { name: hostname, slots: 1 } : { name: hostname, slots }],
    slots: slots ?? 1,
    scratchDir: scratch,
  };
  if (slots === undefined) alloc.note = 'no Cpus in the machine or job ad: one slot';
  return alloc;
}
