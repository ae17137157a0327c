// The optional native helper (native/helper.c): one exec that does what the isolation's shell recipes do in
// three to six (join cgroups + enter the private /tmp + exec a rank; create the /tmp namespace holder).
// `make build` compiles it to dist/native/tsmpiexec-helper when a C compiler is present; without it, or with
// TSMPIEXEC_NATIVE=0, every recipe runs through sh/nsenter/setpriv/unshare/mount as before. Nothing else
// changes: the same cgroups, the same namespace, the same messages and exit codes.
import fs from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../util/package-root.js';

export const NATIVE_HELPER_RELPATH = 'dist/native/tsmpiexec-helper';

/** ELF e_machine of each Node architecture (a helper built on another machine of a shared file system). */
const ELF_MACHINE: Partial<Record<string, number>> = { x64: 62, arm64: 183, ia32: 3, arm: 40, ppc64: 21, s390x: 22, riscv64: 243, loong64: 258 };

/** Whether the file is an ELF executable for this machine (or an architecture we have no number for). */
export function runsHere(header: Buffer, arch: string = process.arch): boolean {
  if (header.length < 20 || header.readUInt32BE(0) !== 0x7f454c46) return false;
  const want = ELF_MACHINE[arch];
  if (want === undefined) return true;
  const machine = header[5] === 2 ? header.readUInt16BE(18) : header.readUInt16LE(18);
  return machine === want;
}

let cached: { path: string | undefined } | undefined;

/** The helper's absolute path when it is built for this machine, executable and not switched off; else undefined. */
export function findNativeHelper(env: Record<string, string | undefined>): string | undefined {
  if (env.TSMPIEXEC_NATIVE === '0') return undefined;
  cached ??= { path: locate() };
  return cached.path;
}

function locate(): string | undefined {
  try {
    const p = path.join(packageRoot(), NATIVE_HELPER_RELPATH);
    fs.accessSync(p, fs.constants.X_OK);
    const fd = fs.openSync(p, 'r');
    const header = Buffer.alloc(20);
    try {
      fs.readSync(fd, header, 0, 20, 0);
    } finally {
      fs.closeSync(fd);
    }
    return runsHere(header) ? p : undefined;
  } catch {
    return undefined;
  }
}
