// Barrier messages of the launch tree cut into frames under a frame limit (src/control/barrier-chunks.ts), and
// joined back: checked with small limits, so the cuts happen with a handful of pairs.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ChunkJoiner, TreeMessageError, treeFrames, type Pair, type TreeMessage } from '../../src/control/barrier-chunks.js';
import { FRAME, FrameDecoder, MAX_FRAME } from '../../src/control/frame.js';

/** Every frame's length field (what FrameDecoder compares with its limit). */
const lengths = (frames: Buffer[]): number[] => frames.map((f) => f.readUInt32BE(0));

/** Through a real decoder and a joiner, as a proxy receives them; every whole message in order. */
function receive(frames: Buffer[]): TreeMessage[] {
  const dec = new FrameDecoder();
  const join = new ChunkJoiner();
  const out: TreeMessage[] = [];
  for (const f of dec.push(Buffer.concat(frames))) {
    expect(f.kind).toBe('tree');
    const m = f.kind === 'tree' ? join.push(f.value) : undefined;
    if (m) out.push(m);
  }
  return out;
}

const pairs = (n: number, size: number): Pair[] => Array.from({ length: n }, (_, i) => [`key${i}`, String(i % 10).repeat(size)]);

describe('treeFrames', () => {
  it('sends a message that fits as one frame of kind 5', () => {
    const m: TreeMessage = { t: 'gather', kvsname: 'kvs_1', proxies: [3, 4], puts: pairs(3, 10) };
    const frames = treeFrames(m);
    expect(frames).toHaveLength(1);
    expect((frames[0] as Buffer).readUInt8(4)).toBe(FRAME.TREE);
    expect(receive(frames)).toEqual([m]);
  });

  it('cuts a big result into frames that each stay within the limit, and joins them back', () => {
    const m: TreeMessage = { t: 'result', kvsname: 'kvs_1', puts: pairs(40, 50) };
    const limit = 300;
    const frames = treeFrames(m, limit);
    expect(frames.length).toBeGreaterThan(5);
    for (const n of lengths(frames)) expect(n).toBeLessThanOrEqual(limit);
    expect(receive(frames)).toEqual([m]);
  });

  it('carries the proxies of a gathered entry and the error of a result whole, in the last chunk', () => {
    const g: TreeMessage = { t: 'gather', kvsname: 'k', proxies: [7, 8, 9, 10], puts: pairs(12, 30) };
    const r: TreeMessage = { t: 'result', kvsname: 'k', puts: pairs(12, 30), error: 'proxy 7 entered the barrier of k twice' };
    for (const m of [g, r]) {
      const frames = treeFrames(m, 200);
      expect(frames.length).toBeGreaterThan(2);
      for (const n of lengths(frames)) expect(n).toBeLessThanOrEqual(200);
      expect(receive(frames)).toEqual([m]);
    }
  });

  it('keeps the messages of two groups apart when their chunks interleave on one link', () => {
    const a: TreeMessage = { t: 'gather', kvsname: 'a', proxies: [1], puts: pairs(10, 40) };
    const b: TreeMessage = { t: 'gather', kvsname: 'b', proxies: [1], puts: pairs(10, 40).map(([k, v]) => [k, v.toUpperCase() + 'x']) };
    const fa = treeFrames(a, 250);
    const fb = treeFrames(b, 250);
    const mixed: Buffer[] = [];
    for (let i = 0; i < Math.max(fa.length, fb.length); i++) mixed.push(...(fa[i] ? [fa[i] as Buffer] : []), ...(fb[i] ? [fb[i] as Buffer] : []));
    const got = receive(mixed);
    expect(got).toHaveLength(2);
    expect(got.find((m) => m.kvsname === 'a')).toEqual(a);
    expect(got.find((m) => m.kvsname === 'b')).toEqual(b);
  });

  it('sends an empty epoch as one frame, and values JSON must escape are measured escaped', () => {
    expect(receive(treeFrames({ t: 'result', kvsname: 'k', puts: [] }, 64))).toEqual([{ t: 'result', kvsname: 'k', puts: [] }]);
    // each quote and control character takes more bytes on the wire than in the string
    const m: TreeMessage = { t: 'result', kvsname: 'k', puts: pairs(20, 4).map(([k]) => [k, '"\n\u0001"é']) };
    const frames = treeFrames(m, 120);
    for (const n of lengths(frames)) expect(n).toBeLessThanOrEqual(120);
    expect(receive(frames)).toEqual([m]);
  });

  it('refuses a pair that cannot fit in a frame of its own', () => {
    expect(() => treeFrames({ t: 'result', kvsname: 'k', puts: [['big', 'x'.repeat(500)]] }, 200)).toThrow(/does not fit in a control frame of 200 bytes/);
  });

  it('uses the real frame limit by default', () => {
    // 3 MiB of pairs in one frame: far below MAX_FRAME
    const frames = treeFrames({ t: 'result', kvsname: 'k', puts: pairs(3072, 1024) });
    expect(frames).toHaveLength(1);
    expect(lengths(frames)[0]).toBeLessThan(MAX_FRAME);
  });

  it('round-trips any pairs under any limit that fits the largest pair (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.string({ maxLength: 12 }), fc.string({ maxLength: 40 })), { maxLength: 60 }),
        fc.integer({ min: 0, max: 200 }),
        fc.boolean(),
        (ps, slack, gather) => {
          const m: TreeMessage = gather ? { t: 'gather', kvsname: 'kv', proxies: [1, 2], puts: ps } : { t: 'result', kvsname: 'kv', puts: ps };
          const biggest = Math.max(0, ...ps.map((p) => Buffer.byteLength(JSON.stringify(p))));
          const limit = 80 + biggest + slack;
          const frames = treeFrames(m, limit);
          for (const n of lengths(frames)) expect(n).toBeLessThanOrEqual(limit);
          expect(receive(frames)).toEqual([m]);
        },
      ),
    );
  });
});

describe('ChunkJoiner', () => {
  it('refuses what is not a barrier message', () => {
    const j = new ChunkJoiner();
    for (const bad of [null, 3, {}, { t: 'gather', kvsname: 'k', puts: [] }, { t: 'result', kvsname: 'k', puts: [['a']] }, { t: 'result', kvsname: 7, puts: [] }, { t: 'other', kvsname: 'k', puts: [] }, { t: 'result', kvsname: 'k', puts: [], more: false }]) {
      expect(() => j.push(bad), JSON.stringify(bad)).toThrow(TreeMessageError);
    }
  });
});
