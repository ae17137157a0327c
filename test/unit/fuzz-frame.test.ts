// Property tests of the control-channel framing (src/control/frame.ts), the codec every byte between the
// controller and a remote proxy goes through: valid frames survive any chunking; hostile bytes give frames or a
// FrameError, never another exception, and a forged length is refused before anything is buffered for it.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  FrameDecoder,
  FrameError,
  MAX_FRAME,
  decodeFrame,
  encodeJson,
  outputHeader,
  routedFrame,
  stdinHeader,
  type Frame,
} from '../../src/control/frame.js';

/** A frame as the model sees it, and its encoding. */
type Spec =
  | { kind: 'json'; value: unknown }
  | { kind: 'output'; rank: number; stream: 'stdout' | 'stderr'; data: Uint8Array }
  | { kind: 'stdin'; rank: number; data: Uint8Array }
  | { kind: 'routed'; index: number; inner: Spec };

function encode(s: Spec): Buffer {
  switch (s.kind) {
    case 'json':
      return encodeJson(s.value);
    case 'output':
      return Buffer.concat([outputHeader(s.rank, s.stream, s.data.length), Buffer.from(s.data)]);
    case 'stdin':
      return Buffer.concat([stdinHeader(s.rank, s.data.length), Buffer.from(s.data)]);
    case 'routed':
      return routedFrame(s.index, encode(s.inner));
  }
}

/** What decoding must give back (JSON goes through JSON: -0 becomes 0, undefined members vanish). */
function expected(s: Spec): Frame {
  switch (s.kind) {
    case 'json':
      return { kind: 'json', value: JSON.parse(JSON.stringify(s.value)) as unknown };
    case 'output':
      return { kind: 'output', rank: s.rank, stream: s.stream, data: Buffer.from(s.data) };
    case 'stdin':
      return { kind: 'stdin', rank: s.rank, data: Buffer.from(s.data) };
    case 'routed':
      return { kind: 'routed', index: s.index, raw: encode(s.inner) };
  }
}

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const bytes = fc.uint8Array({ maxLength: 300 });
const leaf: fc.Arbitrary<Spec> = fc.oneof(
  fc.record({ kind: fc.constant('json' as const), value: fc.jsonValue({ maxDepth: 3 }) }),
  fc.record({ kind: fc.constant('output' as const), rank: u32, stream: fc.constantFrom('stdout' as const, 'stderr' as const), data: bytes }),
  fc.record({ kind: fc.constant('stdin' as const), rank: u32, data: bytes }),
);
const spec: fc.Arbitrary<Spec> = fc.oneof(
  { weight: 3, arbitrary: leaf },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('routed' as const), index: u32, inner: leaf }) },
);

/** Cuts `buf` at the given fractions into consecutive chunks (some empty). */
function chunk(buf: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => Math.floor(c * (buf.length + 1))))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of at) {
    out.push(buf.subarray(prev, Math.min(p, buf.length)));
    prev = Math.min(p, buf.length);
  }
  out.push(buf.subarray(prev));
  return out;
}

/** Pushes chunks; returns the frames, or the error that stopped the decoder (anything but FrameError fails). */
function feed(chunks: Buffer[]): { frames: Frame[]; error?: FrameError } {
  const d = new FrameDecoder();
  const frames: Frame[] = [];
  for (const c of chunks) {
    try {
      frames.push(...d.push(c));
    } catch (e) {
      if (e instanceof FrameError) return { frames, error: e };
      throw e;
    }
  }
  return { frames };
}

describe('FrameDecoder: valid streams', () => {
  it('any sequence of valid frames, cut anywhere, decodes to the same frames in order', () => {
    fc.assert(
      fc.property(fc.array(spec, { maxLength: 12 }), fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 20 }), (specs, cuts) => {
        const stream = Buffer.concat(specs.map(encode));
        const { frames, error } = feed(chunk(stream, cuts));
        expect(error).toBeUndefined();
        expect(frames).toEqual(specs.map(expected));
      }),
      { numRuns: 400 },
    );
  });

  it('byte by byte too (every header split), and routed frames decode to their inner frame', () => {
    fc.assert(
      fc.property(fc.array(spec, { minLength: 1, maxLength: 4 }), (specs) => {
        const stream = Buffer.concat(specs.map(encode));
        const { frames, error } = feed([...stream].map((b) => Buffer.from([b])));
        expect(error).toBeUndefined();
        expect(frames).toEqual(specs.map(expected));
        specs.forEach((s, i) => {
          const f = frames[i];
          if (s.kind === 'routed' && f?.kind === 'routed') expect(decodeFrame(f.raw)).toEqual(expected(s.inner));
        });
      }),
      { numRuns: 100 },
    );
  });

  it('pushRaw returns each whole frame, header included, byte for byte', () => {
    fc.assert(
      fc.property(fc.array(spec, { maxLength: 8 }), fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 10 }), (specs, cuts) => {
        const encoded = specs.map(encode);
        const d = new FrameDecoder();
        const raw = chunk(Buffer.concat(encoded), cuts).flatMap((c) => d.pushRaw(c));
        expect(raw.map((b) => b.toString('hex'))).toEqual(encoded.map((b) => b.toString('hex')));
      }),
      { numRuns: 200 },
    );
  });
});

