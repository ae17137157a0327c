// MPI_Comm_spawn end to end through bin/tsmpiexec on this host (the test hosts: multi-host.test.ts). Debian's MPICH
// (ch4:ucx) cannot spawn at all, so the spawner is a real third-party PMI-2 client, Slurm's libpmi2
// (PMI2_Job_Spawn with the preput MPICH's MPI_Comm_spawn sends), and our own PMI-1 client (`tsmpiexec pmi-check
// --spawn`, the per-segment mcmd=spawn form of MPICH 4.0.2), over every transport. Children must come up as a
// group of their own (own kvsname, ranks 0..n-1, PMI_SPAWNED / spawner-jobid, the parent's preput in their KVS),
// inside the job's containment, in the exit policy and the report; a bad request gets an error reply and one line.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BIN, FIX, runHydra, trackedJobs } from '../helpers/run.js';

const fx = (name: string): string => path.join(FIX, name);

beforeAll(() => {
  if (!fs.existsSync('dist/main.js')) throw new Error('dist/main.js is missing: run `make build` first (make test does)');
  if (!fs.existsSync(fx('pmi2spawn'))) throw new Error(`${fx('pmi2spawn')} is missing: the global setup builds it (needs libpmi2-0-dev: make system-deps)`);
});

afterEach(async () => {
  expect(await jobs.leftovers(), 'processes of the job left behind').toEqual([]);
});

const jobs = trackedJobs();
const run = jobs.run;

/** The lines of `text` that start with `prefix`, sorted. */
function linesWith(text: string, prefix: string): string[] {
  return text.split('\n').filter((l) => l.startsWith(prefix)).sort();
}

