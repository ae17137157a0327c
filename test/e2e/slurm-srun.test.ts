// The slurm launcher against a real Slurm: the one-node test cluster's node gets a name of its own (slurmd -N
// tsmpi-n1 on this host). In a batch script tsmpiexec knows its node from SLURMD_NODENAME and runs the ranks
// in-process; with SLURMD_NODENAME unset (as on a login node holding an allocation) the node is another host
// to it, so it starts the proxy with srun as a step of the job. Checked: MPI jobs run, binary data crosses
// srun's stdio unchanged both ways, scancel leaves no rank, and a proxy that never answers is cancelled with
// its step (srun is told to stop) while the job itself goes on.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, FIX, leftovers, processesWithMarker } from '../helpers/run.js';
import { clusterUp, slurmUnavailable, type Cluster } from '../slurm/cluster.js';

const unavailable = slurmUnavailable();
const skip = unavailable !== undefined && process.env.CI !== 'true';
const NODE = 'tsmpi-n1';
const host = os.hostname().split('.')[0] ?? os.hostname();
const hello = path.join(FIX, 'hello');
const node = process.execPath;

let c: Cluster;
let marker: string | undefined;

function newMarker(): { TSMPI_TEST_RUN: string } {
  marker = randomUUID();
  return { TSMPI_TEST_RUN: marker };
}

/** Pids whose environment holds NAME=VALUE. */
function withEnv(name: string, value: string): number[] {
  const pids: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (fs.readFileSync(`/proc/${d}/environ`).includes(`${name}=${value}\0`)) pids.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return pids;
}

const read = (p: string): string => (fs.existsSync(p) ? fs.readFileSync(p, 'utf8') : '');

const slurmdLog = (): string => read(path.join(c.dir, 'log', `slurmd-${NODE}.log`));

/** The head of a job script that makes the job's node look like another host (see the header). */
const AWAY = '#!/bin/bash\nunset SLURMD_NODENAME\n';

