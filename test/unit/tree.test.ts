import { describe, expect, it } from 'vitest';
import { subtreeOf, topOf, treeLayout } from '../../src/run/tree.js';

describe('launch tree layout', () => {
  it('is flat when the hosts fit the width', () => {
    const t = treeLayout([3, 5, 7], 4);
    expect([...t.values()].every((n) => n.parent === undefined && n.depth === 0)).toBe(true);
  });
  it('is a breadth-first k-ary tree beyond the width', () => {
    const idx = Array.from({ length: 16 }, (_, i) => i + 1);
    const t = treeLayout(idx, 4);
    expect([1, 2, 3, 4].map((i) => t.get(i)?.parent)).toEqual([undefined, undefined, undefined, undefined]);
    expect(t.get(1)?.children).toEqual([5, 6, 7, 8]);
    expect(t.get(4)?.children).toEqual([]);
    expect(t.get(2)?.children).toEqual([9, 10, 11, 12]);
    expect(t.get(5)?.children).toEqual([]);
    expect(t.get(9)?.depth).toBe(1);
    // 16 hosts, width 2: positions 1..16 → depth up to 3
    const t2 = treeLayout(idx, 2);
    expect(t2.get(16)?.depth).toBe(3);
    expect(topOf(t2, 16)).toBe(1);
    expect(subtreeOf(t2, 2).sort((a, b) => a - b)).toEqual([5, 6, 11, 12, 13, 14]);
  });
  it('covers every index exactly once', () => {
    for (const n of [1, 7, 33, 100]) {
      for (const w of [1, 2, 3, 8]) {
        const idx = Array.from({ length: n }, (_, i) => i * 2);
        const t = treeLayout(idx, w);
        const seen = [...t.values()].flatMap((x) => x.children);
        const roots = [...t.values()].filter((x) => x.parent === undefined).map((x) => x.index);
        expect([...roots, ...seen].sort((a, b) => a - b)).toEqual(idx);
        expect(roots.length).toBe(Math.min(n, w));
      }
    }
  });
});
