// What the ranks of one segment are given so their MPI joins our PMI server, from what src/mpi/detect.ts found
// and --mpi: MPICH speaks our wire protocol itself and needs nothing; Open MPI 4 joins over PMIx (its ext3x
// component and the host proxies' PMIx server, src/pmix) where that server is built, else through its `flux`
// component, which loads the PMI library named by FLUX_PMI_LIBRARY_PATH once FLUX_JOB_ID is set.
import { nativeArtifact, type NativeArtifact } from '../util/native-artifact.js';
import { FAMILY_NAME, type MpiDetection, type MpiFamily } from './detect.js';
import type { PmixServer } from '../pmix/server-path.js';

/** pmix: Open MPI over PMIx, never the PMI-1 route. */
export type MpiChoice = 'auto' | 'openmpi' | 'mpich' | 'pmix' | 'none';

export const PMI_LIBRARY_RELPATH = 'dist/native/libtsmpiexec-pmi.so';

/** The PMI client library ranks load, or why there is none. */
export type PmiLibrary = NativeArtifact;

/**
 * The PMI client library: TSMPIEXEC_PMI_LIBRARY when set (empty: none, for tests and for installs that keep it
 * elsewhere), else the one make build compiled next to the launcher.
 */
export function pmiLibrary(env: Record<string, string | undefined>): PmiLibrary {
  return nativeArtifact(env, { variable: 'TSMPIEXEC_PMI_LIBRARY', relpath: PMI_LIBRARY_RELPATH, use: 'read', unbuilt: `it is not built: ${PMI_LIBRARY_RELPATH}` });
}

export interface SegmentWiring {
  /** The MPI the ranks are treated as (after --mpi). */
  family?: MpiFamily;
  /** Variables every rank of the segment gets. */
  env: Record<string, string>;
  /** A rank that ends without ever speaking PMI, in a job of several ranks, is a singleton: fail the job. */
  trapSingletons: boolean;
  /** One line for --verbose. */
  describe: string;
  /** The ranks speak PMIx: every host proxy runs a PMIx server for the job (src/pmix). */
  pmix?: boolean;
  /** What to do about a rank caught as a singleton. */
  singletonHint: string;
}

export interface WiringContext {
  choice: MpiChoice;
  /** Ranks in the job (a one-rank job is a singleton anyway, and right). */
  size: number;
  /** This job's number for MPIs that name files after it (same on every host of the job). */
  jobNumber: number;
  library: PmiLibrary;
  /** The PMIx server helper (absent: not looked for, as without one). */
  pmixServer?: PmixServer;
}

export type WiringResult = { ok: true; wiring: SegmentWiring } | { ok: false; message: string; hint: string };

/** The family the ranks are treated as: what --mpi names, or (auto) what was found; none for --mpi none. */
export function effectiveFamily(choice: MpiChoice, d: MpiDetection): MpiFamily | undefined {
  return choice === 'none' ? undefined : choice === 'auto' ? d.family : choice === 'pmix' ? 'openmpi' : choice;
}

/**
 * Open MPI 4.1 over PMIx. Its ext3x component is a PMIx client, but Open MPI only believes it was launched
 * (rather than being a singleton) when a launch-environment component claims the environment: its Slurm,
 * Flux or JSM one, or mpirun's own daemons. FLUX_JOB_ID makes the Flux one claim it (ess pmi, no binding of
 * its own); OMPI_MCA_pmix=ext3x then picks the PMIx client instead of the Flux PMI-1 loader. The PMIx
 * variables themselves (PMIX_NAMESPACE, PMIX_RANK, PMIX_SERVER_URI*, ...) come from each host's PMIx server.
 */
export function pmixEnv(jobNumber: number): Record<string, string> {
  return { FLUX_JOB_ID: String(jobNumber), OMPI_MCA_pmix: 'ext3x' };
}

export function wireSegment(program: string, d: MpiDetection, ctx: WiringContext): WiringResult {
  if (ctx.choice === 'none') return { ok: true, wiring: { env: {}, trapSingletons: false, describe: `${program}: --mpi none, nothing given to the ranks`, singletonHint: '' } };
  const family = effectiveFamily(ctx.choice, d);
  const found = d.family ? `${FAMILY_NAME[d.family]} (${d.via})` : d.via;
  const how = ctx.choice === 'auto' ? found : `--mpi ${ctx.choice} (detected: ${found})`;
  const trapSingletons = d.usesMpi && ctx.size > 1;
  const singletonHint =
    ctx.choice !== 'auto' && d.family && d.family !== family
      ? `it uses ${found}: leave out --mpi ${ctx.choice}`
      : family === 'openmpi'
        ? 'check that nothing in the environment overrides FLUX_JOB_ID, FLUX_PMI_LIBRARY_PATH or OMPI_MCA_pmix'
        : family === 'mpich'
          ? 'check that nothing in the environment overrides PMI_FD, PMI_PORT or MPIR_CVAR_PMI_VERSION'
          : 'name its MPI with --mpi openmpi or --mpi mpich, or use --mpi none if it does not use MPI';
  if (family === 'openmpi' && (ctx.choice === 'pmix' || ctx.pmixServer?.path !== undefined)) {
    if (ctx.pmixServer?.path === undefined) {
      return {
        ok: false,
        message: `--mpi pmix needs tsmpiexec's PMIx server, and ${ctx.pmixServer?.why ?? 'it was not looked for'}`,
        hint: 'install libpmix-dev and run make build, or leave out --mpi pmix to use the PMI-1 route',
      };
    }
    return {
      ok: true,
      wiring: {
        family,
        env: pmixEnv(ctx.jobNumber),
        trapSingletons,
        describe: `${program}: ${how}; ranks join over PMIx (Open MPI's ext3x component and tsmpiexec's PMIx server)`,
        singletonHint: 'check that nothing in the environment overrides FLUX_JOB_ID, OMPI_MCA_pmix or PMIX_*',
        pmix: true,
      },
    };
  }
  if (family === 'openmpi') {
    if (ctx.library.path === undefined) {
      if (ctx.size === 1) return { ok: true, wiring: { family, env: {}, trapSingletons: false, describe: `${program}: ${how}; one rank, run as a singleton (no PMI library built)`, singletonHint } };
      return {
        ok: false,
        message: `Open MPI ranks join a job only through tsmpiexec's PMI library, and ${ctx.library.why}`,
        hint: 'run make build where a C compiler is installed, or run Open MPI programs with mpirun.openmpi',
      };
    }
    return {
      ok: true,
      wiring: {
        family,
        env: { FLUX_JOB_ID: String(ctx.jobNumber), FLUX_PMI_LIBRARY_PATH: ctx.library.path },
        trapSingletons,
        describe: `${program}: ${how}; ranks load the PMI library through Open MPI's flux component`,
        singletonHint,
      },
    };
  }
  if (family === 'mpich') return { ok: true, wiring: { family, env: {}, trapSingletons, describe: `${program}: ${how}; speaks PMI itself`, singletonHint } };
  return { ok: true, wiring: { env: {}, trapSingletons, describe: `${program}: ${how}`, singletonHint } };
}

/**
 * A job number for FLUX_JOB_ID. Open MPI reads it as its 32-bit job id: a job family (high 16 bits) and a local
 * job (low 16). Its MPI layer drops the top bit of the local part where its PMI layer keeps it, so with that bit
 * set the ranks look up each other's data under a job id nobody wrote. Both halves stay in 1..0x7fff.
 */
export function randomJobNumber(random: () => number = Math.random): number {
  const half = (): number => 1 + Math.floor(random() * 0x7fff);
  return half() * 0x10000 + half();
}