describe.skipIf(skip)('the slurm launcher: proxies started with srun as job steps', () => {
  beforeAll(() => {
    if (unavailable) throw new Error(unavailable);
    if (!fs.existsSync(hello)) throw new Error(`MPI fixtures are missing in ${FIX}`);
    c = clusterUp({ nodeName: NODE, cpus: 4 });
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

  it('knows its own node by SLURMD_NODENAME even when that is not the host name: ranks in-process', async () => {
    const out = path.join(c.dir, 'local.out');
    const script = c.script('local.sh', `#!/bin/bash\n${node} ${BIN} --verbose ${hello}\necho "tsmpiexec exit $?"\n`);
    const id = c.submit(script, ['-n', '2', '-o', out], newMarker());
    const st = await c.waitEnded(id);
    const text = read(out);
    expect(st.state, text).toBe('COMPLETED');
    expect(text).toContain(`2 ranks on 1 host(s) [${NODE}:2], launcher slurm`);
    expect(slurmdLog(), 'no step was started').not.toContain(`launch task StepId=${id}.0 `);
    for (let i = 0; i < 2; i++) expect(text).toContain(`hello from rank ${i} of 2 on ${host} (allreduce sum 1, expected 1)\n`);
  });

  it('runs MPI hello through an srun-started proxy, one rank per task', async () => {
    const out = path.join(c.dir, 'hello.out');
    const script = c.script('hello.sh', `${AWAY}${node} ${BIN} --verbose ${hello}\necho "tsmpiexec exit $?"\n`);
    const id = c.submit(script, ['-n', '3', '-o', out], newMarker());
    const st = await c.waitEnded(id);
    const text = read(out);
    expect(st.state, text).toBe('COMPLETED');
    expect(text).toContain(`3 ranks on 1 host(s) [${NODE}:3], launcher slurm`);
    expect(slurmdLog(), 'the proxy ran as step 0 of the job').toContain(`launch task StepId=${id}.0 `);
    for (let i = 0; i < 3; i++) expect(text).toContain(`hello from rank ${i} of 3 on ${host} (allreduce sum 3, expected 3)\n`);
    expect(text).toContain('tsmpiexec exit 0\n');
  });

  it('carries binary data over srun\'s stdio unchanged, both ways', async () => {
    const out = path.join(c.dir, 'bin.out');
    const data = path.join(c.dir, 'random.bin');
    // every byte value, CR and NUL included, in pieces that are not lines
    const buf = Buffer.alloc(3 << 20);
    for (let i = 0; i < buf.length; i++) buf[i] = (i * 7919 + (i >> 11)) & 0xff;
    fs.writeFileSync(data, buf);
    const script = c.script(
      'bin.sh',
      [
        AWAY,
        // the working directory stays visible to ranks under a private /tmp; other /tmp files may not
        `cd ${c.dir}`,
        `${node} ${BIN} -n 1 cat random.bin > random.out1`,
        'echo "out exit $?"',
        `${node} ${BIN} -n 1 cat < random.bin > random.out2`,
        'echo "in exit $?"',
        'cmp random.bin random.out1 && echo "stdout identical"',
        'cmp random.bin random.out2 && echo "stdin identical"',
        '',
      ].join('\n'),
    );
    const id = c.submit(script, ['-n', '1', '-o', out], newMarker());
    const st = await c.waitEnded(id);
    const text = read(out);
    expect(st.state, text).toBe('COMPLETED');
    expect(text).toBe('out exit 0\nin exit 0\nstdout identical\nstdin identical\n');
  });

  it('scancel leaves no rank alive (ranks under the proxy step)', async () => {
    const out = path.join(c.dir, 'cancel.out');
    const script = c.script('cancel.sh', `${AWAY}${node} ${BIN} sh -c 'echo "rank $PMI_RANK up"; exec sleep 300'\n`);
    const env = newMarker();
    const id = c.submit(script, ['-n', '2', '-o', out], env);
    const sleepers = (): number =>
      processesWithMarker(env.TSMPI_TEST_RUN).filter((p) => {
        try {
          return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8') === 'sleep\u0000300\u0000';
        } catch {
          return false;
        }
      }).length;
    await c.waitFor('both ranks to run', () => sleepers() === 2 && read(out).split(' up\n').length === 3);
    c.run(['scancel', id]);
    expect((await c.waitEnded(id)).state).toBe('CANCELLED');
    expect(await leftovers(env.TSMPI_TEST_RUN, 10_000), 'job processes alive after scancel').toEqual([]);
  });

  it('a proxy that never answers is cancelled as a step at the launch timeout, while the job goes on', async () => {
    const out = path.join(c.dir, 'timeout.out');
    const tag = randomUUID();
    const script = c.script(
      'timeout.sh',
      [
        AWAY,
        `${node} ${BIN} --launch-timeout 2 --proxy-cmd "env TSMPI_FAKE_PROXY=${tag} sh -c 'sleep 300' --" ${hello}`,
        'echo "tsmpiexec exit $?"',
        'exec sleep 300',
        '',
      ].join('\n'),
    );
    const id = c.submit(script, ['-n', '1', '-o', out], newMarker());
    await c.waitFor('the fake proxy to start', () => withEnv('TSMPI_FAKE_PROXY', tag).length > 0);
    await c.waitFor('tsmpiexec to give up', () => read(out).includes('tsmpiexec exit'));
    expect(read(out)).toMatch(/no answer from the proxy within 2 s/);
    // the batch job is still running: only a cancelled step can have taken the fake proxy away
    await c.waitFor('the proxy step to be cancelled', () => withEnv('TSMPI_FAKE_PROXY', tag).length === 0, 20_000);
    expect(c.job(id)?.state).toBe('RUNNING');
    c.run(['scancel', id]);
    await c.waitEnded(id);
  });
});
