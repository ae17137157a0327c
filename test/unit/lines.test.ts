import { describe, expect, it } from 'vitest';
import { LineAssembler, labelLines } from '../../src/io/lines.js';
import { expandPattern } from '../../src/io/patterns.js';

const b = (s: string) => Buffer.from(s);

describe('LineAssembler', () => {
  it('emits whole lines and carries the tail', () => {
    const a = new LineAssembler();
    expect(a.push(b('ab'))).toBeUndefined();
    expect(a.push(b('c\nde'))?.toString()).toBe('abc\n');
    expect(a.push(b('f\ng\nh'))?.toString()).toBe('def\ng\n');
    expect(a.flush()?.toString()).toBe('h');
    expect(a.flush()).toBeUndefined();
  });
  it('passes an over-long run through instead of buffering without bound', () => {
    const a = new LineAssembler(8);
    expect(a.push(b('1234'))).toBeUndefined();
    expect(a.push(b('5678'))?.toString()).toBe('12345678');
    expect(a.pending).toBe(0);
  });
  it('keeps every byte for random chunkings (binary-safe)', () => {
    for (let trial = 0; trial < 100; trial++) {
      const data = Buffer.from(Array.from({ length: 5000 }, (_, i) => ((i * 31 + trial) % 7 === 0 ? 10 : (i * 13 + trial) % 256)));
      const a = new LineAssembler(64);
      const out: Buffer[] = [];
      let pos = 0;
      while (pos < data.length) {
        const n = 1 + ((pos * 17 + trial) % 97);
        const r = a.push(data.subarray(pos, pos + n));
        if (r) out.push(Buffer.from(r));
        pos += n;
      }
      const t = a.flush();
      if (t) out.push(t);
      expect(Buffer.concat(out).equals(data)).toBe(true);
      // every emitted piece but the last ends with a newline or is a full carry
      for (const piece of out.slice(0, -1)) expect(piece[piece.length - 1] === 10 || piece.length >= 64).toBe(true);
    }
  });
});

describe('labels and patterns', () => {
  it('labels every line and terminates a partial one only when asked', () => {
    expect(labelLines(b('a\nb\n'), '[3] ', false).toString()).toBe('[3] a\n[3] b\n');
    expect(labelLines(b('tail'), '[0] ', true).toString()).toBe('[0] tail\n');
  });
  it('expands %r %h %g %p %%', () => {
    expect(expandPattern('out.%r.%h.%g.%p.%%', { rank: 5, host: 'n1', group: 2, proxy: 3 })).toBe('out.5.n1.2.3.%');
    expect(() => expandPattern('x%q', { rank: 0, host: 'h', segment: 0 })).toThrow(/unknown escape %q/);
  });
});
