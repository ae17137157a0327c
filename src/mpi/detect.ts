// Which MPI a rank's program uses, found from the files alone (nothing is run): an ELF program by the MPI
// library it links (directly or through one of its own libraries), a Python program by the mpi4py it would
// import. What is found decides what the ranks are given (src/mpi/env.ts) and whether a rank that never spoke
// PMI means a job that silently fell apart into singletons (src/run/job.ts).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readElfDeps } from './elf.js';

export type MpiFamily = 'openmpi' | 'mpich';

export interface MpiDetection {
  /** The MPI the program uses, when known. */
  family?: MpiFamily;
  /** The program is an MPI program (it links an MPI, or its script imports mpi4py), even if which is not known. */
  usesMpi: boolean;
  /** How it was found, for --verbose and --dry-run: `libmpi.so.40`, `mpi4py (…/MPI.cpython-311….so: libmpi.so.40)`. */
  via: string;
}

export const FAMILY_NAME: Record<MpiFamily, string> = { openmpi: 'Open MPI', mpich: 'MPICH' };

/** The family an MPI library's soname belongs to (MPICH's ABI is shared by Intel MPI and MVAPICH). */
export function familyOfSoname(soname: string): MpiFamily | undefined {
  if (/^libmpi\.so\.4\d(\.|$)/.test(soname) || /^libopen-(rte|pal)\.so/.test(soname)) return 'openmpi';
  if (/^libmpich\.so(\.|$)/.test(soname) || /^libmpi\.so\.12(\.|$)/.test(soname) || /^libmpi_mt\.so/.test(soname)) return 'mpich';
  return undefined;
}

/** Libraries every program links: never an MPI, never worth opening. */
function isSystemLib(soname: string): boolean {
  return /^(libc|libm|libdl|librt|libpthread|libgcc_s|libstdc\+\+|libz|libutil|libcrypt|libresolv)\.so/.test(soname) || soname.startsWith('ld-linux');
}

const MACHINE_DIRS = ['/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu', '/lib/aarch64-linux-gnu', '/usr/lib/aarch64-linux-gnu'];
const DEFAULT_DIRS = [...MACHINE_DIRS, '/lib64', '/usr/lib64', '/lib', '/usr/lib', '/usr/local/lib'];
/** How many libraries one detection may open (deep dependency trees are not followed to the end). */
const MAX_FILES = 48;

function findLib(soname: string, dirs: readonly string[]): string | undefined {
  if (soname.includes('/')) return fs.existsSync(soname) ? soname : undefined;
  for (const d of dirs) {
    const p = path.join(d, soname);
    if (fs.existsSync(p)) return p;
  }
  return undefined;
}

/**
 * The MPI an ELF file links: its own DT_NEEDED first, then (breadth first, two levels) the libraries those
 * need. undefined family with usesMpi false: no MPI found (or not an ELF file).
 */
export function detectElf(file: string, ldLibraryPath: string | undefined): MpiDetection | undefined {
  const top = readElfDeps(file);
  if (!top) return undefined;
  const envDirs = (ldLibraryPath ?? '').split(':').filter((d) => d !== '');
  let opened = 1;
  let level: Array<{ file: string; needed: string[]; runpath: string[] }> = [{ file, ...top }];
  const seen = new Set<string>();
  for (let depth = 0; depth < 3 && level.length > 0; depth++) {
    const next: typeof level = [];
    for (const item of level) {
      for (const soname of item.needed) {
        const fam = familyOfSoname(soname);
        if (fam) return { family: fam, usesMpi: true, via: depth === 0 ? soname : `${soname}, through ${path.basename(item.file)}` };
      }
      if (depth === 2) continue;
      const origin = path.dirname(item.file);
      const dirs = [...item.runpath.map((d) => d.replace(/\$(ORIGIN|\{ORIGIN\})/g, origin)), ...envDirs, ...DEFAULT_DIRS];
      for (const soname of item.needed) {
        if (isSystemLib(soname) || seen.has(soname) || opened >= MAX_FILES) continue;
        seen.add(soname);
        const p = findLib(soname, dirs);
        if (!p) continue;
        opened++;
        const deps = readElfDeps(p);
        if (deps) next.push({ file: p, ...deps });
      }
    }
    level = next;
  }
  return { usesMpi: false, via: 'no MPI library linked' };
}

