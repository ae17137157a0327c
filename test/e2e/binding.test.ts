// -bind-to on this host, read back from each rank's own /proc/self/status (Cpus_allowed_list), with the native
// helper and without it (taskset), with isolation and with --isolate off; an MPICH program runs bound.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FIX, killLive, leftovers, runTsmpiexec, type RunResult } from '../helpers/run.js';
import { usableCpus, usableMems } from '../../src/topology/read.js';
import { formatCpuList } from '../../src/topology/cpulist.js';
import { findHierarchies } from '../../src/isolate/cgroup-paths.js';

let lastMarker: string | undefined;
/** The claims directories this file made (removed after each test). */
const runtimeDirs: string[] = [];
const runtimeDir = (): string => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'tsmpi-bind-'));
  runtimeDirs.push(d);
  return d;
};
// each run its own claims directory: other jobs on this host (other test files) must not change where ours go
async function run(args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  const r = await runTsmpiexec(args, { env: { XDG_RUNTIME_DIR: runtimeDir(), ...env } });
  lastMarker = r.marker;
  return r;
}
const SHOW = ['sh', '-c', 'grep Cpus_allowed_list /proc/self/status'];
const usable = usableCpus() ?? [];
const two = usable.length === 2 ? usable : undefined;

/** rank → its Cpus_allowed_list, from -l output. */
function allowed(r: RunResult): Record<number, string> {
  const out: Record<number, string> = {};
  for (const m of r.stdout.matchAll(/^\[([0-9]+)\] Cpus_allowed_list:\s*(\S+)$/gm)) out[Number(m[1])] = m[2] ?? '';
  return out;
}

beforeAll(() => {
  if (!fs.existsSync('dist/main.js')) throw new Error('dist/main.js is missing: run `make build` first');
});
afterEach(async () => {
  killLive();
  if (lastMarker) {
    const left = await leftovers(lastMarker);
    lastMarker = undefined;
    expect(left, 'processes of the job left behind').toEqual([]);
  }
  // the last job to let go of its CPUs removes the claims directory: nothing of ours is left in XDG_RUNTIME_DIR
  const dirs = runtimeDirs.splice(0);
  const inside = dirs.flatMap((d) => fs.readdirSync(d).map((e) => path.join(d, e)));
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  expect(inside, 'left in XDG_RUNTIME_DIR').toEqual([]);
});

const MODES: Array<[string, Record<string, string>]> = [
  ['native helper', {}],
  ['taskset (TSMPIEXEC_NATIVE=0)', { TSMPIEXEC_NATIVE: '0' }],
];

