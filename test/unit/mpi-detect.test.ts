// MPI detection from files alone (src/mpi): real ELF files made with cc here (a stand-in libmpi.so.40 or
// libmpich.so.12 with the right soname, linked directly or through another library), Python with a stand-in
// mpi4py, and the real Open MPI / MPICH hello programs when their compilers are installed.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readElfDeps } from '../../src/mpi/elf.js';
import { detectElf, detectMpi, detectPython, familyOfSoname } from '../../src/mpi/detect.js';
import { randomJobNumber, wireSegment } from '../../src/mpi/wire-up.js';
import { hasCommand } from '../helpers/run.js';

const has = hasCommand;

let dir = '';
const cc = (args: string[]): void => {
  execFileSync('cc', args, { cwd: dir, stdio: 'pipe' });
};

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsmpi-detect-'));
  fs.writeFileSync(path.join(dir, 'lib.c'), 'int mpi_stub(void) { return 1; }\n');
  fs.writeFileSync(path.join(dir, 'mid.c'), 'int mpi_stub(void); int mid(void) { return mpi_stub(); }\n');
  fs.writeFileSync(path.join(dir, 'main.c'), 'int mpi_stub(void); int main(void) { return mpi_stub() - 1; }\n');
  fs.writeFileSync(path.join(dir, 'viamid.c'), 'int mid(void); int main(void) { return mid() - 1; }\n');
  fs.writeFileSync(path.join(dir, 'plain.c'), 'int main(void) { return 0; }\n');
  fs.mkdirSync(path.join(dir, 'ompi'));
  fs.mkdirSync(path.join(dir, 'mpich'));
  cc(['-shared', '-fPIC', '-o', 'ompi/libmpi.so.40', '-Wl,-soname,libmpi.so.40', 'lib.c']);
  cc(['-shared', '-fPIC', '-o', 'mpich/libmpich.so.12', '-Wl,-soname,libmpich.so.12', 'lib.c']);
  cc(['-o', 'ompi-direct', 'main.c', '-Lompi', '-l:libmpi.so.40', '-Wl,-rpath,$ORIGIN/ompi']);
  cc(['-shared', '-fPIC', '-o', 'libmid.so', '-Wl,-soname,libmid.so', 'mid.c', '-Lmpich', '-l:libmpich.so.12', '-Wl,--enable-new-dtags,-rpath,$ORIGIN/mpich']);
  cc(['-o', 'mpich-indirect', 'viamid.c', '-L.', '-lmid', '-Wl,-rpath,$ORIGIN']);
  cc(['-o', 'plain', 'plain.c']);
  // a stand-in mpi4py, found through PYTHONPATH, whose extension links "MPICH"
  fs.mkdirSync(path.join(dir, 'site/mpi4py'), { recursive: true });
  cc(['-shared', '-fPIC', '-o', 'site/mpi4py/MPI.cpython-311-x86_64-linux-gnu.so', 'mid.c', '-Lmpich', '-l:libmpich.so.12', '-Wl,-rpath,$ORIGIN/../../mpich']);
  fs.writeFileSync(path.join(dir, 'script.py'), 'from mpi4py import MPI\nprint(MPI.COMM_WORLD.Get_rank())\n');
  fs.writeFileSync(path.join(dir, 'other.py'), 'print(1)\n');
  fs.symlinkSync('/usr/bin/env', path.join(dir, 'python3'));
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('ELF DT_NEEDED', () => {
  it('reads the needed libraries and the run path of a real program', () => {
    const d = readElfDeps(path.join(dir, 'ompi-direct'));
    expect(d?.needed).toContain('libmpi.so.40');
    expect(d?.needed).toContain('libc.so.6');
    expect(d?.runpath).toEqual(['$ORIGIN/ompi']);
  });
  it('gives undefined for what is not an ELF file, and nothing needed for a truncated one', () => {
    expect(readElfDeps(path.join(dir, 'script.py'))).toBeUndefined();
    expect(readElfDeps(path.join(dir, 'missing'))).toBeUndefined();
    const cut = path.join(dir, 'cut');
    fs.writeFileSync(cut, fs.readFileSync(path.join(dir, 'plain')).subarray(0, 100));
    expect(readElfDeps(cut)).toBeUndefined();
  });
});

