// The optional native helper (native/helper.c): one exec that does what the isolation's shell recipes do in
// three to six (join cgroups + enter the private /tmp + exec a rank; create the /tmp namespace holder).
// `make build` compiles it to dist/native/tsmpiexec-helper when a C compiler is present; without it, or with
// TSMPIEXEC_NATIVE=0, every recipe runs through sh/nsenter/setpriv/unshare/mount as before. Nothing else
// changes: the same cgroups, the same namespace, the same messages and exit codes.
import fs from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../util/package-root.js';

export const NATIVE_HELPER_RELPATH = 'dist/native/tsmpiexec-helper';

/** The helper's absolute path when it is built, executable and not switched off; else undefined. */
export function findNativeHelper(env: Record<string, string | undefined>): string | undefined {
  if (env.TSMPIEXEC_NATIVE === '0') return undefined;
  let p: string;
  try {
    p = path.join(packageRoot(), NATIVE_HELPER_RELPATH);
    fs.accessSync(p, fs.constants.X_OK);
  } catch {
    return undefined;
  }
  return p;
}
