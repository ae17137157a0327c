// End to end containment through bin/tsmpiexec as root on this host (hybrid cgroups: v1 controllers plus the
// cgroup2 core): escaped daemons die with the job, limits hold and are reported, usage matches reality, each
// job has its own /tmp, and no cgroup, mount or directory of a job outlives it.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { killLive, leftovers, rmdirWhenFree, runTsmpiexec, type RunOptions, type RunResult } from '../helpers/run.js';
import { allJobCgroups } from '../fixtures/hardening/leaks.js';

const isRoot = process.getuid?.() === 0;
let lastMarker: string | undefined;
/** Controller pids of this test's jobs: their cgroups are named after them (kvs_<pid>_...). */
let jobPids: number[] = [];

/** Extra environment of the current describe block (TSMPIEXEC_NATIVE=0 runs the shell recipes). */
let modeEnv: Record<string, string> = {};

async function run(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await runTsmpiexec(args, { timeoutMs: 30_000, ...opts, env: { ...modeEnv, ...opts.env } });
  lastMarker = r.marker;
  if (r.pid !== undefined) jobPids.push(r.pid);
  return r;
}

/** Every cgroup directory of this test's jobs (other test files run jobs at the same time). */
function jobCgroups(): string[] {
  return allJobCgroups().filter((p) => jobPids.some((pid) => p.includes(`kvs_${pid}_`)));
}

const jobMounts = (): string[] => fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes('tsmpiexec'));

afterEach(async () => {
  killLive();
  if (lastMarker) {
    const left = await leftovers(lastMarker, 5000);
    lastMarker = undefined;
    expect(left, 'processes of the job left behind').toEqual([]);
  }
  expect(jobCgroups(), 'cgroups left behind').toEqual([]);
  expect(jobMounts().filter((m) => jobPids.some((pid) => m.includes(`kvs_${pid}_`))), 'mounts left behind').toEqual([]);
  jobPids = [];
  modeEnv = {};
});

const NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];

describe.runIf(isRoot)('containment as user nobody (no cgroups: a pod of user, mount and PID namespaces)', () => {
  it('runs the job with a private /tmp shared by its ranks and says how it fell back', async () => {
    const tag = `nobody-${process.pid}`;
    const r = await run(['-n', '2', '-l', 'sh', '-c', `id -u; if [ $PMI_RANK = 0 ]; then echo hi > /tmp/${tag}; fi; sleep 0.5; cat /tmp/${tag}`], { wrap: NOBODY });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('[0] 65534');
    expect(r.stdout).toContain('[1] hi');
    expect(fs.existsSync(`/tmp/${tag}`)).toBe(false);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/no cgroups .*containment by the PID-namespace pod/);
  });

  it('contains a setsid daemon with the PID namespace', async () => {
    const r = await run(['-n', '1', 'sh', '-c', 'setsid sleep 300 & sleep 0.2; echo spawned'], { wrap: NOBODY });
    expect(r.code).toBe(0);
    expect(r.ms).toBeLessThan(15_000);
    // afterEach checks that no process of the job (the daemon carries the marker) survived
  });
});

const HELPER = path.resolve('dist/native/tsmpiexec-helper');

