import { describe, expect, it } from 'vitest';
import { place, slotSequence } from '../../src/placement/place.js';
import { processMapping } from '../../src/placement/mapping.js';
import type { HostSpec, Segment } from '../../src/model/types.js';

const seg = (np: number | undefined, program = './a', index = 0): Segment => ({ index, np, program, args: [], env: { set: [] } });
const hosts = (...spec: Array<string | [string, number]>): HostSpec[] =>
  spec.map((h) => (typeof h === 'string' ? { name: h } : { name: h[0], slots: h[1] }));
const run = (h: HostSpec[], segs: Segment[], ppn?: number) =>
  place({ request: { segments: segs, ppn }, hosts: h, hostSource: { kind: 'cmdline' }, kvsname: 'kvs_0', defaultNp: 1 });

describe('placement', () => {
  it('wraps round-robin over hosts without slot counts (Hydra)', () => {
    const p = run(hosts('a', 'b', 'c'), [seg(7)]);
    expect(p.ranks.map((r) => r.host)).toEqual(['a', 'b', 'c', 'a', 'b', 'c', 'a']);
    expect(p.proxies.map((x) => x.ranks)).toEqual([[0, 3, 6], [1, 4], [2, 5]]);
    expect(p.ranks.map((r) => r.localRank)).toEqual([0, 0, 0, 1, 1, 1, 2]);
  });
  it('fills host:N block-wise, then wraps', () => {
    const p = run(hosts(['a', 2], ['b', 3]), [seg(7)]);
    expect(p.ranks.map((r) => r.host)).toEqual(['a', 'a', 'b', 'b', 'b', 'a', 'a']);
  });
  it('-ppn overrides slot counts', () => {
    const p = run(hosts(['a', 8], 'b'), [seg(6)], 2);
    expect(p.ranks.map((r) => r.host)).toEqual(['a', 'a', 'b', 'b', 'a', 'a']);
    expect(slotSequence(hosts(['a', 8], 'b'), 2)).toEqual([0, 0, 1, 1]);
  });
  it('leaves hosts without ranks out of the proxy list', () => {
    const p = run(hosts(['a', 4], 'b'), [seg(3)]);
    expect(p.proxies.map((x) => x.host)).toEqual(['a']);
    expect(p.processMapping).toBe('(vector,(0,1,3))');
  });
  it('numbers MPMD segments consecutively and sets appnum', () => {
    const p = run(hosts(['a', 2], ['b', 2]), [seg(1, './x', 0), seg(3, './y', 1)]);
    expect(p.ranks.map((r) => [r.rank, r.program, r.appnum, r.host])).toEqual([
      [0, './x', 0, 'a'],
      [1, './y', 1, 'a'],
      [2, './y', 1, 'b'],
      [3, './y', 1, 'b'],
    ]);
  });
  it('uses defaultNp for a lone segment without -n', () => {
    const p = place({ request: { segments: [seg(undefined)] }, hosts: hosts(['a', 3]), hostSource: { kind: 'default' }, kvsname: 'k', defaultNp: 3 });
    expect(p.size).toBe(3);
  });
  it('rejects an empty host list', () => {
    expect(() => run([], [seg(1)])).toThrow(/no hosts/);
  });
});

describe('PMI_process_mapping', () => {
  it('describes blocked layouts', () => {
    expect(processMapping([0, 0, 0, 0, 1, 1, 1, 1])).toBe('(vector,(0,2,4))');
    expect(processMapping([0, 0, 0, 0])).toBe('(vector,(0,1,4))');
  });
  it('compresses cyclic layouts with MPICH wrap-around', () => {
    expect(processMapping([0, 1, 0, 1])).toBe('(vector,(0,2,1))');
    expect(processMapping([0, 1, 2, 0, 1])).toBe('(vector,(0,3,1))');
  });
  it('handles irregular layouts', () => {
    expect(processMapping([0, 0, 1, 1, 1, 0, 0])).toBe('(vector,(0,1,2),(1,1,3))');
    expect(processMapping([0, 0, 1])).toBe('(vector,(0,1,2),(1,1,1))');
  });
  it('round-trips through the expansion for random layouts', () => {
    // property: expanding the emitted triples with MPICH's wrap rule gives back the layout
    const expand = (s: string, n: number): number[] => {
      const t = [...s.matchAll(/\((\d+),(\d+),(\d+)\)/g)].map((m) => m.slice(1).map(Number) as [number, number, number]);
      const out: number[] = [];
      while (out.length < n) for (const [st, nn, k] of t) for (let a = 0; a < nn; a++) for (let b = 0; b < k; b++) if (out.length < n) out.push(st + a);
      return out;
    };
    for (let trial = 0; trial < 200; trial++) {
      const nh = 1 + (trial % 5);
      const hs: HostSpec[] = Array.from({ length: nh }, (_, i) => ({ name: `h${i}`, slots: trial % 3 === 0 ? undefined : 1 + ((trial * (i + 1)) % 4) }));
      const p = run(hs, [seg(1 + ((trial * 13) % 40))]);
      const nodes = p.ranks.map((r) => r.proxy);
      expect(expand(p.processMapping, nodes.length)).toEqual(nodes);
    }
  });
  it('gives up (empty) when the string would be too long for MPICH 4.0.2', () => {
    const layout = Array.from({ length: 400 }, (_, i) => (i * 7) % 97 === 0 ? 1 : (i % 3));
    expect(processMapping(layout)).toBe('');
  });
});
