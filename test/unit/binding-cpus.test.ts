// Pure binding placement on synthetic shapes: hand-written tables (the 2x2x2x2 rows are what MPICH Hydra prints
// for the same topology and options; test/integration/binding-hydra.test.ts checks that live).
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { localBinding, type LocalBinding } from '../../src/binding/cpus.js';
import { parseBindTo, parseMapBy } from '../../src/binding/policy.js';
import { parseHwlocXml } from '../../src/topology/hwloc-xml.js';
import type { Topology } from '../../src/topology/types.js';

const FIX = path.join(import.meta.dirname, '..', 'fixtures', 'topology');
function topo(name: string): Topology {
  const t = parseHwlocXml(fs.readFileSync(path.join(FIX, name), 'utf8'));
  if (!t) throw new Error(`bad fixture ${name}`);
  return t;
}
const BIG = topo('pack2-numa2-core2-pu2.xml');
const HT = topo('core2-pu2.xml');
const FOUR = topo('core4.xml');

function run(t: Topology, n: number, bind: string | undefined, map?: string, usable?: number[]): LocalBinding {
  return localBinding({
    topology: t,
    usable,
    localRanks: n,
    bind: bind === undefined ? { kind: 'default' } : parseBindTo(bind, '-bind-to'),
    ...(map ? { map: parseMapBy(map, '-map-by') } : {}),
  });
}
function cpus(b: LocalBinding): number[][] | string {
  return b.kind === 'bound' ? b.cpus : b.kind;
}

describe('2 packages x 2 NUMA x 2 cores x 2 threads (as Hydra binds)', () => {
  const rows: Array<[string, number, string | undefined, number[][]]> = [
    ['core', 4, undefined, [[0, 1], [2, 3], [4, 5], [6, 7]]],
    ['core', 4, 'socket', [[0, 1], [8, 9], [2, 3], [10, 11]]],
    ['core', 4, 'numa', [[0, 1], [4, 5], [8, 9], [12, 13]]],
    ['hwthread', 4, undefined, [[0], [1], [2], [3]]],
    ['hwthread', 4, 'socket', [[0], [8], [1], [9]]],
    ['socket', 3, undefined, [[0, 1, 2, 3, 4, 5, 6, 7], [8, 9, 10, 11, 12, 13, 14, 15], [0, 1, 2, 3, 4, 5, 6, 7]]],
    ['numa', 4, undefined, [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15]]],
    ['core:2', 2, undefined, [[0, 1, 2, 3], [4, 5, 6, 7]]],
    ['user:3,1', 2, undefined, [[3], [1]]],
  ];
  for (const [bind, n, map, want] of rows) {
    it(`-bind-to ${bind}${map ? ` -map-by ${map}` : ''} -n ${n}`, () => {
      expect(cpus(run(BIG, n, bind, map))).toEqual(want);
    });
  }
  it('-bind-to core -n 10 wraps round and says the ranks share', () => {
    const b = run(BIG, 10, 'core');
    expect(cpus(b)).toEqual([[0, 1], [2, 3], [4, 5], [6, 7], [8, 9], [10, 11], [12, 13], [14, 15], [0, 1], [2, 3]]);
    expect(b.kind === 'bound' && b.notice).toMatch(/ranks share/);
  });
  it('ppr:2:socket puts two consecutive ranks on each package', () => {
    expect(cpus(run(BIG, 4, 'core', 'ppr:2:socket'))).toEqual([[0, 1], [2, 3], [8, 9], [10, 11]]);
  });
});

describe('the default: a core per rank when they fit, nothing when oversubscribed', () => {
  it('hyperthreads: a core is both its threads', () => {
    const b = run(HT, 2, undefined);
    expect(cpus(b)).toEqual([[0, 1], [2, 3]]);
    expect(b.kind === 'bound' && b.policy).toBe('binding: one core per rank (2 ranks, 2 usable cores)');
  });
  it('oversubscribed: unbound, and says why', () => {
    const b = run(HT, 3, undefined);
    expect(b).toEqual({ kind: 'unbound', policy: 'binding: none, 3 ranks oversubscribe 2 usable cores' });
  });
  it('only the usable CPUs count (taskset -c 1,3 around the launcher)', () => {
    expect(cpus(run(FOUR, 2, undefined, undefined, [1, 3]))).toEqual([[1], [3]]);
    expect(cpus(run(FOUR, 3, undefined, undefined, [1, 3]))).toBe('unbound');
    // one thread of each core usable: the cores still count, with that thread
    expect(cpus(run(HT, 2, undefined, undefined, [0, 2]))).toEqual([[0], [2]]);
  });
  it('-bind-to none binds nothing', () => {
    expect(cpus(run(FOUR, 2, 'none'))).toBe('unbound');
  });
});

describe('user lists', () => {
  it('reverse order, several CPUs, wrap', () => {
    expect(cpus(run(FOUR, 2, 'user:1,0'))).toEqual([[1], [0]]);
    expect(cpus(run(FOUR, 2, 'user:0+1,2+3'))).toEqual([[0, 1], [2, 3]]);
    expect(cpus(run(FOUR, 3, 'user:2,3'))).toEqual([[2], [3], [2]]);
  });
  it('a CPU the launcher may not use is an error naming it', () => {
    const b = run(FOUR, 1, 'user:3', undefined, [0, 1]);
    expect(b).toEqual({ kind: 'error', message: '-bind-to user: CPU 3 is not usable here (usable: 0-1)' });
  });
});
