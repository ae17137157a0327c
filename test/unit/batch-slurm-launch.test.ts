// The slurm launcher's pure parts: the srun command line, the environment srun gets, the variables ranks must
// not inherit from an outer srun, and the SIGKILL softening that keeps a killed srun from orphaning its step.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { EventEmitter } from 'node:events';
import type { ChildProcess } from 'node:child_process';
import { isSlurmTaskVar, softenKill, srunArgv, srunEnv } from '../../src/launch/slurm.js';

describe('srunArgv', () => {
  it('one task on the host, in the allocation, overlapping, all its CPUs, channel-safe stdio', () => {
    expect(srunArgv({ jobId: '42', cpusPerHost: { n1: 8 } }, 'n1', ['/usr/bin/node', '/opt/t/bin/tsmpiexec.js', 'proxy'])).toEqual([
      'srun', '--jobid=42', '--overlap', '--nodes=1', '--ntasks=1', '--nodelist=n1', '--cpus-per-task=8', '--cpu-bind=none', '--mpi=none',
      '--export=ALL', '--kill-on-bad-exit=1', '--unbuffered', '--job-name=tsmpiexec-proxy', '/usr/bin/node', '/opt/t/bin/tsmpiexec.js', 'proxy',
    ]);
  });
  it('no CPU count when the allocation does not say; -launcher-exec replaces srun', () => {
    const a = srunArgv({ jobId: '1', exec: ['/opt/slurm/bin/srun', '--quiet'] }, 'n2', ['p', 'proxy']);
    expect(a.slice(0, 3)).toEqual(['/opt/slurm/bin/srun', '--quiet', '--jobid=1']);
    expect(a.some((w) => w.startsWith('--cpus-per-task'))).toBe(false);
    expect(a.slice(-2)).toEqual(['p', 'proxy']);
  });
});

describe('srunEnv', () => {
  it('drops the variables srun would read as option defaults, keeps the rest', () => {
    const env = srunEnv({
      SLURM_JOB_ID: '42', SLURM_NTASKS: '8', SLURM_NTASKS_PER_NODE: '4', SLURM_CPUS_PER_TASK: '2', SLURM_MEM_PER_CPU: '1000',
      SLURM_CPU_BIND_TYPE: 'cores', SLURM_MPI_TYPE: 'pmix', SLURM_EXPORT_ENV: 'NONE', PATH: '/bin', HOME: '/h', X: undefined,
    });
    expect(env).toEqual({ SLURM_JOB_ID: '42', PATH: '/bin', HOME: '/h' });
  });
});

describe('isSlurmTaskVar', () => {
  it('names the task and step identity of an outer srun, not the job', () => {
    for (const k of ['SLURM_PROCID', 'SLURM_LOCALID', 'SLURM_NODEID', 'SLURM_STEP_ID', 'SLURM_STEPID', 'SLURM_STEP_NODELIST', 'SLURM_SRUN_COMM_PORT', 'SLURM_GTIDS', 'SLURM_TASK_PID', 'SLURM_MPI_TYPE', 'SLURM_PMIX_MAPPING_SERV', 'SLURMD_NODENAME', 'SLURM_CPU_BIND_LIST']) {
      expect(isSlurmTaskVar(k), k).toBe(true);
    }
    for (const k of ['SLURM_JOB_ID', 'SLURM_JOB_NODELIST', 'SLURM_TASKS_PER_NODE', 'SLURM_CONF', 'SLURM_SUBMIT_DIR', 'PMI_RANK', 'PATH']) {
      expect(isSlurmTaskVar(k), k).toBe(false);
    }
  });
});

/** A stand-in for srun's ChildProcess: records signals, "exits" when told to. */
function fakeChild(): ChildProcess & { signals: string[]; exit(): void } {
  const ee = new EventEmitter() as unknown as ChildProcess & { signals: string[]; exit(): void };
  const state = { exitCode: null as number | null };
  Object.defineProperty(ee, 'exitCode', { get: () => state.exitCode });
  Object.defineProperty(ee, 'signalCode', { get: () => null });
  ee.signals = [];
  ee.kill = ((sig?: NodeJS.Signals | number) => {
    ee.signals.push(String(sig));
    return true;
  }) as ChildProcess['kill'];
  ee.exit = () => {
    state.exitCode = 0;
    ee.emit('exit', 0, null);
  };
  return ee;
}

describe('softenKill', () => {
  afterEach(() => {
    vi.useRealTimers();
  });
  it('turns SIGKILL into SIGTERM, then SIGKILL after the grace period if srun is still there', () => {
    vi.useFakeTimers();
    const c = fakeChild();
    softenKill(c, 5000);
    c.kill('SIGKILL');
    c.kill('SIGKILL');
    expect(c.signals).toEqual(['SIGTERM']);
    vi.advanceTimersByTime(4999);
    expect(c.signals).toEqual(['SIGTERM']);
    vi.advanceTimersByTime(1);
    expect(c.signals).toEqual(['SIGTERM', 'SIGKILL']);
  });
  it('no SIGKILL once srun has exited; other signals pass through', () => {
    vi.useFakeTimers();
    const c = fakeChild();
    softenKill(c, 5000);
    c.kill('SIGINT');
    c.kill('SIGKILL');
    c.exit();
    vi.advanceTimersByTime(10_000);
    expect(c.signals).toEqual(['SIGINT', 'SIGTERM']);
  });
});
