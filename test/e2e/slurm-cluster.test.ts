// tsmpiexec inside a real one-node Slurm (test/slurm/cluster.sh: munged, slurmctld and slurmd in a private
// network namespace; the node is named after this host, so every proxy is in-process): the allocation gives
// the hosts and the rank count, scancel leaves no rank behind, and a tsmpiexec started by srun (Slurm's PMI_*
// variables set) runs its own ranks with its own PMI. Job processes carry the test's marker in their
// environment (sbatch and srun export it), so leftovers are found whatever Slurm did with them.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, FIX, leftovers, processesWithMarker } from '../helpers/run.js';
import { clusterUp, slurmUnavailable, type Cluster } from '../slurm/cluster.js';

const unavailable = slurmUnavailable();
// On a developer machine without Slurm the file is skipped; CI installs Slurm, so there it must run.
const skip = unavailable !== undefined && process.env.CI !== 'true';
const host = os.hostname().split('.')[0] ?? os.hostname();
const hello = path.join(FIX, 'hello');
const pmi2check = path.join(FIX, 'pmi2check');
const node = process.execPath;

let c: Cluster;
let marker: string | undefined;

function newMarker(): { TSMPI_TEST_RUN: string } {
  marker = randomUUID();
  return { TSMPI_TEST_RUN: marker };
}

function helloLines(out: string, size: number): string[] {
  return out.split('\n').filter((l) => l.startsWith('hello from rank') && l.includes(` of ${size} on ${host} `));
}