// Every case twice: with the native helper (isolate/native.ts; CI builds it) and with the shell recipes it
// replaces (TSMPIEXEC_NATIVE=0), which is what a machine without a C compiler runs.
const MODES: Array<{ mode: string; env: Record<string, string> }> = [
  { mode: 'native helper', env: {} },
  { mode: 'shell recipes', env: { TSMPIEXEC_NATIVE: '0' } },
];
describe.runIf(isRoot).each(MODES)('containment as root (hybrid cgroups here), $mode', ({ mode, env }) => {
  beforeEach(() => {
    modeEnv = env;
  });

  it('starts the /tmp namespace holder and the ranks through the recipe of this mode', async () => {
    // Rank 0 lists every process in its mount namespace (the job's private /tmp): the holder is one of them.
    const script = [
      'cat /proc/self/cgroup | grep -c tsmpiexec-',
      'if [ $PMI_RANK = 0 ]; then me=$(readlink /proc/self/ns/mnt)',
      'for p in /proc/[0-9]*; do [ "$(readlink $p/ns/mnt 2>/dev/null)" = "$me" ] && echo "ns: $(tr "\\0" " " < $p/cmdline)"; done; fi',
      'exit 0',
    ].join('\n');
    const r = await run(['-n', '2', 'sh', '-c', script]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    // every rank joined its cgroups before exec (4 hierarchies on this hybrid host: unified, memory, pids, cpu)
    const counts = lines.filter((l) => /^\d+$/.test(l)).map(Number);
    expect(counts).toHaveLength(2);
    expect(Math.min(...counts)).toBeGreaterThanOrEqual(2);
    const inNs = lines.filter((l) => l.startsWith('ns: ')).map((l) => l.slice(4));
    if (mode === 'native helper') {
      expect(fs.existsSync(HELPER), `${HELPER} is built (make build)`).toBe(true);
      expect(inNs.filter((c) => c.startsWith(`${HELPER} holder `)), inNs.join('\n')).toHaveLength(1);
    } else {
      expect(inNs.filter((c) => c.startsWith('sleep infinity')), inNs.join('\n')).toHaveLength(1);
      expect(inNs.some((c) => c.includes(HELPER)), inNs.join('\n')).toBe(false);
    }
  });

  it('kills a setsid double-forked daemon with the job and returns promptly', async () => {
    // not under /tmp: the ranks' /tmp is private
    fs.mkdirSync('build', { recursive: true });
    const pidFile = path.resolve('build', `daemon-${process.pid}.pid`);
    try {
      // the daemon also holds the rank's stdout open: Hydra waits for it (300 s here); we must not
      const r = await run(['-n', '2', 'sh', '-c', `setsid sh -c 'sleep 300 & echo $! >> ${pidFile}; sleep 300' & sleep 0.3; echo started`]);
      expect(r.code).toBe(0);
      expect(r.ms).toBeLessThan(15_000);
      const pids = fs.readFileSync(pidFile, 'utf8').trim().split('\n').map(Number);
      expect(pids).toHaveLength(2);
      for (const p of pids) expect(fs.existsSync(`/proc/${p}/stat`) && !fs.readFileSync(`/proc/${p}/stat`, 'utf8').includes(') Z'), `daemon ${p} alive`).toBe(false);
    } finally {
      fs.rmSync(pidFile, { force: true });
    }
  });

  it('caps a fork storm with --pids-per-rank and still cleans up', async () => {
    const out = path.resolve('build', `storm-${process.pid}.json`);
    const r = await run(['--pids-per-rank', '20', '--report-json', out, '-n', '1', 'sh', '-c', 'n=0; while [ $n -lt 200 ]; do sleep 30 & n=$((n+1)); done 2>/dev/null; exit 0']);
    expect(r.code).not.toBeNull();
    const report = JSON.parse(fs.readFileSync(out, 'utf8'));
    fs.rmSync(out, { force: true });
    expect(report.ranks[0].pids_peak).toBeLessThanOrEqual(20);
    expect(report.ranks[0].pids_peak).toBeGreaterThanOrEqual(15);
  });

  it('reports a rank killed at its memory limit as out of memory', async () => {
    const r = await run(['--mem-per-rank', '64M', '-n', '2', 'sh', '-c', 'if [ $PMI_RANK = 1 ]; then python3 -c "x = bytearray(300 << 20)"; else sleep 30; fi']);
    expect(r.code).toBe(137);
    expect(r.stderr).toMatch(/rank 1 on \S+ exceeded its 64 MiB memory limit/);
  });

  it('accounts CPU and memory within 10% of what the rank did', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acct-'));
    try {
      const script = [
        'import time, os, resource',
        'x = bytearray(64 << 20)',
        'for i in range(0, len(x), 4096): x[i] = 1',
        't = time.process_time()',
        'while time.process_time() - t < 1.0: pass',
        'u = resource.getrusage(resource.RUSAGE_SELF)',
        'print(u.ru_utime + u.ru_stime, u.ru_maxrss * 1024)',
      ].join('\n');
      const r = await run(['--report-json', `${dir}/u.json`, '-n', '1', 'python3', '-c', script]);
      expect(r.code).toBe(0);
      const [cpu, rss] = r.stdout.trim().split(' ').map(Number) as [number, number];
      const rep = JSON.parse(fs.readFileSync(`${dir}/u.json`, 'utf8'));
      const rank = rep.ranks[0];
      expect(rank.cpu_user_s + rank.cpu_sys_s).toBeGreaterThan(cpu * 0.9);
      expect(rank.cpu_user_s + rank.cpu_sys_s).toBeLessThan(cpu * 1.1 + 0.05);
      expect(rank.mem_peak_bytes).toBeGreaterThan(64 * 2 ** 20);
      expect(rank.mem_peak_bytes).toBeLessThan(rss * 1.1 + 8 * 2 ** 20);
      expect(rep.hosts[0].cgroup).toBe('hybrid');
      expect(rep.hosts[0].tmp).toBe('private');
      expect(fs.statSync(`${dir}/u.json`).mode & 0o077).toBe(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('gives each job its own /tmp, shared by its ranks, invisible to other jobs and the host', async () => {
    const tag = `secret-${process.pid}`;
    const a = run(['-n', '2', 'sh', '-c', `if [ $PMI_RANK = 0 ]; then echo a > /tmp/${tag}; fi; sleep 1; cat /tmp/${tag}; sleep 2`]);
    await new Promise((r) => setTimeout(r, 700));
    const b = await run(['-n', '1', 'sh', '-c', `ls /tmp/${tag} 2>&1 || echo absent; echo TMPDIR=$TMPDIR`]);
    const ra = await a;
    expect(ra.stdout.trim().split('\n')).toEqual(['a', 'a']);
    expect(b.stdout).toContain('absent');
    expect(fs.existsSync(`/tmp/${tag}`)).toBe(false);
    expect(await leftovers(ra.marker)).toEqual([]);
  });

  it('keeps a program and working directory under the host /tmp visible inside the private /tmp', async () => {
    const dir = fs.mkdtempSync(path.join('/tmp', 'tsmpi-ws-'));
    try {
      fs.copyFileSync(path.resolve('build/fixtures/hello'), path.join(dir, 'hello'));
      fs.chmodSync(path.join(dir, 'hello'), 0o755);
      const r = await run(['-n', '2', './hello'], { cwd: dir });
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('hello from rank 1 of 2');
      expect(r.stderr).toBe('');
      const ls = await run(['-n', '1', 'sh', '-c', 'ls /tmp'], { cwd: dir });
      expect(ls.stdout.trim()).toBe(path.basename(dir));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('puts the private /tmp in an HTCondor job\'s scratch directory, and removes it afterwards', async () => {
    const scratch = fs.mkdtempSync(path.join('/var/tmp', 'condor-scratch-'));
    try {
      const r = await run(['--oversubscribe', '-n', '2', 'sh', '-c', `echo $PMI_RANK > /tmp/r$PMI_RANK; sleep 0.5; ls /var/tmp/${path.basename(scratch)}/*/`], {
        env: { _CONDOR_SCRATCH_DIR: scratch },
        // not the clone's directory: a clone under /tmp would be kept visible in the private /tmp, and listed
        cwd: '/',
      });
      expect(r.code).toBe(0);
      expect(r.stdout.trim().split('\n').sort()).toEqual(['r0', 'r0', 'r1', 'r1']);
      expect(fs.readdirSync(scratch)).toEqual([]);
    } finally {
      fs.rmSync(scratch, { recursive: true, force: true });
    }
  });

  it('--isolate off runs without cgroups; strict succeeds where isolation is available', async () => {
    const off = await run(['--isolate', 'off', '-n', '1', 'sh', '-c', 'cat /proc/self/cgroup']);
    expect(off.stdout).not.toContain('tsmpiexec-');
    const strict = await run(['--isolate', 'strict', '-n', '1', 'sh', '-c', 'cat /proc/self/cgroup']);
    expect(strict.code).toBe(0);
    expect(strict.stdout).toContain('tsmpiexec-');
  });
});

// An ordinary user with a delegated cgroup, as systemd gives one (Delegate=yes): root makes a cgroup under its
// own, hands the user the directory, cgroup.procs, cgroup.subtree_control and cgroup.threads (never the limit
// files), and moves the user's shell into it; tsmpiexec then runs as that user. The cgroup2 part is what systemd
// delegates; this host keeps memory and pids on cgroup v1, which systemd never delegates, so those are handed
// over the way an administrator could (directory, cgroup.procs, tasks).
const V2_DELEGATE = ['cgroup.procs', 'cgroup.subtree_control', 'cgroup.threads'];
const V1_DELEGATE = ['cgroup.procs', 'tasks'];

/** Our own cgroup directory in the cgroup2 hierarchy (key '') or a v1 one ('memory', 'pids'), if mounted. */
function ownCgroupDir(key: string): string | undefined {
  const own = fs.readFileSync('/proc/self/cgroup', 'utf8').split('\n').map((l) => l.split(':')).find((f) => (key === '' ? f[0] === '0' && f[1] === '' : (f[1] ?? '').split(',').includes(key)));
  if (own === undefined) return undefined;
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [left, right] = line.split(' - ');
    if (left === undefined || right === undefined) continue;
    const [type, , opts] = right.split(' ');
    const [, , , root, mount] = left.split(' ');
    const match = key === '' ? type === 'cgroup2' : type === 'cgroup' && (opts ?? '').split(',').includes(key);
    if (!match || root === undefined || mount === undefined) continue;
    const rel = path.relative(root, own[2] ?? '/');
    if (rel.startsWith('..')) continue;
    return path.join(mount, rel);
  }
  return undefined;
}

interface Delegation {
  dirs: string[];
  /** argv prefix: join every delegated cgroup (as root), then become the user and run the rest. */
  wrap: string[];
  dispose(): Promise<string[]>;
}

function delegate(keys: string[], uid: number): Delegation {
  const dirs: string[] = [];
  for (const key of keys) {
    const d = path.join(ownCgroupDir(key)!, `tsmpiexec-delegated-${process.pid}-${key || 'v2'}`);
    fs.mkdirSync(d);
    dirs.push(d);
    for (const f of ['', ...(key === '' ? V2_DELEGATE : V1_DELEGATE)]) fs.chownSync(path.join(d, f), uid, uid);
  }
  const joins = dirs.map((d) => `echo $$ > ${d}/cgroup.procs`).join('; ');
  return {
    dirs,
    wrap: ['sh', '-c', `${joins}; exec setpriv --reuid=${uid} --regid=${uid} --clear-groups "$@"`, 'delegated-shell'],
    async dispose() {
      // what the job left below the delegated cgroups (it must be nothing), then the delegated cgroups themselves
      const left = dirs.flatMap((d) => fs.readdirSync(d, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => `${d}/${e.name}`));
      for (const d of [...left.reverse(), ...dirs]) {
        await rmdirWhenFree(d);
      }
      return left;
    },
  };
}

const delegable = isRoot && ownCgroupDir('') !== undefined;
describe.runIf(delegable).each(MODES)('containment as user nobody in a delegated cgroup (skipped without root and a cgroup2 mount), $mode', ({ env }) => {
  const uid = 65534;
  let work = '';
  let deleg: Delegation | undefined;
  beforeEach(() => {
    modeEnv = env;
    // outside /tmp (the ranks' /tmp is private), writable by the user
    fs.mkdirSync('build', { recursive: true });
    work = fs.mkdtempSync(path.resolve('build', 'delegated-'));
    fs.chownSync(work, uid, uid);
  });
  afterEach(async () => {
    const left = (await deleg?.dispose()) ?? [];
    deleg = undefined;
    fs.rmSync(work, { recursive: true, force: true });
    expect(left, 'cgroups the job left in the delegated cgroup').toEqual([]);
  });

  it('cgroup2 only (what systemd delegates): a daemon that ignores SIGTERM dies with the job by cgroup.kill', async (ctx) => {
    deleg = delegate([''], uid);
    if (!fs.existsSync(`${deleg.dirs[0]}/cgroup.kill`)) ctx.skip('skipped because this kernel has no cgroup.kill (Linux 5.14)');
    const pids = path.join(work, 'daemons');
    const r = await run(['--report-json', path.join(work, 'u.json'), '-n', '2', 'sh', '-c', `setsid sh -c 'trap "" TERM; sleep 300' & echo $! >> ${pids}; id -u`], { wrap: deleg.wrap });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual(['65534', '65534']);
    const daemons = fs.readFileSync(pids, 'utf8').trim().split('\n').map(Number);
    expect(daemons).toHaveLength(2);
    // the pids are the PID namespace's (the pod); no process of the job may be left, by the job marker
    expect(await leftovers(r.marker, 3000)).toEqual([]);
    const rep = JSON.parse(fs.readFileSync(path.join(work, 'u.json'), 'utf8'));
    expect(rep.hosts[0].cgroup).toBe('v2');
    // CPU from the ranks' own cgroups; memory and pids are not delegated here
    expect(rep.ranks[0].mem_peak_bytes).toBeNull();
    expect(r.stderr).toMatch(/memory peak and OOM not measured/);
  });

  it('with v1 memory and pids delegated too: --mem-per-rank is enforced, --report has every rank\'s figures', async (ctx) => {
    if (ownCgroupDir('memory') === undefined || ownCgroupDir('pids') === undefined) ctx.skip('skipped because memory or pids is not a cgroup v1 hierarchy here');
    deleg = delegate(['', 'memory', 'pids'], uid);
    const out = path.join(work, 'u.json');
    const r = await run(['--mem-per-rank', '64M', '--report-json', out, '-n', '2', 'sh', '-c', 'if [ $PMI_RANK = 1 ]; then exec python3 -c "x = bytearray(300 << 20)"; fi; head -c 20000000 /dev/zero | tail -c 1 >/dev/null'], { wrap: deleg.wrap });
    expect(r.code).toBe(137);
    expect(r.stderr).toMatch(/rank 1 on \S+ exceeded its 64 MiB memory limit/);
    const rep = JSON.parse(fs.readFileSync(out, 'utf8'));
    expect(rep.hosts[0].cgroup).toBe('hybrid');
    const rank0 = rep.ranks.find((x: { rank: number }) => x.rank === 0);
    expect(rank0.mem_peak_bytes).toBeGreaterThan(0);
    expect(rank0.pids_peak).toBeGreaterThanOrEqual(2);
    expect(rank0.cpu_user_s + rank0.cpu_sys_s).toBeGreaterThan(0);
    // the user could set its own limits in the rank cgroups it made, never in the delegated one
    expect(fs.statSync(`${deleg.dirs[1]}/memory.limit_in_bytes`).uid).toBe(0);
  });
});