describe.skipIf(two === undefined)('binding on a 2-CPU host', () => {
  const [a = 0, b = 1] = two ?? [];
  const all = formatCpuList(usable);
  for (const [mode, env] of MODES) {
    for (const iso of [[], ['--isolate', 'off']]) {
      const where = `${mode}${iso.length ? ', --isolate off' : ''}`;
      it(`-n 2 -bind-to core: one CPU each (${where})`, async () => {
        const r = await run([...iso, '-l', '-n', '2', '-bind-to', 'core', ...SHOW], env);
        expect(r.code).toBe(0);
        expect(allowed(r)).toEqual({ 0: String(a), 1: String(b) });
      });
      it(`-bind-to user:1,0 reverses (${where})`, async () => {
        const r = await run([...iso, '-l', '-n', '2', '--bind-to', `user:${b},${a}`, ...SHOW], env);
        expect(allowed(r)).toEqual({ 0: String(b), 1: String(a) });
      });
    }
    it(`the default binds at -n 2 and not at -n 4; -bind-to none never (${mode})`, async () => {
      expect(allowed(await run(['-l', '-n', '2', ...SHOW], env))).toEqual({ 0: String(a), 1: String(b) });
      expect(allowed(await run(['-l', '-n', '4', ...SHOW], env))).toEqual({ 0: all, 1: all, 2: all, 3: all });
      expect(allowed(await run(['-l', '-n', '2', '-bind-to', 'none', ...SHOW], env))).toEqual({ 0: all, 1: all });
    });
  }

  it('--report-bindings and --verbose say what ran', async () => {
    const r = await run(['--report-bindings', '--verbose', '-n', '2', 'true']);
    expect(r.stderr).toContain(`binding: one core per rank (2 ranks, 2 usable cores) on ${os.hostname()}`);
    expect(r.stderr).toContain(`rank 0 on ${os.hostname()}: CPUs ${a}`);
    expect(r.stderr).toContain(`rank 1 on ${os.hostname()}: CPUs ${b}`);
    const o = await run(['--report-bindings', '--verbose', '-n', '4', 'true']);
    expect(o.stderr).toContain('binding: none, 4 ranks oversubscribe 2 usable cores');
    expect(o.stderr).toContain(`rank 3 on ${os.hostname()}: not bound`);
  });

  it('--dry-run --json shows the CPUs of this host\'s ranks, or null when not bound', async () => {
    const j = await run(['--dry-run', '--json', '-n', '2', '-bind-to', `user:${b},${a}`, 'true']);
    const ranks = (JSON.parse(j.stdout) as { ranks: Array<{ cpus: string | null }> }).ranks;
    expect(ranks.map((r) => r.cpus)).toEqual([String(b), String(a)]);
    const o = await run(['--dry-run', '--json', '-n', '3', 'true']);
    expect((JSON.parse(o.stdout) as { ranks: Array<{ cpus: string | null }> }).ranks.map((r) => r.cpus)).toEqual([null, null, null]);
  });

  it('two jobs at once get different cores by default', async () => {
    const dir = runtimeDir();
    const first = runTsmpiexec(['-n', '1', 'sh', '-c', 'grep Cpus_allowed_list /proc/self/status; sleep 2'], { env: { XDG_RUNTIME_DIR: dir } });
    // the second starts once the first's rank is running (its claim is written before the rank starts)
    const claims = path.join(dir, `tsmpiexec-${String(process.getuid?.() ?? 0)}`, 'cpus');
    const held = (): number => (fs.existsSync(claims) ? fs.readdirSync(claims).filter((n) => !n.startsWith('.')).length : 0);
    for (let i = 0; i < 250 && held() === 0; i++) await new Promise((r) => setTimeout(r, 20));
    const second = await runTsmpiexec(['-n', '1', ...SHOW], { env: { XDG_RUNTIME_DIR: dir } });
    const one = await first;
    const got = [one.stdout, second.stdout].map((o) => /Cpus_allowed_list:\s*(\S+)/.exec(o)?.[1]).sort();
    expect(got).toEqual([String(a), String(b)].sort());
    expect(held()).toBe(0);
  });

  it('an MPICH program runs bound', async () => {
    const hello = path.join(FIX, 'hello');
    if (!fs.existsSync(hello)) throw new Error(`MPI fixtures are missing in ${FIX}`);
    const r = await run(['-l', '-n', '2', '-bind-to', 'core', 'sh', '-c', `grep Cpus_allowed_list /proc/self/status; exec ${hello}`]);
    expect(r.code).toBe(0);
    expect(allowed(r)).toEqual({ 0: String(a), 1: String(b) });
    expect(r.stdout).toContain('hello from rank 1 of 2');
  });
});

// Where the job has a cpuset controller (root here: cgroup v1 cpuset), each rank's cgroup holds its own CPUs.
const hierarchies = (() => {
  try {
    return findHierarchies(fs.readFileSync('/proc/self/mountinfo', 'utf8'), fs.readFileSync('/proc/self/cgroup', 'utf8'));
  } catch {
    return [];
  }
})();
const isRoot = process.geteuid?.() === 0;
const cpusetV1 = isRoot ? hierarchies.find((h) => h.version === 1 && h.controllers.includes('cpuset')) : undefined;
const v2Controllers = (() => {
  const v2 = hierarchies.find((h) => h.version === 2);
  try {
    return v2 ? fs.readFileSync(`${v2.ownDir}/cgroup.controllers`, 'utf8').split(/\s+/) : [];
  } catch {
    return [];
  }
})();
const cpusetV2 = isRoot && v2Controllers.includes('cpuset');

/** rank → its cpuset cgroup (/proc/self/cpuset), from -l output. */
function cpusetOf(r: RunResult): Record<number, string> {
  const out: Record<number, string> = {};
  for (const m of r.stdout.matchAll(/^\[([0-9]+)\] cpuset=(\S+)$/gm)) out[Number(m[1])] = m[2] ?? '';
  return out;
}

