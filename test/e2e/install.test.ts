// Installing tsmpiexec as a user would (issue #18): the npm package (`npm pack`, then `npm install -g --prefix`,
// `npm link`, `npx`) and `make install` / `make uninstall` into a DESTDIR, each run from outside the repo with a
// real job (hostname and the MPICH hello). The repo is built before the tests run (make test), so the package is
// packed without its prepack script (which is `make build`: it would rebuild dist/ under the other tests' feet).
import { execFileSync, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIX } from '../helpers/run.js';

const REPO = path.resolve('.');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsmpi-install-'));
const OUTSIDE = fs.mkdtempSync(path.join(os.tmpdir(), 'tsmpi-install-cwd-'));
const HELLO = path.join(FIX, 'hello');
// npm with its own cache-friendly, quiet settings; the user's npm cache is kept (offline where it has the packages)
const NPM_FLAGS = ['--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'];
const ENV = { ...process.env, NO_COLOR: '1', npm_config_update_notifier: 'false' };

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function run(cmd: string, args: string[], cwd = OUTSIDE): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { cwd, env: ENV, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
}

function ok(r: SpawnSyncReturns<string>): string {
  if (r.status !== 0) throw new Error(`exit ${r.status}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** A real job through an installed command: two ranks of hostname, and the MPICH hello when it is built. */
function realJob(command: string): void {
  const host = os.hostname();
  expect(ok(run(command, ['-n', '2', 'hostname'])).trim().split('\n')).toEqual([host, host]);
  if (fs.existsSync(HELLO)) {
    const lines = ok(run(command, ['-n', '2', HELLO])).trim().split('\n').sort();
    expect(lines).toEqual([
      `hello from rank 0 of 2 on ${host} (allreduce sum 1, expected 1)`,
      `hello from rank 1 of 2 on ${host} (allreduce sum 1, expected 1)`,
    ]);
  }
}

/** Every file or symlink under a directory (directories themselves not counted). */
function filesUnder(root: string): string[] {
  if (!fs.existsSync(root)) return [];
  const out: string[] = [];
  for (const e of fs.readdirSync(root, { withFileTypes: true, recursive: true })) {
    if (!e.isDirectory()) out.push(path.join(e.parentPath, e.name));
  }
  return out;
}

const manMissing = !have('man');
const MAN_SKIP = manMissing && process.env.CI !== 'true';

let tarball = '';
beforeAll(() => {
  const out = ok(run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir, ...NPM_FLAGS], REPO));
  const info = JSON.parse(out) as { filename: string; files: { path: string }[] }[];
  tarball = path.join(dir, info[0]!.filename);
  packed = info[0]!.files.map((f) => f.path);
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(OUTSIDE, { recursive: true, force: true });
});
let packed: string[] = [];

describe('the npm package', () => {
  it('holds the bundle, its code cache, the native sources, man page, completions, LICENSE and CHANGELOG, and no tests', () => {
    for (const f of ['bin/tsmpiexec.js', 'bin/load-bundle.js', 'dist/bundle/main.cjs', 'dist/bundle/main.cjs.cache', 'native/helper.c',
      'native/libpmi.c', 'native/tsmpiexec-pmi.h', 'scripts/build-native.sh', 'man/tsmpiexec.1', 'completions/tsmpiexec.bash',
      'completions/_tsmpiexec', 'LICENSE', 'CHANGELOG.md', 'package.json', 'README.md']) expect(packed).toContain(f);
    expect(packed.filter((f) => f.startsWith('test/') || f.startsWith('src/') || f.startsWith('node_modules/'))).toEqual([]);
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { scripts: Record<string, string>; dependencies: Record<string, string> };
    expect(pkg.scripts.prepack).toBe('make build');
    expect(Object.keys(pkg.dependencies).sort()).toEqual(['chalk', 'ora']);
  });

  it('works after npm install -g --prefix, from outside the repo: a real job, the code cache taken, man page and completions', () => {
    const prefix = path.join(dir, 'global');
    ok(run('npm', ['install', '-g', '--prefix', prefix, ...NPM_FLAGS, tarball]));
    const cmd = path.join(prefix, 'bin', 'tsmpiexec');
    realJob(cmd);
    const version = (JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
    expect(ok(run(cmd, ['--version']))).toContain(`tsmpiexec ${version}`);
    const pkgDir = path.join(prefix, 'lib', 'node_modules', 'tsmpiexec');
    // the shipped code cache is used by this very Node
    const used = ok(run(process.execPath, ['-e', `process.stdout.write(String(require(${JSON.stringify(path.join(pkgDir, 'bin', 'load-bundle.js'))}).loadBundle(${JSON.stringify(path.join(pkgDir, 'dist', 'bundle', 'main.cjs'))}).cacheUsed))`]));
    expect(used).toBe('true');
    expect(fs.existsSync(path.join(pkgDir, 'completions', 'tsmpiexec.bash'))).toBe(true);
    expect(fs.existsSync(path.join(pkgDir, 'completions', '_tsmpiexec'))).toBe(true);
    if (!MAN_SKIP) expect(ok(run('man', ['-M', path.join(prefix, 'share', 'man'), '-w', 'tsmpiexec'])).trim()).toMatch(/tsmpiexec\.1$/);

    // a remote proxy is started by the installed path (a stand-in for ssh that logs its command and runs it here)
    const ssh = path.join(dir, 'ssh');
    const log = path.join(dir, 'ssh.log');
    fs.writeFileSync(ssh, `#!/bin/sh\necho "$@" >> ${log}\nwhile [ $# -gt 0 ]; do case "$1" in -o) shift 2;; -*) shift;; *) break;; esac; done\nshift\nexec /bin/sh -c "$*"\n`, { mode: 0o700 });
    expect(ok(run(cmd, ['-launcher-exec', ssh, '-hosts', 'elsewhere', '-n', '1', 'hostname'])).trim()).toBe(os.hostname());
    expect(fs.readFileSync(log, 'utf8')).toContain(`${process.execPath} ${path.join(fs.realpathSync(pkgDir), 'bin', 'tsmpiexec.js')} proxy`);

    // a stale code cache (another build's, or garbage) is ignored without a word
    fs.writeFileSync(path.join(pkgDir, 'dist', 'bundle', 'main.cjs.cache'), 'tsmpiexec-code-cache-2\n\x01\x02\x03\x04 not a cache');
    const stale = run(cmd, ['-n', '1', 'true']);
    expect([stale.status, stale.stderr]).toEqual([0, '']);
    // without the native helper the job still runs
    fs.rmSync(path.join(pkgDir, 'dist', 'native'), { recursive: true, force: true });
    realJob(cmd);
    // a missing bundle: one line saying what is missing and how to fix it, no stack
    fs.rmSync(path.join(pkgDir, 'dist', 'bundle', 'main.cjs'));
    const broken = run(cmd, ['-n', '1', 'true']);
    expect(broken.status).toBe(70);
    expect(broken.stdout).toBe('');
    const lines = broken.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^tsmpiexec: broken install: .*dist\/bundle\/main\.cjs is missing: reinstall tsmpiexec/);
  });

  it('works after npm link into a prefix (from the unpacked package)', () => {
    const src = path.join(dir, 'unpacked');
    fs.mkdirSync(src);
    execFileSync('tar', ['-xzf', tarball, '-C', src, '--strip-components=1']);
    const prefix = path.join(dir, 'linked');
    // as in a checkout: the package's own dependencies installed next to it, then linked into the prefix
    ok(run('npm', ['install', '--omit=dev', '--ignore-scripts', ...NPM_FLAGS], src));
    const linkEnv = { ...ENV, npm_config_prefix: prefix };
    const r = spawnSync('npm', ['link', ...NPM_FLAGS], { cwd: src, env: linkEnv, encoding: 'utf8', timeout: 120_000 });
    ok(r);
    const cmd = path.join(prefix, 'bin', 'tsmpiexec');
    expect(fs.realpathSync(cmd)).toBe(path.join(fs.realpathSync(src), 'bin', 'tsmpiexec.js'));
    realJob(cmd);
    // chalk and ora (loaded on a terminal only) resolve from the linked package
    ok(run(process.execPath, ['--input-type=module', '-e', "await import('chalk'); await import('ora');"], path.join(src, 'bin')));
  });

  it('runs through npx', () => {
    const r = run('npx', ['--yes', ...NPM_FLAGS, `--package=${tarball}`, '--', 'tsmpiexec', '-n', '2', 'hostname']);
    expect(ok(r).trim().split('\n')).toEqual([os.hostname(), os.hostname()]);
  });
});