describe.skipIf(skip)('a real one-node Slurm, node named after this host', () => {
  beforeAll(() => {
    if (unavailable) throw new Error(unavailable);
    if (!fs.existsSync(hello)) throw new Error(`MPI fixtures are missing in ${FIX}`);
    c = clusterUp({ cpus: 4 });
  });

  afterAll(() => {
    c?.down();
  });

  afterEach(async () => {
    if (!marker) return;
    const left = await leftovers(marker, 10_000);
    marker = undefined;
    expect(left, 'processes of the job left behind').toEqual([]);
  });

  it('sbatch --wait: tsmpiexec without -n runs one rank per task of the allocation', async () => {
    const out = path.join(c.dir, 'hello.out');
    const script = c.script('hello.sh', `#!/bin/bash\n${node} ${BIN} --verbose ${hello}\necho "tsmpiexec exit $?"\n`);
    const r = await c.runAsync(['sbatch', '--wait', '-n', '3', '-o', out, script], { env: newMarker(), timeoutMs: 50_000 });
    const text = fs.readFileSync(out, 'utf8');
    expect(r.code, `${r.stderr}\n${text}`).toBe(0);
    expect(helloLines(text, 3).sort()).toEqual([0, 1, 2].map((i) => `hello from rank ${i} of 3 on ${host} (allreduce sum 3, expected 3)`));
    expect(text).toMatch(/tsmpiexec: hosts from the Slurm allocation of job \d+ \(SLURM_JOB_NODELIST, SLURM_TASKS_PER_NODE\): 1 host, 3 slots\n/);
    expect(text).toContain(`3 ranks on 1 host(s) [${host}:3], launcher slurm`);
    expect(text).toContain('tsmpiexec exit 0\n');
  });

  it('gives ranks the job but not the batch task identity, and holds -n to the allocation unless --oversubscribe', async () => {
    const out = path.join(c.dir, 'env.out');
    const script = c.script(
      'env.sh',
      [
        '#!/bin/bash',
        `${node} ${BIN} -l sh -c 'echo "job=\${SLURM_JOB_ID:-none} procid=\${SLURM_PROCID:-none} localid=\${SLURM_LOCALID:-none} pmi_rank=$PMI_RANK"'`,
        'echo "plain exit $?"',
        `${node} ${BIN} -n 3 ${hello}`,
        'echo "over exit $?"',
        `${node} ${BIN} -n 3 --oversubscribe ${hello}`,
        'echo "oversubscribed exit $?"',
        '',
      ].join('\n'),
    );
    const id = c.submit(script, ['-n', '2', '-o', out], newMarker());
    const st = await c.waitEnded(id);
    const text = fs.readFileSync(out, 'utf8');
    expect(st.state, text).toBe('COMPLETED');
    expect(text).toContain(`[0] job=${id} procid=none localid=none pmi_rank=0\n`);
    expect(text).toContain(`[1] job=${id} procid=none localid=none pmi_rank=1\n`);
    expect(text).toContain('plain exit 0\n');
    expect(text).toContain('tsmpiexec: 3 ranks asked for, but the Slurm allocation has 2 slots (SLURM_JOB_NODELIST, SLURM_TASKS_PER_NODE) [allocation]\nhint: ');
    expect(text).toContain('--oversubscribe');
    expect(text).toContain('over exit 2\n');
    expect(helloLines(text, 3)).toHaveLength(3);
    expect(text).toContain('oversubscribed exit 0\n');
  });

  it('scancel of a running job leaves no rank alive', async () => {
    const out = path.join(c.dir, 'cancel.out');
    const script = c.script('cancel.sh', `#!/bin/bash\n${node} ${BIN} sh -c 'echo "rank $PMI_RANK up"; exec sleep 300'\necho "tsmpiexec exit $?"\n`);
    const env = newMarker();
    const id = c.submit(script, ['-n', '2', '-o', out], env);
    const sleepers = (): number[] =>
      processesWithMarker(env.TSMPI_TEST_RUN).filter((p) => {
        try {
          return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8') === 'sleep\u0000300\u0000';
        } catch {
          return false;
        }
      });
    await c.waitFor('both ranks to run', () => sleepers().length === 2 && (fs.existsSync(out) ? fs.readFileSync(out, 'utf8') : '').split('up\n').length === 3);
    c.run(['scancel', id]);
    const st = await c.waitEnded(id);
    expect(st.state).toBe('CANCELLED');
    expect(await leftovers(env.TSMPI_TEST_RUN, 10_000), 'job processes alive after scancel').toEqual([]);
  });

  it('a tsmpiexec started by srun (Slurm PMI_* set) runs its own ranks with its own PMI', async () => {
    const inner = [
      'echo "outer PMI_FD=${PMI_FD:-unset} PMI_RANK=${PMI_RANK:-unset} SLURM_STEP_ID=${SLURM_STEP_ID:-unset}"',
      `${node} ${BIN} --verbose ${hello}`,
      'echo "hello exit $?"',
      `${node} ${BIN} -l sh -c 'echo "inner PMI_RANK=$PMI_RANK PMI_SIZE=$PMI_SIZE PMI_FD=$PMI_FD step=\${SLURM_STEP_ID:-none} procid=\${SLURM_PROCID:-none}"'`,
      ...(fs.existsSync(pmi2check) ? [`${node} ${BIN} -n 2 ${pmi2check}`, 'echo "pmi2check exit $?"'] : []),
    ].join('\n');
    const r = await c.runAsync(['srun', '-n1', '-c2', '--mpi=pmi2', 'bash', '-c', inner], { env: newMarker(), timeoutMs: 50_000 });
    const text = r.stdout + r.stderr;
    expect(r.code, text).toBe(0);
    expect(text).toMatch(/outer PMI_FD=\d+ PMI_RANK=0 SLURM_STEP_ID=0\n/);
    // inside a step, SLURM_TASKS_PER_NODE is the step's (1): the slots are the job's CPUs (2)
    expect(text).toMatch(/hosts from the Slurm allocation of job \d+ \(SLURM_JOB_NODELIST, SLURM_JOB_CPUS_PER_NODE\): 1 host, 2 slots; inside a job step/);
    expect(helloLines(text, 2)).toHaveLength(2);
    expect(text).toContain('hello exit 0\n');
    expect(text).toContain('[0] inner PMI_RANK=0 PMI_SIZE=2 PMI_FD=3 step=none procid=none\n');
    expect(text).toContain('[1] inner PMI_RANK=1 PMI_SIZE=2 PMI_FD=3 step=none procid=none\n');
    if (fs.existsSync(pmi2check)) expect(text).toContain('pmi2check exit 0\n');
  });
});
