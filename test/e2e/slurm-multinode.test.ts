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
const pmixServer = path.resolve('dist/native/tsmpiexec-pmix-server');
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

  it.runIf(fs.existsSync(ompiHello) && fs.existsSync(pmiLibrary))('runs an Open MPI hello across the nodes, its flux component loading our PMI library (skipped only without Open MPI or the library)', async () => {
    const cl = c as Cluster;
    const out = path.join(cl.dir, 'ompi.out');
    // TSMPIEXEC_PMIX_SERVER empty: the PMI-1 route even where the PMIx server is built (the PMIx case is below)
    const script = cl.script('ompi.sh', `#!/bin/bash\nexport OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 TSMPIEXEC_PMIX_SERVER=\n${node} ${BIN} ${ompiHello}\necho "tsmpiexec exit $?"\n`);
    const id = cl.submit(script, ['-N', '3', '-n', '4', '-o', out], newMarker());
    const st = await cl.waitEnded(id);
    const text = read(out);
    expect(st.state, text).toBe('COMPLETED');
    const hostOf = ['h1', 'h1', 'h2', 'h3'];
    for (let i = 0; i < 4; i++) expect(text).toContain(`hello from rank ${i} of 4 on ${hostOf[i]} (allreduce sum 6, expected 6)\n`);
    expect(text).toContain('tsmpiexec exit 0\n');
  });

  it.runIf(fs.existsSync(ompiHello) && fs.existsSync(pmixServer))('runs an Open MPI hello across the nodes over PMIx (skipped only without Open MPI or the PMIx server)', async () => {
    const cl = c as Cluster;
    const out = path.join(cl.dir, 'ompi-pmix.out');
    const script = cl.script('ompi-pmix.sh', `#!/bin/bash\nexport OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1\n${node} ${BIN} --mpi pmix ${ompiHello}\necho "tsmpiexec exit $?"\n`);
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

  // The test Slurm binds nothing itself (TaskPlugin=task/none): a job step may use all of its node's 2 CPUs, which
  // the script prints. Each host's proxy binds its own ranks inside that; an outer taskset around tsmpiexec (on the
  // batch host, where its ranks run in-process) narrows what it hands out.
  it('binds per host inside the allocation\'s CPUs, and inside an outer binding on the batch host', async () => {
    const cl = c as Cluster;
    const out = path.join(cl.dir, 'bind.out');
    const show = `sh -c 'echo "$(hostname) $(grep Cpus_allowed_list /proc/self/status | cut -f2)"'`;
    const script = cl.script(
      'bind.sh',
      `#!/bin/bash\necho "allocation $(grep Cpus_allowed_list /proc/self/status | cut -f2)"\n` +
        `${node} ${BIN} -bind-to core --report-bindings -l ${show}\necho "tsmpiexec exit $?"\n` +
        `taskset -c 1 ${node} ${BIN} -n 1 -bind-to core -l ${show}\necho "tsmpiexec exit $?"\n`,
    );
    const id = cl.submit(script, ['-N', '3', '-n', '6', '-o', out], newMarker());
    const st = await cl.waitEnded(id);
    const text = read(out);
    expect(st.state, text).toBe('COMPLETED');
    expect(text).toContain('allocation 0-1\n');
    const byHost: Record<string, string[]> = {};
    for (const m of text.matchAll(/^\[([0-9]+)\] (h[0-9]+) (\S+)$/gm)) (byHost[m[2] ?? ''] ??= []).push(m[3] ?? '');
    // 6 ranks, 2 per node: each node's ranks on CPUs 0 and 1 of that node, none on both
    expect(byHost['h1']?.slice(0, 2).sort(), text).toEqual(['0', '1']);
    expect(byHost['h2']?.sort(), text).toEqual(['0', '1']);
    expect(byHost['h3']?.sort(), text).toEqual(['0', '1']);
    for (const h of ['h1', 'h2', 'h3']) expect(text).toMatch(new RegExp(`rank [0-9] on ${h}: CPUs [01]\n`));
    // the second run, inside taskset -c 1: its one rank on h1 gets CPU 1, the only one it may use
    expect(byHost['h1']?.[2], text).toBe('1');
    expect(text.match(/tsmpiexec exit 0\n/g)).toHaveLength(2);
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