/** A Python interpreter, by the name it was started with or the file it resolves to. */
function pythonVersion(file: string): { real: string; version?: string } | undefined {
  let real = file;
  try {
    real = fs.realpathSync(file);
  } catch {
    /* keep the path as given */
  }
  for (const name of [path.basename(real), path.basename(file)]) {
    const m = /^python(\d(?:\.\d+)?)?$/.exec(name);
    if (m) return { real, version: m[1]?.includes('.') ? m[1] : undefined };
  }
  return undefined;
}

/** Whether a Python command line uses mpi4py: `-c` code or `-m` module naming it, or a script that imports it. */
function pythonUsesMpi4py(args: readonly string[], cwd: string): boolean {
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === '-c') return (args[i + 1] ?? '').includes('mpi4py');
    if (a === '-m') return (args[i + 1] ?? '').startsWith('mpi4py');
    if (a.startsWith('-c')) return a.includes('mpi4py');
    if (a === '-W' || a === '-X' || a === '--check-hash-based-pycs') {
      i++;
      continue;
    }
    if (a.startsWith('-')) continue;
    try {
      const fd = fs.openSync(path.resolve(cwd, a), 'r');
      try {
        const b = Buffer.alloc(1 << 20);
        const n = fs.readSync(fd, b, 0, b.length, 0);
        return b.subarray(0, n).includes('mpi4py');
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      return false;
    }
  }
  return false;
}

/** Directories where this interpreter's mpi4py may be installed, most specific first. */
function sitePackages(file: string, real: string, version: string | undefined, env: Record<string, string | undefined>): string[] {
  const out: string[] = (env.PYTHONPATH ?? '').split(':').filter((d) => d !== '');
  const versions = version ? [version] : [];
  if (!version) {
    // python3 itself: the versioned directories that exist next to it.
    for (const prefix of [path.dirname(path.dirname(real)), path.dirname(path.dirname(file))]) {
      try {
        for (const d of fs.readdirSync(path.join(prefix, 'lib'))) {
          const m = /^python(\d\.\d+)$/.exec(d);
          if (m?.[1]) versions.push(m[1]);
        }
      } catch {
        /* no lib directory */
      }
    }
  }
  const home = env.HOME ?? os.homedir();
  for (const prefix of [...new Set([path.dirname(path.dirname(file)), path.dirname(path.dirname(real))])]) {
    for (const v of versions) {
      out.push(path.join(home, '.local/lib', `python${v}`, 'site-packages'));
      out.push(path.join(prefix, 'lib', `python${v}`, 'site-packages'));
      out.push(path.join(prefix, 'local/lib', `python${v}`, 'dist-packages'));
      out.push(path.join(prefix, 'lib', `python${v}`, 'dist-packages'));
    }
    out.push(path.join(prefix, 'lib/python3/dist-packages'));
  }
  return [...new Set(out)];
}

/** The MPI of a Python command line's mpi4py; undefined when the program is not a Python interpreter. */
export function detectPython(file: string, args: readonly string[], cwd: string, env: Record<string, string | undefined>): MpiDetection | undefined {
  const py = pythonVersion(file);
  if (!py) return undefined;
  if (!pythonUsesMpi4py(args, cwd)) return { usesMpi: false, via: 'Python without mpi4py' };
  for (const dir of sitePackages(file, py.real, py.version, env)) {
    const pkg = path.join(dir, 'mpi4py');
    let names: string[];
    try {
      names = fs.readdirSync(pkg);
    } catch {
      continue;
    }
    const ext = names.find((n) => /^MPI\..*so$/.test(n));
    if (!ext) continue;
    const d = detectElf(path.join(pkg, ext), env.LD_LIBRARY_PATH);
    if (d?.family) return { family: d.family, usesMpi: true, via: `mpi4py (${path.join(pkg, ext)}: ${d.via})` };
  }
  return { usesMpi: true, via: 'mpi4py, whose MPI library was not found' };
}

/** What a rank's program is, as far as MPI goes. */
export function detectMpi(file: string, args: readonly string[], cwd: string, env: Record<string, string | undefined>): MpiDetection {
  return detectPython(file, args, cwd, env) ?? detectElf(file, env.LD_LIBRARY_PATH) ?? { usesMpi: false, via: 'not an ELF program' };
}