describe.skipIf(two === undefined || (cpusetV1 === undefined && !cpusetV2))('a rank cannot widen its binding where a cpuset controller exists (skipped without 2 usable CPUs and a cpuset controller)', () => {
  const [a = 0, b = 1] = two ?? [];
  const all = formatCpuList(usable);
  // taskset -p asks the kernel to let the rank's shell run on every usable CPU; the cpuset keeps it on its own
  const WIDEN = ['sh', '-c', `taskset -p -c ${all} $$ >/dev/null 2>&1; grep Cpus_allowed_list /proc/self/status; echo "cpuset=$(cat /proc/self/cpuset)"`];
  for (const [mode, env] of MODES) {
    it(`-n 2 -bind-to core, each rank widening itself to ${all}, stays on its own CPU; no cgroup left (${mode})`, async () => {
      const r = await run(['-l', '-n', '2', '-bind-to', 'core', ...WIDEN], env);
      expect(r.code, r.stderr).toBe(0);
      expect(allowed(r)).toEqual({ 0: String(a), 1: String(b) });
      expect(r.stderr).not.toMatch(/cpuset/);
      const sets = cpusetOf(r);
      if (cpusetV1 !== undefined) {
        expect(Object.keys(sets)).toHaveLength(2);
        for (const rank of [0, 1]) {
          const cg = sets[rank] ?? '';
          // one cpuset cgroup per CPU set (ranks on the same CPUs would share it), named after its CPUs
          expect(cg).toMatch(new RegExp(`/tsmpiexec-[^/]+/cpus-${String(rank === 0 ? a : b)}$`));
          // the rank's cgroup and its job's are gone once tsmpiexec has returned
          expect(fs.existsSync(path.join(cpusetV1.mountPoint, cg)), cg).toBe(false);
          expect(fs.existsSync(path.join(cpusetV1.mountPoint, path.dirname(cg))), path.dirname(cg)).toBe(false);
        }
      }
    });
  }
  it('the same widening works with --isolate off (no cgroups): the test would see an escape', async () => {
    const r = await run(['--isolate', 'off', '-l', '-n', '2', '-bind-to', 'core', ...WIDEN]);
    expect(allowed(r)).toEqual({ 0: all, 1: all });
  });
});

// The v2 plan is checked on fake trees (test/unit/isolate-cpuset.test.ts); live only where root has a v2 cpuset.
describe.skipIf(!cpusetV2)(cpusetV2 ? 'cgroup v2 cpuset' : 'cgroup v2 cpuset: skipped, this host has no cgroup v2 cpuset controller (only v1 cpuset)', () => {
  it('-n 2 -bind-to core, each rank widening itself, stays on its own CPU', async () => {
    const [a = 0, b = 1] = two ?? [];
    const r = await run(['-l', '-n', '2', '-bind-to', 'core', 'sh', '-c', `taskset -p -c ${formatCpuList(usable)} $$ >/dev/null 2>&1; grep Cpus_allowed_list /proc/self/status`]);
    expect(allowed(r)).toEqual({ 0: String(a), 1: String(b) });
  });
});

