// Allocations read from captured environments of each batch system (test/fixtures/batch), and one-line
// allocation errors for malformed variables that name the variable and the bad part.
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { batchSystemPresent, describeAllocation, detectAllocation } from '../../src/hosts/batch/detect.js';
import { classAdNumber } from '../../src/hosts/batch/condor.js';
import { formatError, TsmpiError } from '../../src/util/errors.js';

const DIR = path.resolve('test/fixtures/batch');

/** KEY=VALUE lines as `env` prints them; # lines are comments. */
function loadEnv(name: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of fs.readFileSync(path.join(DIR, name), 'utf8').split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return env;
}

/** readFile that serves the fixture files under the absolute paths the captured variables name. */
function files(map: Record<string, string>): (p: string) => string {
  return (p) => {
    const f = map[p];
    if (f === undefined) throw Object.assign(new Error(`ENOENT: ${p}`), { code: 'ENOENT' });
    return fs.readFileSync(path.join(DIR, f), 'utf8');
  };
}

const noFiles = files({});
const deps = { readFile: noFiles, hostname: 'exec07' };

function allocationError(f: () => unknown): TsmpiError {
  try {
    f();
  } catch (e) {
    if (e instanceof TsmpiError) return e;
    throw e;
  }
  throw new Error('expected a TsmpiError');
}

describe('captured environments', () => {
  it('Slurm batch script: SLURM_JOB_NODELIST with SLURM_TASKS_PER_NODE', () => {
    const a = detectAllocation(loadEnv('slurm-sbatch.env'), deps);
    expect(a).toMatchObject({
      system: 'Slurm',
      variables: ['SLURM_JOB_NODELIST', 'SLURM_TASKS_PER_NODE'],
      hosts: [{ name: 'cn041', slots: 2 }, { name: 'cn042', slots: 2 }, { name: 'cn043', slots: 2 }, { name: 'gpu07', slots: 1 }],
      slots: 7,
      jobId: '880123',
      cpusPerHost: { cn041: 2, cn042: 2, cn043: 2, gpu07: 1 },
    });
    expect(a?.note).toBeUndefined();
    expect(describeAllocation(a!)).toBe('the Slurm allocation of job 880123 (SLURM_JOB_NODELIST, SLURM_TASKS_PER_NODE): 4 hosts, 7 slots');
  });

  it('Slurm job step (tsmpiexec run by srun): the job\'s CPUs per node, not the step\'s one task', () => {
    const a = detectAllocation(loadEnv('slurm-step.env'), deps);
    expect(a).toMatchObject({
      system: 'Slurm',
      variables: ['SLURM_JOB_NODELIST', 'SLURM_JOB_CPUS_PER_NODE'],
      hosts: [{ name: 'n0007', slots: 4 }, { name: 'n0008', slots: 4 }],
      slots: 8,
    });
    expect(a?.note).toContain('inside a job step');
  });

  it('PBS/Torque: one PBS_NODEFILE line per slot', () => {
    const env = loadEnv('pbs-torque.env');
    const a = detectAllocation(env, { ...deps, readFile: files({ [env.PBS_NODEFILE as string]: 'pbs-torque.nodefile' }) });
    expect(a).toMatchObject({
      system: 'PBS',
      variables: ['PBS_NODEFILE'],
      hosts: [{ name: 'node07.cluster', slots: 4 }, { name: 'node08.cluster', slots: 4 }, { name: 'node11.cluster', slots: 4 }],
      slots: 12,
      jobId: '4711.headnode.cluster',
    });
  });

  it('LSF: LSB_MCPU_HOSTS pairs', () => {
    const a = detectAllocation(loadEnv('lsf.env'), deps);
    expect(a).toMatchObject({ system: 'LSF', variables: ['LSB_MCPU_HOSTS'], hosts: [{ name: 'hpc-a17', slots: 8 }, { name: 'hpc-b02', slots: 4 }], slots: 12, jobId: '553201' });
  });

  it('Grid Engine: PE_HOSTFILE host, slots, queue, processors', () => {
    const env = loadEnv('sge.env');
    const a = detectAllocation(env, { ...deps, readFile: files({ [env.PE_HOSTFILE as string]: 'sge.pe_hostfile' }) });
    expect(a).toMatchObject({
      system: 'Grid Engine',
      variables: ['PE_HOSTFILE'],
      hosts: [{ name: 'node01.cluster', slots: 4 }, { name: 'node02.cluster', slots: 4 }, { name: 'node03.cluster', slots: 2 }],
      slots: 10,
      jobId: '90210',
    });
  });

  it('HTCondor: this host, the slot\'s CPUs from the machine ad, the scratch directory recorded', () => {
    const env = loadEnv('condor.env');
    const a = detectAllocation(env, { ...deps, readFile: files({ [env._CONDOR_MACHINE_AD as string]: 'condor.machine.ad' }) });
    expect(a).toEqual({
      system: 'HTCondor',
      variables: ['_CONDOR_SCRATCH_DIR', '_CONDOR_MACHINE_AD (Cpus)'],
      hosts: [{ name: 'exec07', slots: 4 }],
      slots: 4,
      scratchDir: '/var/lib/condor/execute/dir_31337',
    });
  });

  it('HTCondor: the job ad\'s RequestCpus when the machine ad is unreadable; one slot when neither says', () => {
    const env = loadEnv('condor.env');
    const a = detectAllocation(env, { ...deps, readFile: files({ [env._CONDOR_JOB_AD as string]: 'condor.job.ad' }) });
    expect(a).toMatchObject({ hosts: [{ name: 'exec07', slots: 4 }], variables: ['_CONDOR_SCRATCH_DIR', '_CONDOR_JOB_AD (RequestCpus)'] });
    const b = detectAllocation(env, deps);
    expect(b).toMatchObject({ hosts: [{ name: 'exec07', slots: 1 }], slots: 1, note: 'no Cpus in the machine or job ad: one slot' });
  });

  it('no batch system: undefined; several: Slurm first (its spank_pbs plugin sets PBS_* too)', () => {
    expect(detectAllocation({ HOME: '/root', PATH: '/usr/bin' }, deps)).toBeUndefined();
    const both = { ...loadEnv('pbs-torque.env'), ...loadEnv('slurm-sbatch.env') };
    expect(batchSystemPresent(both)).toEqual({ system: 'Slurm', variable: 'SLURM_JOB_NODELIST' });
    expect(detectAllocation({ SLURM_NODELIST: 'old[1-2]' }, deps)).toMatchObject({ variables: ['SLURM_NODELIST'], hosts: [{ name: 'old1', slots: 1 }, { name: 'old2', slots: 1 }] });
  });

  it('empty variables count as unset', () => {
    expect(detectAllocation({ SLURM_JOB_NODELIST: '', PBS_NODEFILE: ' ' }, deps)).toBeUndefined();
  });

  it('reads ClassAd numbers only when they are numbers', () => {
    expect(classAdNumber('Cpus = 8\n', 'cpus')).toBe(8);
    expect(classAdNumber('Cpus = "8"\n', 'Cpus')).toBeUndefined();
    expect(classAdNumber('CpusTotal = 8\n', 'Cpus')).toBeUndefined();
  });
});

