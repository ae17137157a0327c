// The optional native helper (native/helper.c) on the real kernel: it is built wherever a C compiler is (so CI
// never silently falls back to the shell recipes), it joins real cgroups before exec, enters a holder's private
// /tmp keeping the working directory, fails with the shell recipe's one-line messages and exit codes, and its
// holder dies with its parent. Every containment case also runs through it end to end (test/e2e/containment).
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

const HELPER = path.resolve('dist/native/tsmpiexec-helper');
const isRoot = process.getuid?.() === 0;
const hasCc = spawnSync('sh', ['-c', 'command -v cc'], { encoding: 'utf8' }).status === 0;
const built = fs.existsSync(HELPER);

function helper(args: string[], opts: { cwd?: string } = {}): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(HELPER, args, { encoding: 'utf8', timeout: 10_000, ...opts });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) {
    try {
      c();
    } catch {
      // best effort; the assertions below check what matters
    }
  }
});

describe('the native helper', () => {
  it('is built by make build where a C compiler is present', (ctx) => {
    if (!hasCc) return ctx.skip('skipped because this machine has no C compiler: isolation uses the shell recipes');
    expect(built, `${HELPER} missing: make build compiles native/helper.c when cc exists`).toBe(true);
    expect(helper(['version']).stdout).toBe('tsmpiexec-helper 3\n');
  });

  describe.runIf(built)('exec', () => {
    it('refuses bad usage with exit 2 and one line', () => {
      for (const args of [[], ['exec'], ['exec', '--join'], ['exec', '--bogus', 'x', '--', 'true'], ['holder', '--data', 'x']]) {
        const r = helper(args);
        expect(r.code, args.join(' ')).toBe(2);
        expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      }
    });

    it('says which cgroup it could not join, as the shell recipe does, with exit 126 and nothing run', () => {
      const r = helper(['exec', '--join', '/nonexistent/cgroup.procs', '--label', 'rank 3', '--', 'sh', '-c', 'echo ran']);
      expect(r.code).toBe(126);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe('tsmpiexec: rank 3 cannot join cgroup /nonexistent/cgroup.procs: No such file or directory\n');
    });

    it('names a missing program with exit 127, and a non-executable one with 126', () => {
      const missing = helper(['exec', '--label', 'rank 0', '--', '/nonexistent/prog']);
      expect(missing.code).toBe(127);
      expect(missing.stderr).toBe('tsmpiexec: rank 0: cannot run /nonexistent/prog: No such file or directory\n');
      const plain = path.resolve('build', `not-executable-${process.pid}`);
      fs.mkdirSync('build', { recursive: true });
      fs.writeFileSync(plain, 'echo ran\n', { mode: 0o644 });
      cleanups.push(() => fs.rmSync(plain, { force: true }));
      const noexec = helper(['exec', '--', plain]);
      expect(noexec.code).toBe(126);
      expect(noexec.stderr).toBe(`tsmpiexec: the program: cannot run ${plain}: Permission denied\n`);
    });

    it('passes arguments through untouched and searches PATH like exec "$@"', () => {
      const r = helper(['exec', '--', 'printf', '%s|', '--join', 'a b', '', '--']);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe('--join|a b||--|');
    });

    it.runIf(isRoot)('joins real cgroups (v1 pids and the cgroup2 core) before the program runs', () => {
      const dirs = ['/sys/fs/cgroup/pids', '/sys/fs/cgroup/unified']
        .filter((d) => fs.existsSync(`${d}/cgroup.procs`))
        .map((d) => `${d}/tsmpiexec-helper-test-${process.pid}`);
      expect(dirs.length).toBeGreaterThan(0);
      for (const d of dirs) {
        fs.mkdirSync(d);
        cleanups.push(() => fs.rmdirSync(d));
      }
      const r = helper(['exec', ...dirs.flatMap((d) => ['--join', `${d}/cgroup.procs`]), '--', 'cat', '/proc/self/cgroup']);
      expect(r.code).toBe(0);
      const inside = r.stdout.split('\n').filter((l) => l.endsWith(`/tsmpiexec-helper-test-${process.pid}`));
      expect(inside).toHaveLength(dirs.length);
    });
  });

  describe.runIf(built && isRoot)('holder', () => {
    async function startHolder(args: string[]): Promise<{ pid: number; kill: () => void }> {
      const child = spawn(HELPER, ['holder', '--data', 'mode=0700,uid=0,gid=0', '--tmp-name', `tsmpiexec-nh-${process.pid}-tmp`, '--shm-name', `tsmpiexec-nh-${process.pid}-shm`, ...args], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let err = '';
      child.stderr.on('data', (b: Buffer) => (err += b.toString()));
      const ready = await new Promise<boolean>((resolve) => {
        child.stdout.on('data', (b: Buffer) => b.toString().includes('ready') && resolve(true));
        child.once('exit', () => resolve(false));
      });
      expect(ready, err).toBe(true);
      const kill = (): void => {
        child.kill('SIGKILL');
      };
      cleanups.push(kill);
      return { pid: child.pid!, kill };
    }

    it('makes a private /tmp and /dev/shm, keeps a host entry visible, and a rank enters it keeping its cwd', async () => {
      const ws = fs.mkdtempSync('/tmp/tsmpi-nh-');
      cleanups.push(() => fs.rmSync(ws, { recursive: true, force: true }));
      fs.writeFileSync(`${ws}/data`, 'kept\n');
      const h = await startHolder(['--keep', ws]);
      const script = 'awk \'$5 == "/tmp" || $5 == "/dev/shm" {print $5, $(NF-1)}\' /proc/self/mountinfo; ls -A /tmp; pwd; cat data; touch /tmp/inside';
      const r = helper(['exec', '--mntns', `/proc/${h.pid}/ns/mnt`, '--', 'sh', '-c', script], { cwd: ws });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const lines = r.stdout.trim().split('\n');
      expect(lines).toContain(`/tmp tsmpiexec-nh-${process.pid}-tmp`);
      expect(lines).toContain(`/dev/shm tsmpiexec-nh-${process.pid}-shm`);
      expect(lines).toContain(path.basename(ws));
      expect(lines.slice(-2)).toEqual([ws, 'kept']);
      expect(fs.existsSync('/tmp/inside'), 'a write to the private /tmp reached the host').toBe(false);
      h.kill();
    });

    it('binds a scratch directory over /tmp instead of a tmpfs', async () => {
      const scratch = fs.mkdtempSync('/var/tmp/tsmpi-nh-scratch-');
      cleanups.push(() => fs.rmSync(scratch, { recursive: true, force: true }));
      const h = await startHolder(['--tmp-source', scratch]);
      const r = helper(['exec', '--mntns', `/proc/${h.pid}/ns/mnt`, '--', 'sh', '-c', 'echo x > /tmp/f'], { cwd: '/' });
      expect(r.code).toBe(0);
      expect(fs.readFileSync(`${scratch}/f`, 'utf8')).toBe('x\n');
      h.kill();
    });

    it('dies with its parent (pdeathsig), taking the namespace with it', async () => {
      const parent = spawn('sh', ['-c', `"$0" holder --data mode=0700 --tmp-name t --shm-name s >/dev/null & echo $!; wait`, HELPER], { stdio: ['ignore', 'pipe', 'ignore'] });
      cleanups.push(() => parent.kill('SIGKILL'));
      const pid = await new Promise<number>((resolve) => parent.stdout.once('data', (b: Buffer) => resolve(Number(b.toString().trim()))));
      cleanups.push(() => {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone, as it should be
        }
      });
      await new Promise((r) => setTimeout(r, 200));
      expect(fs.existsSync(`/proc/${pid}`)).toBe(true);
      parent.kill('SIGKILL');
      let alive = true;
      for (let i = 0; i < 50 && alive; i++) {
        await new Promise((r) => setTimeout(r, 20));
        alive = fs.existsSync(`/proc/${pid}/stat`) && !fs.readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z');
      }
      expect(alive, `holder ${pid} outlived its parent`).toBe(false);
    });
  });
  describe.runIf(built)('pipe-size', () => {
    // sh makes a real pipe (Node's own child pipes are socketpairs); `cat` drains it after the helper exits
    const through = (cmd: string): { code: number | null; stderr: string } => {
      const r = spawnSync('sh', ['-c', `${cmd} | cat >/dev/null`], { encoding: 'utf8', timeout: 10_000 });
      return { code: r.status, stderr: r.stderr };
    };

    it('grows the pipe on its stdout and says to what size', () => {
      const r = through(`"${HELPER}" pipe-size 1048576`);
      expect(r.stderr).toBe('pipe-size 1048576\n');
      expect(r.code).toBe(0);
    });

    it('never shrinks a pipe', () => {
      const r = through(`"${HELPER}" pipe-size 4096`);
      expect(r.stderr).toBe('pipe-size 65536\n');
    });

    it('leaves anything but a pipe alone, quietly', () => {
      const r = helper(['pipe-size', '1048576']);
      expect(r).toEqual({ code: 0, stdout: '', stderr: '' });
    });

    it('refuses bad usage with exit 2 and one line', () => {
      for (const args of [['pipe-size'], ['pipe-size', 'x'], ['pipe-size', '0'], ['pipe-size', '1', '2']]) {
        const r = helper(args);
        expect(r.code, args.join(' ')).toBe(2);
        expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      }
    });

    it.runIf(isRoot)('fails with exit 1 and one line where the kernel refuses (a user over fs/pipe-max-size)', () => {
      const max = Number(fs.readFileSync('/proc/sys/fs/pipe-max-size', 'utf8'));
      const r = through(`setpriv --reuid=65534 --regid=65534 --clear-groups "${HELPER}" pipe-size ${max * 2}`);
      expect(r.code).toBe(0); // the pipeline's status is cat's
      expect(r.stderr).toBe(`tsmpiexec-helper: pipe-size: F_SETPIPE_SZ ${max * 2}: Operation not permitted\n`);
    });
  });
});