// -membind sets a memory policy, which Mems_allowed_list does not show (that is the cpuset's): numa_maps does,
// for every mapping of the rank's own process ("bind:0").
const mems = usableMems() ?? [];
const one = mems.length === 1 ? mems[0] : undefined;
describe.skipIf(two === undefined || one === undefined)('-membind on a host with one memory node (skipped without 2 usable CPUs and one memory node)', () => {
  const node = String(one);
  const POLICY = ['sh', '-c', 'grep -m1 -oE "(bind|interleave|prefer|default)[^ ]*" /proc/self/numa_maps; grep Mems_allowed_list /proc/self/status'];
  const policies = (r: RunResult): Record<number, string> => {
    const out: Record<number, string> = {};
    for (const m of r.stdout.matchAll(/^\[([0-9]+)\] ((?:bind|interleave|prefer|default)\S*)$/gm)) out[Number(m[1])] = m[2] ?? '';
    return out;
  };
  for (const [mode, env] of MODES) {
    it(`bind (the nodes of each rank's CPUs) and interleave:${node}, read from each rank's numa_maps (${mode})`, async () => {
      const r = await run(['-l', '-n', '2', '-bind-to', 'core', '-membind', 'bind', ...POLICY], env);
      expect(r.code, r.stderr).toBe(0);
      expect(policies(r)).toEqual({ 0: `bind:${node}`, 1: `bind:${node}` });
      // the policy is not the cpuset: the memory nodes a rank may use are as before
      expect(r.stdout).toContain(`[0] Mems_allowed_list:\t${node}`);
      const i = await run(['-l', '-n', '2', '-membind', `interleave:${node}`, ...POLICY], env);
      expect(policies(i)).toEqual({ 0: `interleave:${node}`, 1: `interleave:${node}` });
      const d = await run(['-l', '-n', '1', ...POLICY], env);
      expect(policies(d)).toEqual({ 0: 'default' });
    });
  }
  it('--report-bindings names the memory policy', async () => {
    const r = await run(['--report-bindings', '-n', '2', '-bind-to', 'core', '-membind', 'bind', 'true']);
    expect(r.stderr).toContain(`rank 0 on ${os.hostname()}: CPUs ${String(two?.[0])}, memory bind:${node}`);
    expect(r.stderr).toContain(`rank 1 on ${os.hostname()}: CPUs ${String(two?.[1])}, memory bind:${node}`);
  });
  it('--report-json and --dry-run --json carry each rank\'s CPUs, memory policy and GPUs', async () => {
    const dir = runtimeDir();
    const file = path.join(dir, 'report.json');
    const r = await runTsmpiexec(['--report-json', file, '-n', '2', '-bind-to', 'core', '-membind', 'bind', '-gpus-per-proc', '1', 'true'], { env: { XDG_RUNTIME_DIR: dir, CUDA_VISIBLE_DEVICES: '5,6' } });
    lastMarker = r.marker;
    expect(r.code, r.stderr).toBe(0);
    const ranks = (JSON.parse(fs.readFileSync(file, 'utf8')) as { ranks: Array<{ rank: number; cpus: string | null; mems: string | null; gpus: string | null }> }).ranks;
    fs.rmSync(file);
    expect(ranks.map((x) => [x.rank, x.cpus, x.mems, x.gpus])).toEqual([[0, String(two?.[0]), `bind:${node}`, '5'], [1, String(two?.[1]), `bind:${node}`, '6']]);
    const d = await run(['--dry-run', '--json', '-n', '2', '-membind', 'interleave', 'true']);
    const dry = (JSON.parse(d.stdout) as { ranks: Array<{ cpus: string | null; mems?: string | null }> }).ranks;
    expect(dry.map((x) => [x.cpus, x.mems])).toEqual([[String(two?.[0]), `interleave:${node}`], [String(two?.[1]), `interleave:${node}`]]);
  });
  it('a node this host may not use: one line, nothing started', async () => {
    const r = await run(['-n', '1', '-membind', `bind:${String((one ?? 0) + 7)}`, 'sh', '-c', 'echo started']);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(new RegExp(`-membind bind: memory node ${String((one ?? 0) + 7)} is not usable here \\(usable: ${node}\\)`));
  });
  // root hides numactl with a bind mount of /dev/null in a mount namespace of its own (the launcher also looks in
  // the system directories, so a trimmed PATH would not do)
  it.skipIf(!isRoot)('neither the helper nor numactl: one line, and the rank runs with the default policy (needs root to hide numactl)', async () => {
    const numactl = ['/usr/bin/numactl', '/bin/numactl', '/usr/sbin/numactl', '/usr/local/bin/numactl'].filter((p) => fs.existsSync(p));
    const hide = numactl.map((p) => `mount --bind /dev/null ${p} &&`).join(' ');
    const wrap = ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', `${hide} exec "$@"`, 'hide-numactl'];
    const r = await runTsmpiexec(['-n', '1', '-membind', 'bind', 'sh', '-c', 'grep -c bind: /proc/self/numa_maps || true'], { wrap, env: { XDG_RUNTIME_DIR: runtimeDir(), TSMPIEXEC_NATIVE: '0' } });
    lastMarker = r.marker;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`memory binding not applied on ${os.hostname()}: neither the native helper nor numactl is available`);
    expect(r.stdout.trim()).toBe('0');
  });
});

describe('bad values: one line, exit 2, nothing started', () => {
  for (const v of [['-bind-to', 'bogus'], ['-bind-to', 'core:0'], ['-map-by', 'slot'], ['--bind-to', 'user:1,,0'], ['-membind', 'nexttouch'], ['-membind', 'bind:x']]) {
    it(v.join(' '), async () => {
      const r = await run([...v, '-n', '1', ...SHOW]);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr.split('\n')[0]).toMatch(/^tsmpiexec: -(-)?(bind-to|map-by|membind) /);
      expect(r.stderr).toMatch(/^hint: /m);
    });
  }
});

describe('-gpus-per-proc', () => {
  it('CUDA_VISIBLE_DEVICES=0,1,2,3 -n 2 -gpus-per-proc 2 gives 0,1 and 2,3', async () => {
    const r = await runTsmpiexec(['-n', '2', '-gpus-per-proc', '2', '-l', 'sh', '-c', 'echo "gpus=$CUDA_VISIBLE_DEVICES"'], { env: { CUDA_VISIBLE_DEVICES: '0,1,2,3' } });
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n').sort()).toEqual(['[0] gpus=0,1', '[1] gpus=2,3']);
  });
  it('too few GPUs: one line, exit 2, nothing started', async () => {
    const r = await runTsmpiexec(['-n', '2', '-gpus-per-proc', '2', 'sh', '-c', 'echo started'], { env: { CUDA_VISIBLE_DEVICES: '0,1' } });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/-gpus-per-proc 2 needs 4 GPUs for 2 ranks on a host, but CUDA_VISIBLE_DEVICES=0,1 has 2/);
  });
});
