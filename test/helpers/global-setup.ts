// Once per test run: compile the C fixtures with Debian's MPICH (mpicc.mpich), and a few with Open MPI
// (mpicc.openmpi), into build/fixtures.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export const FIXTURE_DIR = path.resolve('build/fixtures');

/** test/fixtures/pmi/*.c: plain C linked with Slurm's libpmi2 (libpmi2-0-dev); skipped when it is not installed. */
function compilePmiFixtures(): void {
  if (!fs.existsSync('/usr/include/slurm/pmi2.h')) return;
  fs.mkdirSync(FIXTURE_DIR, { recursive: true });
  const src = path.resolve('test/fixtures/pmi');
  for (const f of fs.readdirSync(src)) {
    if (!f.endsWith('.c')) continue;
    const out = path.join(FIXTURE_DIR, f.slice(0, -2));
    const input = path.join(src, f);
    if (fs.existsSync(out) && fs.statSync(out).mtimeMs > fs.statSync(input).mtimeMs) continue;
    execFileSync('cc', ['-O2', '-Wall', '-o', out, input, '-lpmi2'], { stdio: 'inherit' });
  }
}

/** Open MPI builds of the hello, the ring and the others (ompi-*), when Debian's mpicc.openmpi is installed. */
function compileOpenMpiFixtures(): void {
  try {
    execFileSync('sh', ['-c', 'command -v mpicc.openmpi'], { stdio: 'ignore' });
  } catch {
    return;
  }
  fs.mkdirSync(FIXTURE_DIR, { recursive: true });
  for (const [name, input] of [['ompi-hello', 'examples/hello.c'], ['ompi-ring', 'test/fixtures/mpi/ring.c'], ['ompi-abort', 'test/fixtures/mpi/abort.c'], ['ompi-pubsub', 'test/fixtures/mpi/pubsub.c'], ['ompi-spawn', 'test/fixtures/mpi/spawn.c']] as const) {
    const out = path.join(FIXTURE_DIR, name);
    if (fs.existsSync(out) && fs.statSync(out).mtimeMs > fs.statSync(input).mtimeMs) continue;
    execFileSync('mpicc.openmpi', ['-O2', '-o', out, path.resolve(input)], { stdio: 'inherit' });
  }
}

/** test/fixtures/pmilib/*.c: plain C that loads our PMI library with dlopen (needs only cc and native/). */
function compilePmiLibFixtures(): void {
  const src = path.resolve('test/fixtures/pmilib');
  fs.mkdirSync(FIXTURE_DIR, { recursive: true });
  for (const f of fs.readdirSync(src).filter((n) => n.endsWith('.c'))) {
    const out = path.join(FIXTURE_DIR, f.slice(0, -2));
    const input = path.join(src, f);
    const header = path.resolve('native/tsmpiexec-pmi.h');
    const newest = Math.max(fs.statSync(input).mtimeMs, fs.statSync(header).mtimeMs);
    if (fs.existsSync(out) && fs.statSync(out).mtimeMs > newest) continue;
    execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-I', path.resolve('native'), '-o', out, input], { stdio: 'inherit' });
  }
}

/** test/fixtures/pmix/pmix-probe.c: a bare PMIx client (libpmix), where pkg-config finds libpmix-dev. */
function compilePmixFixtures(): void {
  let flags: string[];
  try {
    flags = execFileSync('pkg-config', ['--cflags', '--libs', 'pmix'], { encoding: 'utf8' }).trim().split(/\s+/).filter((w) => w !== '');
  } catch {
    return;
  }
  fs.mkdirSync(FIXTURE_DIR, { recursive: true });
  const input = path.resolve('test/fixtures/pmix/pmix-probe.c');
  const out = path.join(FIXTURE_DIR, 'pmix-probe');
  if (fs.existsSync(out) && fs.statSync(out).mtimeMs > fs.statSync(input).mtimeMs) return;
  execFileSync('cc', ['-O2', '-Wall', '-o', out, input, ...flags], { stdio: 'inherit' });
}

export default function setup(): void {
  compilePmiFixtures();
  compilePmixFixtures();
  compilePmiLibFixtures();
  compileOpenMpiFixtures();
  // The e2e tests check for their binaries themselves; a unit-only run needs neither MPICH nor dist/.
  try {
    execFileSync('sh', ['-c', 'command -v mpicc.mpich'], { stdio: 'ignore' });
  } catch {
    return;
  }
  fs.mkdirSync(FIXTURE_DIR, { recursive: true });
  const src = path.resolve('test/fixtures/mpi');
  // the MPI hello is the bundled example itself (examples/hello.c), not a copy of it
  const sources = [...fs.readdirSync(src).filter((f) => f.endsWith('.c')).map((f) => path.join(src, f)), path.resolve('examples/hello.c')];
  for (const input of sources) {
    const f = path.basename(input);
    const out = path.join(FIXTURE_DIR, f.slice(0, -2));
    if (fs.existsSync(out) && fs.statSync(out).mtimeMs > fs.statSync(input).mtimeMs) continue;
    const cc = f === 'flood.c' ? 'cc' : 'mpicc.mpich';
    execFileSync(cc, ['-O2', '-o', out, input], { stdio: 'inherit' });
  }
}
