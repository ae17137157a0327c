// Where an optional native part built by make build is: the file a variable names (empty: none), else the one
// next to the launcher. Used for the PMI client library and the PMIx server helper.
import fs from 'node:fs';
import path from 'node:path';
import { packageRoot } from './package-root.js';

export type NativeArtifact = { path: string } | { path?: undefined; why: string };

export interface ArtifactSpec {
  /** e.g. TSMPIEXEC_PMI_LIBRARY */
  variable: string;
  /** relative to the package root, e.g. dist/native/libtsmpiexec-pmi.so */
  relpath: string;
  /** what it must be: a readable file (a library) or an executable one (a helper) */
  use: 'read' | 'exec';
  /** why there is none when the variable is unset and the file is missing */
  unbuilt: string;
}

export function nativeArtifact(env: Record<string, string | undefined>, spec: ArtifactSpec): NativeArtifact {
  const named = env[spec.variable];
  if (named === '') return { why: `${spec.variable} is empty` };
  const p = named ?? path.join(packageRoot(), spec.relpath);
  try {
    fs.accessSync(p, spec.use === 'exec' ? fs.constants.X_OK : fs.constants.R_OK);
    return { path: p };
  } catch {
    return { why: named !== undefined ? `${spec.variable} names no ${spec.use === 'exec' ? 'executable' : 'readable'} file: ${named}` : spec.unbuilt };
  }
}