describe('make install / make uninstall', () => {
  it('installs the GNU layout under DESTDIR, runs from anywhere, and uninstall leaves no file behind', () => {
    const dest = path.join(dir, 'destdir');
    const vars = [`DESTDIR=${dest}`, 'PREFIX=/usr/local'];
    // the repo is built already (make test builds first): -o keeps make from reinstalling the npm dependencies
    ok(run('make', ['-s', '-o', 'node_modules/.package-lock.json', '-C', REPO, 'install', ...vars]));
    const root = path.join(dest, 'usr', 'local');
    const bin = path.join(root, 'bin', 'tsmpiexec');
    expect(fs.readlinkSync(bin)).toBe('../lib/tsmpiexec/bin/tsmpiexec.js');
    for (const f of ['lib/tsmpiexec/package.json', 'lib/tsmpiexec/dist/bundle/main.cjs', 'lib/tsmpiexec/node_modules/chalk/package.json',
      'share/man/man1/tsmpiexec.1', 'share/bash-completion/completions/tsmpiexec', 'share/zsh/site-functions/_tsmpiexec']) {
      expect(fs.existsSync(path.join(root, f)), f).toBe(true);
    }
    realJob(bin);
    if (!MAN_SKIP) expect(ok(run('man', ['-M', path.join(root, 'share', 'man'), '-w', 'tsmpiexec'])).trim()).toBe(path.join(root, 'share/man/man1/tsmpiexec.1'));
    ok(run('make', ['-s', '-C', REPO, 'uninstall', ...vars]));
    expect(filesUnder(dest)).toEqual([]);
    expect(fs.existsSync(path.join(root, 'lib', 'tsmpiexec'))).toBe(false);
  });
});

if (MAN_SKIP) {
  describe('man', () => {
    it.skip('man is not installed (and CI is not set): the man page checks were left out', () => undefined);
  });
}