describe('which MPI a program uses', () => {
  it('names the family of an MPI soname', () => {
    expect(familyOfSoname('libmpi.so.40')).toBe('openmpi');
    expect(familyOfSoname('libmpich.so.12')).toBe('mpich');
    expect(familyOfSoname('libmpi.so.12')).toBe('mpich');
    expect(familyOfSoname('libmpi.so')).toBeUndefined();
    expect(familyOfSoname('libmpfr.so.6')).toBeUndefined();
  });
  it('finds Open MPI linked directly, MPICH through one of the program\'s own libraries, and none in a plain program', () => {
    expect(detectElf(path.join(dir, 'ompi-direct'), undefined)).toEqual({ family: 'openmpi', usesMpi: true, via: 'libmpi.so.40' });
    expect(detectElf(path.join(dir, 'mpich-indirect'), undefined)).toEqual({ family: 'mpich', usesMpi: true, via: 'libmpich.so.12, through libmid.so' });
    expect(detectElf(path.join(dir, 'plain'), undefined)?.usesMpi).toBe(false);
  });
  it('finds the MPI of a Python program through its mpi4py, and only when the program uses mpi4py', () => {
    const env = { PYTHONPATH: path.join(dir, 'site'), HOME: dir };
    const py = path.join(dir, 'python3');
    expect(detectPython(py, [path.join(dir, 'script.py')], dir, env)).toMatchObject({ family: 'mpich', usesMpi: true });
    expect(detectPython(py, ['-c', 'from mpi4py import MPI'], dir, env)?.family).toBe('mpich');
    expect(detectPython(py, ['-m', 'mpi4py.bench', 'helloworld'], dir, env)?.family).toBe('mpich');
    expect(detectPython(py, ['other.py'], dir, env)).toEqual({ usesMpi: false, via: 'Python without mpi4py' });
    expect(detectPython(py, ['-c', 'import mpi4py'], dir, { HOME: dir })?.usesMpi).toBe(true);
    expect(detectPython(path.join(dir, 'plain'), ['-c', 'mpi4py'], dir, env)).toBeUndefined();
  });
  it.runIf(has('mpicc.openmpi') && has('mpicc.mpich'))('tells Debian\'s Open MPI and MPICH programs apart (mpicc.openmpi, mpicc.mpich)', () => {
    fs.writeFileSync(path.join(dir, 'hello.c'), '#include <mpi.h>\nint main(int c, char **v) { MPI_Init(&c, &v); MPI_Finalize(); return 0; }\n');
    execFileSync('mpicc.openmpi', ['-o', 'h-ompi', 'hello.c'], { cwd: dir });
    execFileSync('mpicc.mpich', ['-o', 'h-mpich', 'hello.c'], { cwd: dir });
    expect(detectMpi(path.join(dir, 'h-ompi'), [], dir, {}).family).toBe('openmpi');
    expect(detectMpi(path.join(dir, 'h-mpich'), [], dir, {}).family).toBe('mpich');
  });
  it.runIf(fs.existsSync('/usr/lib/python3/dist-packages/mpi4py'))('finds Debian\'s mpi4py (built against Open MPI) for /usr/bin/python3', () => {
    expect(detectMpi('/usr/bin/python3', ['-c', 'from mpi4py import MPI'], '/', { HOME: dir }).family).toBe('openmpi');
  });
});

