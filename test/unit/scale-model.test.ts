// The scale model's counting (bench/scale/): the controller-boundary frame counter must count exactly the frames
// the real codec writes, however the bytes are chunked, and the simulated host must hold a complete PMI
// conversation with the real PMI server and the real KvsService. No processes, no timing.
import { describe, expect, it } from 'vitest';
import { encodeJson, outputHeader, routedFrame } from '../../src/control/frame.js';
import { KvsService } from '../../src/pmi/kvs-service.js';
import { FrameCounter, muxHeader, muxReader } from '../../bench/scale/wires.mjs';
import { SimHost, addressOf } from '../../bench/scale/sim-host.mjs';

function frames(): Buffer[] {
  const big = Buffer.alloc(70_000, 7);
  return [
    encodeJson({ t: 'hello', version: 2 }),
    Buffer.concat([outputHeader(3, 'stdout', 5), Buffer.from('hello')]),
    routedFrame(9, encodeJson({ t: 'request', id: 1, req: { op: 'barrier', kvsname: 'k', puts: [['a', 'b']] } })),
    encodeJson({ t: 'reply', id: 1, ok: true, value: [['k', big.toString('hex')]] }),
    Buffer.concat([outputHeader(0, 'stderr', big.length), big]),
    encodeJson({}),
  ];
}

describe('scale model: FrameCounter', () => {
  const all = Buffer.concat(frames());
  const n = frames().length;

  it('counts every frame and byte when the stream is cut once anywhere', () => {
    for (let cut = 0; cut <= all.length; cut += cut < 64 || cut > all.length - 64 ? 1 : 997) {
      const c = new FrameCounter();
      c.push(all.subarray(0, cut));
      c.push(all.subarray(cut));
      expect(c.snapshot(), `cut at ${cut}`).toEqual({ bytes: all.length, frames: n });
    }
  });

  it('counts a frame only once its length header is complete, even one byte at a time', () => {
    const c = new FrameCounter();
    const head = all.subarray(0, 3);
    for (const b of head) c.push(Buffer.from([b]));
    expect(c.frames).toBe(0);
    for (let i = 3; i < 200; i++) c.push(all.subarray(i, i + 1));
    c.push(all.subarray(200));
    expect(c.snapshot()).toEqual({ bytes: all.length, frames: n });
  });

  it('does not count the inner frame of a routed frame as a frame of its own', () => {
    const c = new FrameCounter();
    c.push(routedFrame(1, routedFrame(2, encodeJson({ t: 'bye' }))));
    expect(c.frames).toBe(1);
  });
});

describe('scale model: mux', () => {
  it('gives back every message whole, in order, however it is chunked', () => {
    const msgs = [Buffer.from('x'), Buffer.alloc(0), Buffer.alloc(100_000, 1), Buffer.from('last')];
    const wire = Buffer.concat(msgs.flatMap((m, i) => [muxHeader(i, 2, m.length), m]));
    for (const step of [1, 7, 4096, wire.length]) {
      const got: Array<[number, number, number]> = [];
      const read = muxReader((ch: number, type: number, payload: Buffer) => got.push([ch, type, payload.length]));
      for (let i = 0; i < wire.length; i += step) read(wire.subarray(i, i + step));
      expect(got).toEqual(msgs.map((m, i) => [i, 2, m.length]));
    }
  });
});

describe('scale model: simulated hosts', () => {
  it('two hosts of three ranks each put, meet in one barrier, get their peers, and finalize', async () => {
    const kvs = new KvsService();
    kvs.addGroup('kvs_t', 2);
    const model = { pmiRequests: 0, barrier1: 0, errors: [] as string[], bad: (m: string) => model.errors.push(m), firstBarrierOut: () => model.barrier1++ };
    const settled: Array<[number, string, string]> = [];
    const done = new Promise<void>((resolve) => {
      for (const h of [0, 1]) {
        const launches = [0, 1, 2].map((i) => ({ rank: h * 3 + i }));
        const host = new SimHost(
          {
            host: `h${h}`,
            group: { kvsname: 'kvs_t', size: 6, processMapping: '', universeSize: 6, localCount: 3, spawned: false },
            appnum: () => 0,
            launches,
            upstream: kvs.localUpstream(h, () => Promise.reject(new Error('no spawn'))),
            events: {
              started: () => {},
              outputEnd: () => {},
              exited: () => {},
              settled: (rank: number, outcome: { kind: string }, pmi: string) => {
                settled.push([rank, outcome.kind, pmi]);
                if (settled.length === 6) resolve();
              },
              aborted: (r: number) => model.errors.push(`abort ${r}`),
              pmiError: (r: number, m: string) => model.errors.push(`${r}: ${m}`),
              notice: (m: string) => model.errors.push(m),
              output: () => true,
            },
          },
          {},
          { ranks: 6, valueBytes: 300, gets: 4 },
          model,
        );
        host.start();
      }
    });
    await done;
    expect(model.errors).toEqual([]);
    expect(model.barrier1).toBe(6);
    expect(kvs.barriersCompleted('kvs_t')).toBe(2);
    expect(settled.sort((a, b) => a[0] - b[0])).toEqual([0, 1, 2, 3, 4, 5].map((r) => [r, 'exited', 'finalized']));
    // init, maxes, appnum, kvsname, put, barrier, 4 gets, barrier, finalize
    expect(model.pmiRequests).toBe(6 * 12);
    expect(addressOf(5, 300)).toHaveLength(300);
    expect(addressOf(5, 300)).not.toBe(addressOf(6, 300));
  });
});
