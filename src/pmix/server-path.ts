// Where the PMIx server helper is (native/pmix-server.c, built by make build only where libpmix is installed).
import { nativeArtifact, type NativeArtifact } from '../util/native-artifact.js';

export const PMIX_SERVER_RELPATH = 'dist/native/tsmpiexec-pmix-server';

export type PmixServer = NativeArtifact;

/**
 * TSMPIEXEC_PMIX_SERVER when set (empty: none, so Open MPI takes the PMI-1 route), else the helper make build
 * compiled next to the launcher.
 */
export function pmixServer(env: Record<string, string | undefined>): PmixServer {
  return nativeArtifact(env, {
    variable: 'TSMPIEXEC_PMIX_SERVER',
    relpath: PMIX_SERVER_RELPATH,
    use: 'exec',
    unbuilt: `it is not built (${PMIX_SERVER_RELPATH}: make build compiles it where libpmix-dev is installed)`,
  });
}
