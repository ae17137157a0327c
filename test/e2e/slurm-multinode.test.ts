// A three-node Slurm on the network-namespace test bed (test/testbed: hosts h0..h3 with their own network
// and host name; test/slurm/cluster.sh --testbed: slurmctld on h0, one slurmd on each of h1..h3). tsmpiexec
// in the batch script on h1 runs its ranks there in-process and starts the proxies of h2 and h3 with srun,
// as steps of the job: MPI across nodes, per-host environments without the controller's node variables,
// scancel, and a proxy step cancelled under a running job.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, FIX, leftovers, processesWithMarker } from '../helpers/run.js';
import { clusterUp, slurmBedUp, slurmUnavailable, type Cluster } from '../slurm/cluster.js';

const unavailable = slurmUnavailable();
const skip = unavailable !== undefined && process.env.CI !== 'true';
const hello = path.join(FIX, 'hello');
const ompiHello = path.join(FIX, 'ompi-hello');
const pmiLibrary = path.resolve('dist/native/libtsmpiexec-pmi.so');
const node = process.execPath;

let bed: { dir: string; down(): void } | undefined;
let c: Cluster | undefined;
let marker: string | undefined;

function newMarker(): { TSMPI_TEST_RUN: string } {
  marker = randomUUID();
  return { TSMPI_TEST_RUN: marker };
}

const read = (p: string): string => (fs.existsSync(p) ? fs.readFileSync(p, 'utf8') : '');

function sleepers(m: string): number {
  return processesWithMarker(m).filter((p) => {
    try {
      return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8') === 'sleep\u0000300\u0000';
    } catch {
      return false;
    }
  }).length;
}