describe('FrameDecoder: hostile bytes', () => {
  it('random bytes in random chunks: frames or a FrameError, never another exception', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 16 }), (chunks) => {
        feed(chunks.map((c) => Buffer.from(c)));
      }),
      { numRuns: 2000 },
    );
  });

  // (Frames in the same push() as the garbage are lost with the exception: the channel is dead either way.)
  it('frames pushed before garbage arrives are delivered', () => {
    fc.assert(
      fc.property(fc.array(spec, { maxLength: 5 }), fc.uint8Array({ minLength: 5, maxLength: 40 }), (specs, junk) => {
        const { frames } = feed([Buffer.concat(specs.map(encode)), Buffer.from(junk)]);
        expect(frames.slice(0, specs.length)).toEqual(specs.map(expected));
      }),
      { numRuns: 300 },
    );
  });

  it('mutated valid frames (flipped bytes in the header or body): frames or a FrameError only', () => {
    fc.assert(
      fc.property(spec, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }), (s, flips) => {
        const b = Buffer.from(encode(s));
        for (const [pos, x] of flips) b[pos % b.length] = (b[pos % b.length] as number) ^ x;
        feed([b]);
        try {
          decodeFrame(b);
        } catch (e) {
          expect(e).toBeInstanceOf(FrameError);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('refuses a forged length as soon as its 4 bytes arrive, without buffering for it', () => {
    fc.assert(
      fc.property(fc.oneof(fc.constant(0), fc.integer({ min: MAX_FRAME + 1, max: 0xffffffff })), (n) => {
        const h = Buffer.alloc(4);
        h.writeUInt32BE(n, 0);
        const d = new FrameDecoder();
        expect(d.push(h.subarray(0, 3))).toEqual([]);
        expect(() => d.push(h.subarray(3))).toThrow(FrameError);
      }),
      { numRuns: 200 },
    );
  });

  it('a length within the limit waits for its body (a truncated stream yields no frame and no error)', () => {
    const d = new FrameDecoder();
    const h = Buffer.alloc(5);
    h.writeUInt32BE(MAX_FRAME, 0);
    h.writeUInt8(1, 4);
    expect(d.push(h)).toEqual([]);
    expect(d.push(Buffer.alloc(1024))).toEqual([]);
  });

  it('names what is wrong: unknown kind, bad stream, bad JSON, short and inconsistent routed frames', () => {
    const frame = (kind: number, body: Buffer): Buffer => {
      const h = Buffer.alloc(5);
      h.writeUInt32BE(body.length + 1, 0);
      h.writeUInt8(kind, 4);
      return Buffer.concat([h, body]);
    };
    const cases: Array<[Buffer, RegExp]> = [
      [frame(9, Buffer.alloc(0)), /unknown frame kind 9/],
      [frame(2, Buffer.from([0, 0, 0, 1, 3])), /bad stream 3/],
      [frame(2, Buffer.from([0, 0, 0])), /short output frame/],
      [frame(3, Buffer.from([0, 0])), /short stdin frame/],
      [frame(1, Buffer.from('{"t":')), /bad JSON/],
      [frame(4, Buffer.from([0, 0, 0, 0, 0, 0, 0])), /short routed frame/],
      [frame(4, Buffer.concat([Buffer.from([0, 0, 0, 1]), Buffer.from([0, 0, 0, 9, 1, 0x7b])])), /bad routed frame/],
    ];
    for (const [b, re] of cases) {
      const { frames, error } = feed([b]);
      expect(frames).toEqual([]);
      expect(error?.message).toMatch(re);
    }
  });
});
