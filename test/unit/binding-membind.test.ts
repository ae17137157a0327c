// -membind: Hydra's spellings → policies, bad values → one bad-value error; each rank's nodes on synthetic
// topologies (its CPUs' nodes, a list, the launcher's own memory nodes); the argv that sets the policy; and the
// --report-bindings line with memory nodes and GPUs.
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from '../../src/cli/parse.js';
import { TsmpiError } from '../../src/util/errors.js';
import { parseMembind } from '../../src/binding/policy.js';
import { localMems } from '../../src/binding/mems.js';
import { chooseBinder, innerArgv, outerArgv } from '../../src/binding/apply.js';
import { reportLine } from '../../src/binding/host.js';
import { parseHwlocXml } from '../../src/topology/hwloc-xml.js';
import type { Topology } from '../../src/topology/types.js';

const FIX = path.join(import.meta.dirname, '..', 'fixtures', 'topology');
const BIG = parseHwlocXml(fs.readFileSync(path.join(FIX, 'pack2-numa2-core2-pu2.xml'), 'utf8')) as Topology;
const FLAT: Topology = { pus: [0, 1].map((cpu) => ({ cpu, core: `c${String(cpu)}`, package: 0, numa: -1 })), source: 'sysfs' };

describe('-membind values', () => {
  const good: Array<[string, ReturnType<typeof parseMembind>]> = [
    ['none', { kind: 'none' }],
    ['firsttouch', { kind: 'none' }],
    ['bind', { kind: 'bind' }],
    ['bind:0,1', { kind: 'bind', nodes: [0, 1] }],
    ['bind:0-2', { kind: 'bind', nodes: [0, 1, 2] }],
    ['interleave', { kind: 'interleave' }],
    ['interleave:1,3', { kind: 'interleave', nodes: [1, 3] }],
  ];
  for (const [v, want] of good) {
    it(v, () => {
      const r = parseArgs(['-membind', v, '-n', '1', './a'], {}, () => '');
      expect(r.kind === 'run' ? r.request.membind : undefined).toEqual(want);
    });
  }
  for (const [v, re] of [['nexttouch', /no next-touch/], ['bogus', /does not know 'bogus'/], ['bind:', /needs NUMA node numbers/], ['bind:a', /needs NUMA node/], ['bind:0:1', /does not know/], ['none:0', /does not know/]] as const) {
    it(`${v}: one bad-value error with a hint`, () => {
      let err: unknown;
      try {
        parseArgs(['-membind', v, '-n', '1', './a'], {}, () => '');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(TsmpiError);
      expect((err as TsmpiError).message).toMatch(re);
      expect((err as TsmpiError).hint).toMatch(/bind:NODES/);
    });
  }
});

describe('each rank\'s memory nodes', () => {
  // pack2-numa2-core2-pu2: CPUs 0-3 on node 0, 4-7 node 1, 8-11 node 2, 12-15 node 3
  const all = BIG.pus.map((p) => p.cpu);
  it('bind: the nodes of the rank\'s own CPUs', () => {
    const m = localMems({ policy: { kind: 'bind' }, topology: BIG, cpus: [[0, 1], [4, 5], [2, 3, 8]], usable: all, mems: [0, 1, 2, 3] });
    expect(m).toEqual({ kind: 'ok', perRank: [{ mode: 'bind', nodes: [0] }, { mode: 'bind', nodes: [1] }, { mode: 'bind', nodes: [0, 2] }] });
  });
  it('an unbound rank: the nodes of every usable CPU; nodes we may not use are left out', () => {
    const m = localMems({ policy: { kind: 'interleave' }, topology: BIG, cpus: [undefined], usable: [0, 4, 8], mems: [0, 2] });
    expect(m).toEqual({ kind: 'ok', perRank: [{ mode: 'interleave', nodes: [0, 2] }] });
  });
  it('no NUMA information: the launcher\'s memory nodes', () => {
    expect(localMems({ policy: { kind: 'bind' }, topology: FLAT, cpus: [[0]], usable: [0, 1], mems: [0] })).toEqual({ kind: 'ok', perRank: [{ mode: 'bind', nodes: [0] }] });
  });
  it('a list: every rank the same nodes; a node we may not use is an error', () => {
    expect(localMems({ policy: { kind: 'bind', nodes: [1, 3] }, topology: BIG, cpus: [[0], undefined], usable: all, mems: [0, 1, 2, 3] })).toEqual({
      kind: 'ok',
      perRank: [{ mode: 'bind', nodes: [1, 3] }, { mode: 'bind', nodes: [1, 3] }],
    });
    expect(localMems({ policy: { kind: 'bind', nodes: [0, 3] }, topology: FLAT, cpus: [[0]], usable: [0, 1], mems: [0] })).toEqual({
      kind: 'error',
      message: '-membind bind: memory node 3 is not usable here (usable: 0)',
    });
  });
  it('none: no policy', () => {
    expect(localMems({ policy: { kind: 'none' }, topology: BIG, cpus: [[0], [1]], usable: all, mems: [0] })).toEqual({ kind: 'ok', perRank: [undefined, undefined] });
  });
});

describe('the argv that sets the policy', () => {
  const H = '/x/tsmpiexec-helper';
  const bind = { mode: 'bind' as const, nodes: [0, 1] };
  it('the helper: --mems in its exec step, after --cpus', () => {
    const b = chooseBinder(H, undefined);
    expect(outerArgv(b, [2], [H, 'exec', '--join', 'p', '--', 'a'], 'rank 0', bind)).toEqual([H, 'exec', '--cpus', '2', '--mems', 'bind:0-1', '--join', 'p', '--', 'a']);
    expect(outerArgv(b, undefined, ['a'], 'rank 1', { mode: 'interleave', nodes: [3] })).toEqual([H, 'exec', '--mems', 'interleave:3', '--label', 'rank 1', '--', 'a']);
    expect(innerArgv(b, [2], ['a'], { binding: bind, numactl: '/usr/bin/numactl' })).toEqual(['a']);
  });
  it('without it: numactl innermost, taskset around it', () => {
    const t = chooseBinder(undefined, '/usr/bin/taskset');
    expect(innerArgv(t, [0], ['a'], { binding: bind, numactl: '/usr/bin/numactl' })).toEqual(['/usr/bin/taskset', '-c', '0', '/usr/bin/numactl', '--membind=0-1', '--', 'a']);
    expect(innerArgv(chooseBinder(undefined, undefined), undefined, ['a'], { binding: { mode: 'interleave', nodes: [0] }, numactl: '/n' })).toEqual(['/n', '--interleave=0', '--', 'a']);
  });
});

describe('--report-bindings lines', () => {
  it('CPUs, memory policy and GPUs, each when there is one', () => {
    expect(reportLine('h1', 0, [0, 1], undefined, undefined)).toBe('rank 0 on h1: CPUs 0-1');
    expect(reportLine('h1', 3, undefined, { mode: 'bind', nodes: [0] }, '2,3')).toBe('rank 3 on h1: not bound, memory bind:0, GPUs 2,3');
    expect(reportLine('h2', 1, [4], { mode: 'interleave', nodes: [0, 1] }, '')).toBe('rank 1 on h2: CPUs 4, memory interleave:0-1, GPUs none');
  });
});
