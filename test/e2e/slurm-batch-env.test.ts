// tsmpiexec as a user runs it inside a batch job, with the batch system's variables set by the test (no batch
// system needed): where --dry-run and --verbose say the hosts came from, the slot limit and --oversubscribe,
// one-line errors for malformed variables, a user's -hosts winning, -launcher slurm outside an allocation,
// and an HTCondor job running its ranks on this host.
import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { killLive, leftovers, runTsmpiexec, type RunResult } from '../helpers/run.js';

// (temp dirs not named tsmpi-*: other tests check that jobs leave no tsmpi-* entry in /tmp)

/** Every batch variable the detection looks at, unset, so the runner's own environment cannot leak in. */
const CLEAN: Record<string, string> = Object.fromEntries(
  ['SLURM_JOB_ID', 'SLURM_JOBID', 'SLURM_JOB_NODELIST', 'SLURM_NODELIST', 'SLURM_TASKS_PER_NODE', 'SLURM_JOB_CPUS_PER_NODE', 'SLURM_STEP_ID', 'SLURM_STEPID', 'SLURMD_NODENAME', 'LSB_MCPU_HOSTS', 'PE_HOSTFILE', 'PBS_NODEFILE', '_CONDOR_SCRATCH_DIR', '_CONDOR_MACHINE_AD', '_CONDOR_JOB_AD'].map((k) => [k, '']),
);
const SLURM = { ...CLEAN, SLURM_JOB_ID: '4242', SLURM_JOB_NODELIST: 'cn[07-08]', SLURM_TASKS_PER_NODE: '2(x2)', SLURM_JOB_CPUS_PER_NODE: '2(x2)' };

let last: RunResult | undefined;
const run = async (args: string[], env: Record<string, string>): Promise<RunResult> => (last = await runTsmpiexec(args, { env, timeoutMs: 30_000 }));

afterEach(async () => {
  killLive();
  if (last) expect(await leftovers(last.marker, 5000)).toEqual([]);
  last = undefined;
});

describe('inside a batch job', () => {
  it('--dry-run and --verbose say the hosts came from the Slurm allocation; -n defaults to its tasks', async () => {
    const r = await run(['--dry-run', '--verbose', 'true'], SLURM);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('4 ranks on 2 hosts; hosts from Slurm allocation (SLURM_JOB_NODELIST, SLURM_TASKS_PER_NODE)\n');
    expect(r.stdout).toMatch(/cn07\s+2\s+0-1\n/);
    expect(r.stdout).toMatch(/cn08\s+2\s+2-3\n/);
    expect(r.stderr).toBe('tsmpiexec: hosts from the Slurm allocation of job 4242 (SLURM_JOB_NODELIST, SLURM_TASKS_PER_NODE): 2 hosts, 4 slots\n');
  });

  it('more ranks than slots is an error with a hint; --oversubscribe wraps them', async () => {
    const r = await run(['--dry-run', '-n', '6', 'true'], SLURM);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines[0]).toBe('tsmpiexec: 6 ranks asked for, but the Slurm allocation has 4 slots (SLURM_JOB_NODELIST, SLURM_TASKS_PER_NODE) [allocation]');
    expect(lines[1]).toMatch(/^hint: .*--oversubscribe/);
    expect(lines).toHaveLength(2);
    const o = await run(['--dry-run', '--oversubscribe', '-n', '6', 'true'], SLURM);
    expect(o.code).toBe(0);
    expect(o.stdout).toMatch(/cn07\s+4\s+0-1,4-5\n/);
  });

  it('a malformed variable: one line naming it and the bad part, exit 2, nothing started', async () => {
    const r = await run(['true'], { ...SLURM, SLURM_TASKS_PER_NODE: '2(x2),x' });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe("tsmpiexec: SLURM_TASKS_PER_NODE: bad count 'x' in '2(x2),x' [allocation]\nhint: the batch system set a value tsmpiexec cannot read; give the hosts yourself with -hosts or -f to bypass it\n");
  });

  it('a user -hosts wins over the allocation, even a malformed one, and --verbose says so', async () => {
    const r = await run(['--dry-run', '--verbose', '-hosts', 'a:1,b:1', 'true'], { ...SLURM, SLURM_TASKS_PER_NODE: 'garbage' });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('2 ranks on 2 hosts; hosts from command line (-hosts)');
    expect(r.stderr).toBe('tsmpiexec: hosts from -hosts (the Slurm allocation in SLURM_JOB_NODELIST is not used)\n');
  });

  it('PBS: the hosts of PBS_NODEFILE, one line per slot', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'batch-env-pbs-'));
    try {
      fs.writeFileSync(path.join(dir, 'nodes'), 'node07\nnode07\nnode08\n');
      const r = await run(['--dry-run', 'true'], { ...CLEAN, PBS_NODEFILE: path.join(dir, 'nodes'), PBS_JOBID: '17.srv' });
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('3 ranks on 2 hosts; hosts from PBS allocation (PBS_NODEFILE)\n');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('-launcher slurm outside an allocation says what is missing', async () => {
    const r = await run(['-launcher', 'slurm', 'true'], CLEAN);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain('-launcher slurm starts proxies inside a Slurm allocation, and SLURM_JOB_ID is not set');
    expect(r.stderr).toContain('hint: run tsmpiexec inside sbatch or salloc');
  });

  it('HTCondor: the ranks run on this host, as many as the slot has CPUs', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'batch-env-condor-'));
    try {
      fs.writeFileSync(path.join(dir, '.machine.ad'), 'Cpus = 3\nMemory = 2048\n');
      const env = { ...CLEAN, _CONDOR_SCRATCH_DIR: dir, _CONDOR_MACHINE_AD: path.join(dir, '.machine.ad') };
      const r = await run(['--verbose', '-l', 'sh', '-c', 'echo "rank $PMI_RANK of $PMI_SIZE"'], env);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain('hosts from the HTCondor allocation (_CONDOR_SCRATCH_DIR, _CONDOR_MACHINE_AD (Cpus)): 1 host, 3 slots\n');
      expect(r.stderr).toContain('launcher fork');
      for (let i = 0; i < 3; i++) expect(r.stdout).toContain(`[${i}] rank ${i} of 3\n`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