describe('what the ranks are given', () => {
  const ompi = { family: 'openmpi', usesMpi: true, via: 'libmpi.so.40' } as const;
  const ctx = { choice: 'auto', size: 4, jobNumber: 1234, library: { path: '/x/libtsmpiexec-pmi.so' } } as const;
  it('gives Open MPI its flux component\'s two variables, and traps singletons in a job of several ranks', () => {
    const w = wireSegment('./a', ompi, ctx);
    expect(w.ok && w.wiring.env).toEqual({ FLUX_JOB_ID: '1234', FLUX_PMI_LIBRARY_PATH: '/x/libtsmpiexec-pmi.so' });
    expect(w.ok && w.wiring.trapSingletons).toBe(true);
    const one = wireSegment('./a', ompi, { ...ctx, size: 1 });
    expect(one.ok && one.wiring.trapSingletons).toBe(false);
  });
  it('refuses Open MPI at several ranks without the library, with a hint, and lets one rank run alone', () => {
    const w = wireSegment('./a', ompi, { ...ctx, library: { why: 'it is not built' } });
    expect(w.ok).toBe(false);
    expect(!w.ok && w.hint).toMatch(/make build/);
    expect(wireSegment('./a', ompi, { ...ctx, library: { why: 'it is not built' }, size: 1 }).ok).toBe(true);
  });
  it('gives MPICH and non-MPI programs nothing; --mpi none turns the trap off; a forced wrong family names the right one', () => {
    const m = wireSegment('./m', { family: 'mpich', usesMpi: true, via: 'libmpich.so.12' }, ctx);
    expect(m.ok && m.wiring.env).toEqual({});
    expect(m.ok && m.wiring.trapSingletons).toBe(true);
    const plain = wireSegment('hostname', { usesMpi: false, via: 'no MPI library linked' }, ctx);
    expect(plain.ok && plain.wiring.trapSingletons).toBe(false);
    const none = wireSegment('./a', ompi, { ...ctx, choice: 'none' });
    expect(none.ok && none.wiring).toMatchObject({ env: {}, trapSingletons: false });
    const forced = wireSegment('./a', ompi, { ...ctx, choice: 'mpich' });
    expect(forced.ok && forced.wiring.env).toEqual({});
    expect(forced.ok && forced.wiring.singletonHint).toMatch(/Open MPI .*leave out --mpi mpich/);
  });
  it('picks PMIx for Open MPI where the PMIx server is built: FLUX_JOB_ID claims the launch, OMPI_MCA_pmix=ext3x the client', () => {
    const pmixServer = { path: '/x/tsmpiexec-pmix-server' };
    const w = wireSegment('./a', ompi, { ...ctx, pmixServer });
    expect(w.ok && w.wiring).toMatchObject({ pmix: true, trapSingletons: true, env: { FLUX_JOB_ID: '1234', OMPI_MCA_pmix: 'ext3x' } });
    expect(w.ok && w.wiring.env.FLUX_PMI_LIBRARY_PATH).toBeUndefined();
    const flux = wireSegment('./a', ompi, { ...ctx, pmixServer: { why: 'it is not built' } });
    expect(flux.ok && flux.wiring.env).toEqual({ FLUX_JOB_ID: '1234', FLUX_PMI_LIBRARY_PATH: '/x/libtsmpiexec-pmi.so' });
    expect(flux.ok && flux.wiring.pmix).toBeUndefined();
    // MPICH never gets PMIx
    const m = wireSegment('./m', { family: 'mpich', usesMpi: true, via: 'libmpich.so.12' }, { ...ctx, pmixServer });
    expect(m.ok && m.wiring.pmix).toBeUndefined();
  });
  it('--mpi pmix: PMIx or one line and a hint before anything starts, never the PMI-1 route', () => {
    const forced = wireSegment('./a', { usesMpi: false, via: 'not an ELF program' }, { ...ctx, choice: 'pmix', pmixServer: { path: '/x/s' } });
    expect(forced.ok && forced.wiring).toMatchObject({ family: 'openmpi', pmix: true });
    const none = wireSegment('./a', ompi, { ...ctx, choice: 'pmix', pmixServer: { why: 'TSMPIEXEC_PMIX_SERVER is empty' } });
    expect(none.ok).toBe(false);
    expect(!none.ok && none.message).toBe("--mpi pmix needs tsmpiexec's PMIx server, and TSMPIEXEC_PMIX_SERVER is empty");
    expect(!none.ok && none.hint).toMatch(/libpmix-dev/);
    const right = wireSegment('./a', ompi, { ...ctx, choice: 'pmix', pmixServer: { path: '/x/s' } });
    expect(right.ok && right.wiring.singletonHint).not.toMatch(/leave out/);
  });
  it('draws job numbers whose family and local halves both stay in 1..0x7fff (Open MPI drops bit 15 of the local half)', () => {
    expect(randomJobNumber(() => 0)).toBe(0x10001);
    const top = randomJobNumber(() => 0.999999999999);
    expect(top).toBe(0x7fff7fff);
    for (let i = 0; i < 1000; i++) {
      const n = randomJobNumber();
      expect(n & 0x8000).toBe(0);
      expect(n >>> 16).toBeGreaterThan(0);
      expect(n & 0xffff).toBeGreaterThan(0);
    }
  });
});
