// Run bin/tsmpiexec as a user would, with a deadline, a per-run marker in the environment (to find leaked
// processes afterwards), and helpers to check that nothing was left behind.
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export const BIN = path.resolve('bin/tsmpiexec.js');
export const FIX = path.resolve('build/fixtures');

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  stdoutBuf: Buffer;
  marker: string;
  ms: number;
  /** pid of the launched process (tsmpiexec itself, or the wrapper that exec'd it) */
  pid: number | undefined;
}

export interface RunOptions {
  input?: Buffer | string | NodeJS.ReadableStream;
  env?: Record<string, string>;
  timeoutMs?: number;
  cwd?: string;
  /** called once the process is spawned (for signal tests) */
  onSpawn?(child: ChildProcess): void;
  /** argv prefix that runs tsmpiexec somewhere else (e.g. inside a test-bed host) */
  wrap?: string[];
  /** called for every stdout chunk */
  onStdout?(chunk: Buffer, child: ChildProcess): void;
}

const live = new Set<ChildProcess>();

export function runTsmpiexec(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const marker = randomUUID();
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const argv = [...(opts.wrap ?? []), process.execPath, BIN, ...args];
    const child = spawn(argv[0] as string, argv.slice(1), {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env, TSMPI_TEST_RUN: marker },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    live.add(child);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => {
      out.push(d);
      opts.onStdout?.(d, child);
    });
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.stdin.on('error', () => undefined);
    const input = opts.input;
    if (input === undefined) child.stdin.end();
    else if (typeof input === 'string' || Buffer.isBuffer(input)) child.stdin.end(input);
    else (input as NodeJS.ReadableStream).pipe(child.stdin);
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`tsmpiexec ${args.join(' ')} did not finish within ${opts.timeoutMs ?? 30000} ms; stderr: ${Buffer.concat(err).toString()}`));
    }, opts.timeoutMs ?? 30000);
    opts.onSpawn?.(child);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      live.delete(child);
      const stdoutBuf = Buffer.concat(out);
      resolve({ code, signal, stdout: stdoutBuf.toString(), stderr: Buffer.concat(err).toString(), stdoutBuf, marker, ms: Date.now() - t0, pid: child.pid });
    });
  });
}

/** Whether a command is on PATH (for tests that need a tool and say why they skip without it). */
export function hasCommand(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Kill whatever a failed test left running (afterEach). */
export function killLive(): void {
  for (const c of live) c.kill('SIGKILL');
  live.clear();
}

/** Pids of live processes whose environment carries the marker (ranks and their children). */
export function processesWithMarker(marker: string): number[] {
  const pids: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const env = fs.readFileSync(`/proc/${d}/environ`);
      if (env.includes(`TSMPI_TEST_RUN=${marker}`)) {
        const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
        const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
        if (state !== 'Z') pids.push(Number(d));
      }
    } catch {
      /* gone or not ours */
    }
  }
  return pids;
}

/** Waits up to `ms` for the marker's processes to vanish; returns the survivors. */
export async function leftovers(marker: string, ms = 2000): Promise<number[]> {
  const end = Date.now() + ms;
  let pids = processesWithMarker(marker);
  while (pids.length > 0 && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 50));
    pids = processesWithMarker(marker);
  }
  for (const p of pids) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  return pids;
}

/** Entries in the temp dir that a job of ours could have created (a per-job TMPDIR, a PMI socket dir); not
 *  the test beds and fixtures other test files create at the same time. */
export function tmpEntries(): string[] {
  const dir = process.env.TMPDIR ?? '/tmp';
  // tsmpiexec-UID holds the CPU claims every running job on this host shares (jobs of other test files too);
  // its own removal is checked where a test gives its job a private XDG_RUNTIME_DIR
  const shared = `tsmpiexec-${String(process.getuid?.() ?? 0)}`;
  return fs.readdirSync(dir).filter((f) => (f.startsWith('tsmpiexec') || f.startsWith('tsmpi-pmi-')) && f !== shared);
}

/** Sockets listening on this host (ss), for the "no listening socket" check. */
export function listeningSockets(): string {
  return fs.readFileSync('/proc/net/unix', 'utf8') + fs.readFileSync('/proc/net/tcp', 'utf8');
}

/** No PMI variables from whatever runs the tests (an outer launcher's would be passed on otherwise). */
export const NO_OUTER_PMI = { PMI_FD: '', PMI_PORT: '', PMI_ID: '', PMI_RANK: '', PMI_SIZE: '' };

/**
 * Jobs of one test file whose processes are checked after each test: `run` starts a job without outer PMI
 * variables (60 s deadline) and remembers its marker; `leftovers` (for afterEach) kills what a failed test left
 * running, then returns the pids of any job since the last call that are still alive after 5 s.
 */
export function trackedJobs(): { run(args: string[], opts?: RunOptions): Promise<RunResult>; track(marker: string): void; leftovers(): Promise<number[]> } {
  let markers: string[] = [];
  return {
    /** a job started some other way, whose processes carry TSMPI_TEST_RUN=marker */
    track(marker) {
      markers.push(marker);
    },
    run(args, opts = {}) {
      const p = runTsmpiexec(args, { timeoutMs: 60_000, ...opts, env: { ...NO_OUTER_PMI, ...opts.env } });
      void p.then((r) => markers.push(r.marker), () => undefined);
      return p;
    },
    async leftovers() {
      killLive();
      const ms = markers;
      markers = [];
      const out: number[] = [];
      for (const m of ms) out.push(...(await leftovers(m, 5000)));
      return out;
    },
  };
}

/** This process's environment plus `extra`, with the outer launcher's PMI variables unset (not empty). */
export function envWithoutOuterPmi(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  for (const k of Object.keys(NO_OUTER_PMI)) delete env[k];
  return env;
}

/**
 * Runs MPICH's own launcher (`mpiexec.hydra ARGS`), with the marker in every process's environment and without
 * an outer launcher's PMI variables (unset, not empty: libpmi2 takes an empty PMI_ID for a set one).
 */
export function runHydra(args: string[], marker: string, extraEnv: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = envWithoutOuterPmi({ ...extraEnv, TSMPI_TEST_RUN: marker });
  return new Promise((resolve) => {
    execFile('mpiexec.hydra', args, { timeout: 60_000, killSignal: 'SIGKILL', env }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** rmdir a cgroup (or any directory) that may stay busy for a moment while its last processes are reaped. */
export async function rmdirWhenFree(dir: string, tries = 100): Promise<void> {
  for (let i = 0; i < tries; i++) {
    try {
      fs.rmdirSync(dir);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}
