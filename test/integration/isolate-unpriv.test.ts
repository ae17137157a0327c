// The unprivileged path for real, as user nobody (setpriv --reuid=65534): a proxy stand-in re-execs itself
// through podCommand() (bwrap, or nested unshare), gets a private /tmp and /dev/shm, and its setsid daemon
// is contained by the PID namespace: killAll sweeps it, and the pod's death takes it along.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import ts from 'typescript';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { findByCmdline, isAlive, isRoot, waitGone } from '../fixtures/isolate/harness.js';

const NOBODY = 65534;
let modRoot = '';
const live = new Set<ChildProcess>();

/**
 * Compile src/isolate (and its imports from src/util) to plain ESM that nobody can read and run. The copy has
 * no tsmpiexec package.json above it, so it finds no native helper and runs the shell recipes.
 */
function transpile(into: string): void {
  const files = ['src/util/errors.ts', 'src/util/package-root.ts', 'src/topology/cpulist.ts', ...fs.readdirSync('src/isolate').filter((f) => f.endsWith('.ts')).map((f) => `src/isolate/${f}`)];
  for (const f of files) {
    const out = ts.transpileModule(fs.readFileSync(f, 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 },
      fileName: f,
    });
    const dest = path.join(into, f.replace(/\.ts$/, '.js'));
    fs.mkdirSync(path.dirname(dest), { recursive: true, mode: 0o755 });
    fs.writeFileSync(dest, out.outputText, { mode: 0o644 });
  }
  fs.writeFileSync(path.join(into, 'package.json'), '{"type":"module"}\n', { mode: 0o644 });
  fs.copyFileSync('test/fixtures/isolate/unpriv-proxy.mjs', path.join(into, 'unpriv-proxy.mjs'));
  fs.chmodSync(path.join(into, 'unpriv-proxy.mjs'), 0o644);
}

interface Proxy {
  child: ChildProcess;
  next(event: string): Promise<Record<string, unknown>>;
  send(line: string): void;
  exited: Promise<number | null>;
  sleepArgv: string[];
  jobId: string;
  stderr(): string;
}

let jobSeq = 0;
function startAsNobody(phase: 'outer' | 'nopod', env: Record<string, string> = {}): Proxy {
  jobSeq += 1;
  const jobId = `itnb${process.pid}-${jobSeq}`;
  const dur = `${3000 + Math.floor(Math.random() * 1000)}.${jobSeq}`; // unique: lets us find the daemon from outside
  const child = spawn(
    'setpriv',
    [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, path.join(modRoot, 'unpriv-proxy.mjs'), modRoot, jobId, phase],
    { cwd: modRoot, stdio: ['pipe', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', TSMPIEXEC_TEST_SLEEP: dur, ...env } },
  );
  live.add(child);
  const deadline = setTimeout(() => child.kill('SIGKILL'), 20000);
  const events: Array<Record<string, unknown>> = [];
  const waiters: Array<() => void> = [];
  let err = '';
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  createInterface({ input: child.stdout! }).on('line', (l) => {
    try {
      events.push(JSON.parse(l) as Record<string, unknown>);
    } catch {
      err += `(stdout) ${l}\n`;
    }
    for (const w of waiters.splice(0)) w();
  });
  let gone = false;
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      gone = true; // before waking the waiters, or they would wait again for an event that cannot come
      clearTimeout(deadline);
      live.delete(child);
      for (const w of waiters.splice(0)) w();
      resolve(code);
    }),
  );
  const next = async (event: string): Promise<Record<string, unknown>> => {
    for (;;) {
      const i = events.findIndex((e) => e.event === event);
      if (i >= 0) return events.splice(i, 1)[0]!;
      if (gone) throw new Error(`proxy exited before "${event}"; stderr:\n${err}`);
      await new Promise<void>((resolve) => waiters.push(resolve));
    }
  };
  return { child, next, send: (l) => child.stdin!.write(`${l}\n`), exited, sleepArgv: ['sleep', dur], jobId, stderr: () => err };
}

async function findDaemon(argv: string[]): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const [pid] = findByCmdline(argv);
    if (pid !== undefined) return pid;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`daemon ${argv.join(' ')} not found`);
}

