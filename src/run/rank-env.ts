// The environment each rank starts with: the launcher's environment filtered by -genv*/-env* policy, minus
// any PMI variables inherited from an outer launcher (so a rank never talks to the wrong server), plus the
// explicit -genv/-env settings, plus the PMI variables of this job.
import type { EnvPolicy, EnvSpec } from '../model/types.js';
import { isSlurmTaskVar } from '../launch/slurm.js';

/** Inherited names that belong to some other PMI server and must never reach our ranks. */
export function isForeignPmiVar(name: string): boolean {
  return (
    name.startsWith('PMI_') ||
    name.startsWith('PMIX_') ||
    name.startsWith('PMI2_') ||
    name === 'MPI_LOCALRANKID' ||
    name === 'MPI_LOCALNRANKS' ||
    name.startsWith('HYDI_') ||
    name.startsWith('HYDRA_') ||
    name.startsWith('OMPI_COMM_WORLD') ||
    name.startsWith('TSMPIEXEC_')
  );
}

export function applyPolicy(launcherEnv: Record<string, string | undefined>, policy: EnvPolicy): Record<string, string> {
  const out: Record<string, string> = {};
  const keep = (k: string): boolean => {
    // an outer srun task's identity (SLURM_PROCID=0 in every rank, ...) is not our ranks', whatever the launcher
    if (isForeignPmiVar(k) || isSlurmTaskVar(k)) return false;
    if (policy.kind === 'all') return true;
    if (policy.kind === 'none') return false;
    return policy.names.includes(k);
  };
  for (const [k, v] of Object.entries(launcherEnv)) if (v !== undefined && keep(k)) out[k] = v;
  return out;
}

/** The environment of every rank of one segment, before per-rank PMI variables. */
export function segmentEnv(
  launcherEnv: Record<string, string | undefined>,
  genv: EnvSpec,
  segEnv: EnvSpec,
): Record<string, string> {
  const policy = segEnv.policy ?? genv.policy ?? { kind: 'all' };
  const env = applyPolicy(launcherEnv, policy);
  for (const [k, v] of genv.set) env[k] = v;
  for (const [k, v] of segEnv.set) env[k] = v;
  return env;
}

export interface PmiVars {
  rank: number;
  size: number;
  localRank: number;
  localSize: number;
  /** 'fd': PMI_FD=3 (the socketpair at fd 3). */
  fd?: number;
  port?: string;
  spawned?: boolean;
}

export function pmiEnv(v: PmiVars): Record<string, string> {
  const env: Record<string, string> = {
    PMI_RANK: String(v.rank),
    PMI_SIZE: String(v.size),
    MPI_LOCALRANKID: String(v.localRank),
    MPI_LOCALNRANKS: String(v.localSize),
  };
  if (v.fd !== undefined) env.PMI_FD = String(v.fd);
  if (v.port !== undefined) {
    env.PMI_PORT = v.port;
    env.PMI_ID = String(v.rank);
  }
  if (v.spawned) env.PMI_SPAWNED = '1';
  return env;
}

/**
 * A rank's environment switched from PMI_FD to PMI_PORT (the proxy knows the port only once it listens):
 * PMI_FD goes, PMI_PORT and PMI_ID (= the global rank, what the initack / fullinit claims) come, PMI_RANK and
 * PMI_SIZE stay. PMI_FD must go: MPICH and libpmi2 try it first.
 */
export function withPmiPort(env: Record<string, string>, port: string, rank: number): Record<string, string> {
  const out: Record<string, string> = { ...env };
  delete out.PMI_FD;
  out.PMI_PORT = port;
  out.PMI_ID = String(rank);
  out.PMI_RANK ??= String(rank);
  return out;
}