describe('malformed variables: one line naming the variable and the bad part', () => {
  const cases: Array<[string, Record<string, string>, Record<string, string>, string]> = [
    ['nodelist range', { SLURM_JOB_NODELIST: 'n[04-01]', SLURM_TASKS_PER_NODE: '1' }, {}, "SLURM_JOB_NODELIST: range '04-01' runs backwards in 'n[04-01]'"],
    ['unclosed bracket', { SLURM_JOB_NODELIST: 'n[1-2,gpu1', SLURM_TASKS_PER_NODE: '1' }, {}, "SLURM_JOB_NODELIST: unclosed '[' in 'n[1-2,gpu1'"],
    ['tasks per node', { SLURM_JOB_NODELIST: 'n[1-4]', SLURM_TASKS_PER_NODE: '2(x),1' }, {}, "SLURM_TASKS_PER_NODE: bad count '2(x)' in '2(x),1'"],
    ['count mismatch', { SLURM_JOB_NODELIST: 'n[1-4]', SLURM_TASKS_PER_NODE: '2(x3)' }, {}, "SLURM_TASKS_PER_NODE: '2(x3)' gives 3 counts for the 4 hosts of SLURM_JOB_NODELIST"],
    ['LSF odd words', { LSB_MCPU_HOSTS: 'h1 4 h2' }, {}, "LSB_MCPU_HOSTS: host 'h2' has no slot count (in 'h1 4 h2')"],
    ['LSF count', { LSB_MCPU_HOSTS: 'h1 four' }, {}, "LSB_MCPU_HOSTS: slot count 'four' of host 'h1' is not a positive whole number"],
    ['PBS unreadable', { PBS_NODEFILE: '/nonexistent/aux/1.srv' }, {}, 'PBS_NODEFILE: cannot read /nonexistent/aux/1.srv: ENOENT'],
    ['PBS bad line', { PBS_NODEFILE: '/aux/2' }, { '/aux/2': 'sge.pe_hostfile' }, "PBS_NODEFILE: /aux/2:1: 'node01.cluster 4 all.q@node01.cluster UNDEFINED' is not a host name"],
    ['PBS empty', { PBS_NODEFILE: '/aux/3' }, { '/aux/3': 'condor.job.ad' }, "PBS_NODEFILE: /aux/3:1: 'ClusterId = 31337' is not a host name"],
    ['SGE slots', { PE_HOSTFILE: '/pe' }, { '/pe': 'pbs-torque.nodefile' }, "PE_HOSTFILE: /pe:1: host 'node07.cluster' has no slot count"],
    ['HTCondor relative scratch', { _CONDOR_SCRATCH_DIR: 'dir_1' }, {}, "_CONDOR_SCRATCH_DIR: 'dir_1' is not an absolute path"],
  ];
  for (const [name, env, fileMap, message] of cases) {
    it(name, () => {
      const e = allocationError(() => detectAllocation(env, { readFile: files(fileMap), hostname: 'h' }));
      expect(e.code).toBe('allocation');
      expect(e.message).toBe(message);
      const text = formatError(e).split('\n');
      expect(text[0]).toBe(`tsmpiexec: ${message} [allocation]`);
      expect(text[1]).toContain('-hosts or -f');
      expect(text).toHaveLength(2);
    });
  }

  it('a kilobyte-long host list is shortened in the message', () => {
    const list = Array.from({ length: 300 }, (_, i) => `node${i}`).join(',') + ',bad!';
    const e = allocationError(() => detectAllocation({ SLURM_JOB_NODELIST: list }, deps));
    expect(e.message.length).toBeLessThan(200);
    expect(e.message).toContain("'bad!'");
  });
});
