// Where the PMIx server helper is (native/pmix-server.c, built by make build only where libpmix is installed).
import fs from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../util/package-root.js';

export const PMIX_SERVER_RELPATH = 'dist/native/tsmpiexec-pmix-server';

export type PmixServer = { path: string } | { path?: undefined; why: string };

/**
 * TSMPIEXEC_PMIX_SERVER when set (empty: none, so Open MPI takes the PMI-1 route), else the helper make build
 * compiled next to the launcher.
 */
export function pmixServer(env: Record<string, string | undefined>): PmixServer {
  const named = env.TSMPIEXEC_PMIX_SERVER;
  if (named === '') return { why: 'TSMPIEXEC_PMIX_SERVER is empty' };
  const p = named ?? path.join(packageRoot(), PMIX_SERVER_RELPATH);
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return { path: p };
  } catch {
    return {
      why: named !== undefined ? `TSMPIEXEC_PMIX_SERVER names no executable file: ${named}` : `it is not built (${PMIX_SERVER_RELPATH}: make build compiles it where libpmix-dev is installed)`,
    };
  }
}
