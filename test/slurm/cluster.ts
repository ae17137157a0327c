// Bring a real Slurm (test/slurm/cluster.sh: one node, or one per test-bed host) up and down from a test file,
// submit jobs to it and wait for them with deadlines. Every client command runs through `cluster.sh exec`:
// in the cluster's network namespace (on a test bed, on its login host h0) with SLURM_CONF set.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const SCRIPT = path.resolve('test/slurm/cluster.sh');
const TESTBED = path.resolve('test/testbed/testbed.sh');

/**
 * A network-namespace test bed (test/testbed/testbed.sh) of hosts h0..hN, in a directory not named tsmpi-*
 * (other tests check that jobs leave no tsmpi-* entry in /tmp while this one runs beside them).
 */
export function slurmBedUp(n: number, prefix: string): { dir: string; down(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `slurm-test-bed-${prefix}-`));
  const bed = (...args: string[]): void => {
    execFileSync('bash', [TESTBED, ...args, '--dir', dir], { timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe'] });
  };
  try {
    bed('up', String(n), '--prefix', prefix);
  } catch (e) {
    try {
      bed('down');
    } catch {
      /* best effort */
    }
    throw e;
  }
  return { dir, down: () => bed('down') };
}

/** Why the Slurm tests cannot run here, or undefined when they can (root, slurmctld, slurmd, munged). */
export function slurmUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'the Slurm tests need root';
  for (const bin of ['slurmctld', 'slurmd', 'munged', 'sbatch', 'srun']) {
    try {
      execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' });
    } catch {
      return `${bin} is not installed (apt-get install slurm-wlm munge)`;
    }
  }
  return undefined;
}

export interface JobState {
  state: string;
  exitCode: string;
}

export interface Cluster {
  dir: string;
  node: string;
  /** Runs a Slurm client command (sbatch, squeue, ...) in the cluster's namespace; throws on failure. */
  run(args: string[], opts?: { env?: NodeJS.ProcessEnv; timeoutMs?: number }): string;
  /** Like run, but asynchronous, never throws, and kills the command at its deadline. */
  runAsync(args: string[], opts?: { env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<{ code: number | null; stdout: string; stderr: string }>;
  /** Writes a job script into the cluster directory; returns its path. */
  script(name: string, body: string): string;
  /** sbatch without --wait; returns the job id. */
  submit(scriptPath: string, sbatchArgs: string[], env?: NodeJS.ProcessEnv): string;
  job(id: string): JobState | undefined;
  /** Polls until the job has ended (or the deadline passes, which throws). */
  waitEnded(id: string, timeoutMs?: number): Promise<JobState>;
  /** Polls until `pred` holds (or throws at the deadline, saying what it waited for). */
  waitFor(what: string, pred: () => boolean, timeoutMs?: number): Promise<void>;
  down(): void;
}

const ENDED = /^(COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|PREEMPTED|BOOT_FAIL|DEADLINE)/;

export function clusterUp(opts: { nodeName?: string; cpus?: number; deadlineSec?: number; testbed?: string } = {}): Cluster {
  const args = ['up', '--deadline', String(opts.deadlineSec ?? 600)];
  if (opts.nodeName) args.push('--node-name', opts.nodeName);
  if (opts.cpus) args.push('--cpus', String(opts.cpus));
  if (opts.testbed) args.push('--testbed', opts.testbed);
  const out = execFileSync('bash', [SCRIPT, ...args], { encoding: 'utf8', timeout: 90_000, stdio: ['ignore', 'pipe', 'pipe'] });
  const m = /SLURM_CLUSTER_DIR=(\S+)/.exec(out);
  if (!m?.[1]) throw new Error(`cluster.sh up printed no directory: ${out}`);
  const dir = m[1];
  const node = /SLURM_CLUSTER_NODE=(\S+)/.exec(fs.readFileSync(path.join(dir, 'env'), 'utf8'))?.[1] ?? '';
  const base = (env?: NodeJS.ProcessEnv): NodeJS.ProcessEnv => ({ ...process.env, ...env, SLURM_CONF: path.join(dir, 'slurm.conf') });
  const nsArgv = (args: string[]): string[] => [SCRIPT, 'exec', '--dir', dir, '--', ...args];

  const c: Cluster = {
    dir,
    node,
    run(args, o = {}) {
      return execFileSync('bash', nsArgv(args), { encoding: 'utf8', env: base(o.env), timeout: o.timeoutMs ?? 30_000, stdio: ['ignore', 'pipe', 'pipe'] });
    },
    runAsync(args, o = {}) {
      return new Promise((resolve) => {
        const child = spawn('bash', nsArgv(args), { env: base(o.env), stdio: ['ignore', 'pipe', 'pipe'] });
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        child.stdout.on('data', (d: Buffer) => out.push(d));
        child.stderr.on('data', (d: Buffer) => err.push(d));
        const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 60_000);
        child.on('close', (code) => {
          clearTimeout(timer);
          resolve({ code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
        });
      });
    },
    script(name, body) {
      const p = path.join(dir, name);
      fs.writeFileSync(p, body, { mode: 0o755 });
      return p;
    },
    submit(scriptPath, sbatchArgs, env) {
      const out = c.run(['sbatch', '--parsable', ...sbatchArgs, scriptPath], env ? { env } : {});
      const id = out.trim().split(';')[0] ?? '';
      if (!/^\d+$/.test(id)) throw new Error(`sbatch printed '${out}'`);
      return id;
    },
    job(id) {
      let text: string;
      try {
        text = c.run(['scontrol', '-o', 'show', 'job', id]);
      } catch {
        return undefined;
      }
      const state = /JobState=(\S+)/.exec(text)?.[1];
      const exitCode = /ExitCode=(\S+)/.exec(text)?.[1] ?? '';
      return state ? { state, exitCode } : undefined;
    },
    async waitEnded(id, timeoutMs = 45_000) {
      let last: JobState | undefined;
      await c.waitFor(`job ${id} to end`, () => {
        last = c.job(id);
        return last !== undefined && ENDED.test(last.state);
      }, timeoutMs);
      return last as JobState;
    },
    async waitFor(what, pred, timeoutMs = 30_000) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        if (pred()) return;
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}; slurmctld log tail:\n${logTail(dir)}`);
        await new Promise((r) => setTimeout(r, 150));
      }
    },
    down() {
      execFileSync('bash', [SCRIPT, 'down', '--dir', dir], { timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
    },
  };
  return c;
}

function logTail(dir: string): string {
  try {
    return fs.readFileSync(path.join(dir, 'log', 'slurmctld.log'), 'utf8').split('\n').slice(-8).join('\n');
  } catch {
    return '(no log)';
  }
}