function uidOf(pid: number): number {
  const m = /^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1]);
}

describe.skipIf(!isRoot)('as nobody (this block needs root to switch to uid 65534 with setpriv)', () => {
  beforeAll(() => {
    modRoot = fs.mkdtempSync('/var/tmp/tsmpiexec-itnb-');
    fs.chmodSync(modRoot, 0o755);
    transpile(modRoot);
  });
  afterEach(() => {
    for (const c of live) c.kill('SIGKILL'); // pods die with their parent, so this takes the ranks too
    live.clear();
  });
  afterAll(() => {
    if (modRoot !== '') fs.rmSync(modRoot, { recursive: true, force: true });
  });

  async function podScenario(env: Record<string, string>, tool: RegExp): Promise<void> {
    const p = startAsNobody('outer', env);
    const pod = await p.next('pod');
    expect((pod.prefix as string[])[0]).toMatch(tool);
    const setup = await p.next('setup');
    expect(setup).toMatchObject({ cgroup: 'none', tmp: 'private', env: { TMPDIR: '/tmp' } });
    expect(setup.notice).toMatch(/no cgroups \(mkdir in .*: EACCES.*containment by the PID-namespace pod/);
    const rank = await p.next('rank');
    expect(rank).toMatchObject({ code: 0, stdout: 'started\n' });
    const daemon = await findDaemon(p.sleepArgv);
    expect(uidOf(daemon)).toBe(NOBODY);
    // the rank wrote /tmp/<name> and /dev/shm/<name> inside the pod: the host has neither
    expect(fs.existsSync(`/tmp/tsmpiexec-nb-${p.jobId}`)).toBe(false);
    expect(fs.existsSync(`/dev/shm/tsmpiexec-nb-${p.jobId}`)).toBe(false);
    p.send('kill');
    await p.next('killed');
    expect(await waitGone([daemon], 1000)).toEqual([]);
    p.send('exit');
    expect(await p.next('clean')).toEqual({ event: 'clean', leftovers: [] });
    expect(await p.exited).toBe(0);
  }

  it('bwrap pod: private /tmp and /dev/shm, killAll sweeps a setsid daemon out of the PID namespace', async () => {
    await podScenario({}, /bwrap$/);
  });

  it('nested-unshare pod (no bwrap): the same guarantees', async () => {
    await podScenario({ TSMPIEXEC_TEST_NO_BWRAP: '1' }, /setpriv$/);
  });

  it.each([
    ['bwrap', {}],
    ['nested unshare', { TSMPIEXEC_TEST_NO_BWRAP: '1' }],
  ])('%s pod: when the proxy\'s parent dies, the pod and its setsid daemon die too', async (_name, env) => {
    const p = startAsNobody('outer', env);
    await p.next('rank');
    const daemon = await findDaemon(p.sleepArgv);
    p.child.kill('SIGKILL'); // the outer proxy: the pod was started by it
    expect(await waitGone([daemon], 3000)).toEqual([]);
  });

  it('without a pod: cgroup none, a 0700 TMPDIR, the daemon found by its job marker and killed', async () => {
    const p = startAsNobody('nopod');
    const setup = await p.next('setup');
    expect(setup).toMatchObject({ cgroup: 'none', tmp: 'tmpdir' });
    expect(setup.notice).toMatch(/not started through podCommand\(\)/);
    expect(setup.notice).toMatch(/best effort \(job-marker sweep\)/);
    const tmpdir = (setup.env as Record<string, string>).TMPDIR!;
    const st = fs.statSync(tmpdir);
    expect([st.uid, st.mode & 0o777]).toEqual([NOBODY, 0o700]);
    await p.next('rank');
    const daemon = await findDaemon(p.sleepArgv);
    expect(isAlive(daemon)).toBe(true);
    p.send('kill');
    await p.next('killed');
    expect(await waitGone([daemon], 1000)).toEqual([]);
    p.send('exit');
    expect(await p.next('clean')).toEqual({ event: 'clean', leftovers: [] });
    expect(fs.existsSync(tmpdir)).toBe(false);
  });
});