describe('PMI2_Job_Spawn from Slurm libpmi2', () => {
  it.each(['fd', 'tcp'] as const)('starts the children as a new group with the preput, over %s', async (transport) => {
    const r = await run(['--pmi-transport', transport, '-l', '-n', '2', fx('pmi2spawn'), '3']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const spawned = /\[0\] parent 0 of 2: spawned 3 in (\S+)/.exec(r.stdout);
    expect(spawned, r.stdout).not.toBeNull();
    const childJob = spawned?.[1] ?? '';
    expect(r.stdout).toContain('[1] parent 1 of 2\n');
    // Labels [spawn:rank]; their own jobid; the parent's kvsname in the preput the parent put.
    const children = linesWith(r.stdout, '[1:');
    expect(children).toHaveLength(3);
    const parentJob = /parent key parent-port-of-(\S+?)(,|$)/.exec(children[0] ?? '')?.[1] ?? '';
    expect(parentJob).toMatch(/^kvs_/);
    expect(parentJob).not.toBe(childJob);
    for (let i = 0; i < 3; i++) {
      // child 0 also found, through the job-wide name service, what the parent published before spawning
      const tail = i === 0 ? `, looked up published-by-${parentJob}` : '';
      expect(children[i]).toBe(`[1:${i}] child ${i} of 3 on ${os.hostname()}: appnum 0, jobid ${childJob}, parent key parent-port-of-${parentJob}${tail}`);
    }
    expect(childJob).toBe(`${parentJob}_spawn1`);
  });

  it('as an unprivileged user: the pod proxy starts the children inside the job\'s pod', async (ctx) => {
    if (process.getuid?.() !== 0) return ctx.skip('needs root to become nobody (setpriv)');
    const r = await run(['-l', '-n', '2', fx('pmi2spawn'), '2'], {
      wrap: ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'],
      env: { HOME: '/nonexistent' },
    });
    expect(r.code).toBe(0);
    expect(linesWith(r.stdout, '[1:')).toHaveLength(2);
    // the containment notice (no cgroups for nobody here), nothing else
    expect(r.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('tsmpiexec: isolation on '))).toEqual([]);
  });

  it('a child that fails ends the job with its code, named as a rank of the spawn', async () => {
    const r = await run(['-n', '2', '-genv', 'PMI2SPAWN_CHILD_FAIL', '1', fx('pmi2spawn'), '2']);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('tsmpiexec: rank 1 of spawn 1 on ');
    expect(r.stderr).toMatch(/rank 1 of spawn 1 on \S+:? exited with code 3/);
  });

  it('the children are contained and accounted like the first ranks (--report-json)', async () => {
    const dir = fs.mkdtempSync(path.resolve('build/spawn-report-'));
    try {
      const file = path.join(dir, 'usage.json');
      const r = await run(['-n', '2', '--report-json', file, fx('pmi2spawn'), '2']);
      expect(r.code).toBe(0);
      const rep = JSON.parse(fs.readFileSync(file, 'utf8')) as { ranks: Array<{ rank: number; spawn_group?: number; spawn_rank?: number; exit_code: number; mem_peak_bytes: number | null; cpu_user_s: number | null }> };
      expect(rep.ranks.map((x) => [x.rank, x.spawn_group, x.spawn_rank])).toEqual([
        [0, undefined, undefined],
        [1, undefined, undefined],
        [2, 1, 0],
        [3, 1, 1],
      ]);
      for (const x of rep.ranks) expect(x.exit_code).toBe(0);
      if (process.getuid?.() === 0) {
        // root: every rank has its own memory cgroup, spawned ones too
        for (const x of rep.ranks) expect(x.mem_peak_bytes, `rank ${x.rank}`).toBeGreaterThan(0);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a host the job does not have: an error reply to the spawner and one line naming it', async () => {
    const r = await run(['-n', '2', fx('pmi2spawn'), '2', 'no-such-host']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("tsmpiexec: MPI_Comm_spawn from rank 0 failed: host no-such-host is not one of the job's hosts");
    expect(r.stderr).toContain('PMI2_Job_Spawn failed');
    expect(r.stdout).not.toContain('child');
  });

  it('a runaway request (more than 65536 processes in one job) is refused before anything starts', async () => {
    const r = await run(['-n', '1', fx('pmi2spawn'), '70000']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('tsmpiexec: MPI_Comm_spawn from rank 0 failed: spawning 70000 more processes would pass the limit of 65536 spawned processes per job');
  });

  it('a program that does not exist: an error reply naming it, no child started', async () => {
    const r = await run(['-n', '1', fx('pmi2spawn'), '2', '-', '/nonexistent/spawnee']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('tsmpiexec: MPI_Comm_spawn from rank 0 failed: program not found (/nonexistent/spawnee)');
  });
});

describe('the same programs under MPICH\'s own launcher', () => {
  const hasHydra = ['/usr/bin/mpiexec.hydra', '/usr/local/bin/mpiexec.hydra'].some((p) => fs.existsSync(p));

  it.runIf(hasHydra)('pmi2spawn gives the same lines under mpiexec.hydra (the fixture does not merely agree with us)', async () => {
    const marker = `pmi2spawn-hydra-${process.pid}`;
    jobs.track(marker);
    // without the name-service step: libpmi2 reads a lookup's answer from `value`, Hydra sends only `port`
    const r = await runHydra(['-n', '2', fx('pmi2spawn'), '2'], marker, { PMI2SPAWN_NO_NAMES: '1' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^parent 0 of 2: spawned 2 in \S+$/m);
    expect(linesWith(r.stdout, 'child ')).toHaveLength(2);
    for (const l of linesWith(r.stdout, 'child ')) expect(l).toMatch(/^child [01] of 2 on \S+: appnum 0, jobid \S+, parent key parent-port-of-\S+$/);
  });
});

describe('PMI-1 spawn with the project client (tsmpiexec pmi-check --spawn)', () => {
  it.each(['fd', 'tcp', 'unix'] as const)('over %s: children check their own group and see the parent', async (transport) => {
    const r = await run(['--pmi-transport', transport, '-n', '2', BIN, 'pmi-check', '--spawn', '3', '--keys', '2']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const parent0 = /pmi-check: rank 0 of 2 .*; spawned 3 processes$/m.exec(r.stdout);
    expect(parent0, r.stdout).not.toBeNull();
    const kids = r.stdout.split('\n').filter((l) => / of 3 on .*; spawned by kvs_/.test(l));
    expect(kids).toHaveLength(3);
    // Both groups summarise their own exchange: 2 parents, 3 children.
    expect(r.stdout).toContain('pmi-check: OK: 2 ranks, 2 keys each');
    expect(r.stdout).toContain('pmi-check: OK: 3 ranks, 2 keys each');
    const parentKvs = /spawned by (\S+)$/.exec(kids[0] ?? '')?.[1];
    expect(parentKvs).toMatch(/^kvs_/);
    for (const k of kids) expect(k.endsWith(`spawned by ${parentKvs}`)).toBe(true);
  });
});