describe.skipIf(skip)('a three-node Slurm on the test bed', () => {
  beforeAll(() => {
    if (unavailable) throw new Error(unavailable);
    if (!fs.existsSync(hello)) throw new Error(`MPI fixtures are missing in ${FIX}`);
    bed = slurmBedUp(3, 'tssl');
    c = clusterUp({ testbed: bed.dir, cpus: 2 });
  });

  afterAll(() => {
    try {
      c?.down();
    } finally {
      bed?.down();
    }
  });

  afterEach(async () => {
    if (!marker) return;
    const left = await leftovers(marker, 10_000);
    marker = undefined;
    expect(left, 'processes of the job left behind on some host').toEqual([]);
  });

  it('runs MPI hello across the nodes without -n: in-process on the batch host, srun-started proxies on the others', async () => {
    const cl = c as Cluster;
    const out = path.join(cl.dir, 'hello.out');
    const script = cl.script('hello.sh', `#!/bin/bash\n${node} ${BIN} --verbose ${hello}\necho "tsmpiexec exit $?"\n`);
    const id = cl.submit(script, ['-N', '3', '-n', '5', '-o', out], newMarker());
    const st = await cl.waitEnded(id);
    const text = read(out);
    expect(st.state, text).toBe('COMPLETED');
    expect(text).toContain('(SLURM_JOB_NODELIST, SLURM_TASKS_PER_NODE): 3 hosts, 5 slots\n');
    expect(text).toContain('5 ranks on 3 host(s) [h1:2 h2:2 h3:1], launcher slurm');
    const hostOf = ['h1', 'h1', 'h2', 'h2', 'h3'];
    for (let i = 0; i < 5; i++) expect(text).toContain(`hello from rank ${i} of 5 on ${hostOf[i]} (allreduce sum 10, expected 10)\n`);
    expect(text).toContain('tsmpiexec exit 0\n');
  });

  it.runIf(fs.existsSync(ompiHello) && fs.existsSync(pmiLibrary))('runs an Open MPI hello across the nodes (its flux component loading our PMI library)', async () => {
    const cl = c as Cluster;
    const out = path.join(cl.dir, 'ompi.out');
    const script = cl.script('ompi.sh', `#!/bin/bash\nexport OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1\n${node} ${BIN} ${ompiHello}\necho "tsmpiexec exit $?"\n`);
    const id = cl.submit(script, ['-N', '3', '-n', '4', '-o', out], newMarker());
    const st = await cl.waitEnded(id);
    const text = read(out);
    expect(st.state, text).toBe('COMPLETED');
    const hostOf = ['h1', 'h1', 'h2', 'h3'];
    for (let i = 0; i < 4; i++) expect(text).toContain(`hello from rank ${i} of 4 on ${hostOf[i]} (allreduce sum 6, expected 6)\n`);
    expect(text).toContain('tsmpiexec exit 0\n');
  });

  it('gives each host\'s ranks the job\'s variables, not the node and task variables of the batch host', async () => {
    const cl = c as Cluster;
    const out = path.join(cl.dir, 'env.out');
    const script = cl.script(
      'env.sh',
      `#!/bin/bash\n${node} ${BIN} -l sh -c 'echo "$(hostname) job=\${SLURM_JOB_ID:-none} node=\${SLURMD_NODENAME:-none} procid=\${SLURM_PROCID:-none} local=$MPI_LOCALRANKID/$MPI_LOCALNRANKS"'\n`,
    );
    const id = cl.submit(script, ['-N', '3', '-n', '3', '-o', out], newMarker());
    const st = await cl.waitEnded(id);
    const text = read(out);
    expect(st.state, text).toBe('COMPLETED');
    for (let i = 0; i < 3; i++) expect(text).toContain(`[${i}] h${i + 1} job=${id} node=none procid=none local=0/1\n`);
  });

  it('scancel leaves no rank alive on any node', async () => {
    const cl = c as Cluster;
    const out = path.join(cl.dir, 'cancel.out');
    const script = cl.script('cancel.sh', `#!/bin/bash\n${node} ${BIN} sh -c 'echo "rank $PMI_RANK up on $(hostname)"; exec sleep 300'\n`);
    const env = newMarker();
    const id = cl.submit(script, ['-N', '3', '-n', '3', '-o', out], env);
    await cl.waitFor('three ranks to run', () => sleepers(env.TSMPI_TEST_RUN) === 3 && read(out).split('\n').filter((l) => l.includes(' up on h')).length === 3);
    cl.run(['scancel', id]);
    expect((await cl.waitEnded(id)).state).toBe('CANCELLED');
    expect(await leftovers(env.TSMPI_TEST_RUN, 10_000), 'job processes alive after scancel').toEqual([]);
  });

  it('a cancelled proxy step is a lost host: the job is torn down and says which host', async () => {
    const cl = c as Cluster;
    const out = path.join(cl.dir, 'step.out');
    const script = cl.script('step.sh', `#!/bin/bash\n${node} ${BIN} sh -c 'echo "rank $PMI_RANK up on $(hostname)"; exec sleep 300'\necho "tsmpiexec exit $?"\n`);
    const env = newMarker();
    const id = cl.submit(script, ['-N', '3', '-n', '3', '-o', out], env);
    await cl.waitFor('three ranks to run', () => sleepers(env.TSMPI_TEST_RUN) === 3 && read(out).split('\n').filter((l) => l.includes(' up on h')).length === 3);
    const steps = cl.run(['squeue', '-h', '-s', '-j', id, '-o', '%i %N']).trim().split('\n');
    const onH2 = steps.map((l) => l.split(' ')).find(([step, nodes]) => nodes === 'h2' && !step?.endsWith('.batch'))?.[0];
    expect(onH2, steps.join('\n')).toBeDefined();
    cl.run(['scancel', onH2 as string]);
    await cl.waitFor('tsmpiexec to end', () => read(out).includes('tsmpiexec exit'));
    const text = read(out);
    expect(text).toMatch(/lost the proxy on h2/);
    expect(text).not.toContain('tsmpiexec exit 0');
    expect((await cl.waitEnded(id)).state, text).toMatch(/COMPLETED|FAILED/);
    expect(await leftovers(env.TSMPI_TEST_RUN, 10_000), 'job processes alive after the lost host').toEqual([]);
  });
});
