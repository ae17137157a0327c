// Barriers gathered through the launch tree (src/proxy/gather.ts) with the controller's KvsService at the root,
// wired in memory: every message crosses its link as frames under a small frame limit (barrier-chunks.ts), and
// the test counts the messages on each link.
import { describe, expect, it } from 'vitest';
import { ChunkJoiner, treeFrames, type Pair, type TreeMessage } from '../../src/control/barrier-chunks.js';
import { FrameDecoder } from '../../src/control/frame.js';
import { KvsService } from '../../src/pmi/kvs-service.js';
import { BarrierGather } from '../../src/proxy/gather.js';

const LIMIT = 256;
const settle = () => new Promise<void>((r) => setImmediate(r));

/** One direction of a link: frames in, whole messages out (counted). */
function wire(deliver: (m: TreeMessage) => void): { send(m: TreeMessage): void; messages: number; frames: number } {
  const dec = new FrameDecoder();
  const join = new ChunkJoiner();
  const w = {
    messages: 0,
    frames: 0,
    send(m: TreeMessage): void {
      const fs = treeFrames(m, LIMIT);
      w.messages++;
      w.frames += fs.length;
      for (const f of fs) {
        expect(f.readUInt32BE(0)).toBeLessThanOrEqual(LIMIT);
        for (const d of dec.push(f)) {
          const whole = d.kind === 'tree' ? join.push(d.value) : undefined;
          if (whole) deliver(whole);
        }
      }
    },
  };
  return w;
}

/**
 * A tree under the controller: `parents[i]` is proxy i's parent (undefined: first level). Returns each proxy's
 * gather, the counters of every link (up and down) and the controller's service.
 */
function tree(parents: Array<number | undefined>, groups: Array<{ kvsname: string; proxies: number }>) {
  const kvs = new KvsService();
  for (const g of groups) kvs.addGroup(g.kvsname, g.proxies);
  const n = parents.length;
  const children = (i: number): number[] => parents.flatMap((p, c) => (p === i ? [c] : []));
  const gathers: BarrierGather[] = [];
  const up: Array<ReturnType<typeof wire>> = [];
  const down: Array<ReturnType<typeof wire>> = [];
  for (let i = 0; i < n; i++) {
    // down wire into proxy i: results for it
    down[i] = wire((m) => {
      if (m.t !== 'result') throw new Error('a gathered entry downward');
      gathers[i]?.result(m.kvsname, m.puts, m.error);
    });
    // up wire out of proxy i: into its parent's gather, or the controller
    const p = parents[i];
    up[i] = wire((m) => {
      if (m.t !== 'gather') throw new Error('a result upward');
      if (p !== undefined) gathers[p]?.enterChild(i, m.kvsname, m.proxies, m.puts);
      else {
        kvs.enterMany(m.kvsname, m.proxies, m.puts).then(
          (puts) => down[i]?.send({ t: 'result', kvsname: m.kvsname, puts }),
          (e: Error) => down[i]?.send({ t: 'result', kvsname: m.kvsname, puts: [], error: e.message }),
        );
      }
    });
  }
  for (let i = 0; i < n; i++) {
    gathers[i] = new BarrierGather(i, children(i).length === 0, {
      up: (kvsname, proxies, puts) => up[i]?.send({ t: 'gather', kvsname, proxies, puts }),
      down: (kids, kvsname, puts, error) => {
        for (const child of kids) down[child]?.send({ t: 'result', kvsname, puts, ...(error !== undefined ? { error } : {}) });
      },
    });
  }
  return { kvs, gathers, up, down, children };
}

const g = (t: ReturnType<typeof tree>, i: number): BarrierGather => t.gathers[i] as BarrierGather;
const putsOf = (i: number, n = 3): Pair[] => Array.from({ length: n }, (_, k) => [`p${i}k${k}`, `value-of-${i}-${k}-`.repeat(4)]);

// 0 and 1 under the controller; 2, 3 under 0; 4 under 2; 5 under 1: a tree of depth 3
const PARENTS = [undefined, undefined, 0, 0, 2, 1];

describe('barriers gathered through the launch tree', () => {
  it('sends one message up and one down per link and barrier, and every proxy gets the whole epoch', async () => {
    const t = tree(PARENTS, [{ kvsname: 'w', proxies: 6 }]);
    const all = new Set([0, 1, 2, 3, 4, 5]);
    for (let i = 0; i < 6; i++) if (t.children(i).length > 0) g(t, i).plan('w', true, t.children(i).filter((c) => all.has(c)));
    for (let epoch = 0; epoch < 2; epoch++) {
      const results: Array<Pair[] | undefined> = [];
      // leaves first, the first level last: nothing may complete before the last own entry
      const order = [4, 5, 3, 2, 1, 0];
      for (const i of order) {
        void g(t, i).enterOwn('w', putsOf(i + 10 * epoch)).then((p) => (results[i] = p));
        await settle();
        if (i !== 0) expect(results.filter(Boolean)).toHaveLength(0);
      }
      await settle();
      const expected = new Set(order.flatMap((i) => putsOf(i + 10 * epoch).map((p) => p.join('='))));
      for (let i = 0; i < 6; i++) {
        const got = results[i];
        expect(got, `proxy ${i}`).toBeDefined();
        expect(new Set(got?.map((p) => p.join('=')))).toEqual(expected);
        expect(got).toHaveLength(expected.size);
      }
      for (let i = 0; i < 6; i++) {
        expect(t.up[i]?.messages, `up from ${i}`).toBe(epoch + 1);
        expect(t.down[i]?.messages, `down to ${i}`).toBe(epoch + 1);
      }
    }
    // the results were big enough to be cut into several frames per message
    expect(t.down[0]?.frames).toBeGreaterThan(2 * (t.down[0]?.messages ?? 0));
    expect(t.kvs.barriersCompleted('w')).toBe(2);
    for (let i = 0; i < 6; i++) expect(g(t, i).pending()).toBe(0);
  });

  it('a spawned group on some hosts only: links to proxies without its ranks carry nothing', async () => {
    const t = tree(PARENTS, [{ kvsname: 's', proxies: 2 }]);
    // ranks of the group on proxies 4 and 3 only: 0 waits for its children 2 (for 4) and 3; 2 for 4
    g(t, 0).plan('s', false, [2, 3]);
    g(t, 2).plan('s', false, [4]);
    const r4 = g(t, 4).enterOwn('s', putsOf(4));
    await settle();
    expect(t.up[0]?.messages).toBe(0);
    const r3 = g(t, 3).enterOwn('s', putsOf(3));
    const [a, b] = await Promise.all([r4, r3]);
    expect(a).toEqual(b);
    expect(a).toHaveLength(6);
    expect([t.up[1]?.messages, t.down[1]?.messages, t.up[5]?.messages, t.down[5]?.messages]).toEqual([0, 0, 0, 0]);
    expect([t.up[0]?.messages, t.down[0]?.messages, t.up[2]?.messages, t.down[2]?.messages]).toEqual([1, 1, 1, 1]);
  });

  it('an entry that comes before its plan waits for it', async () => {
    const t = tree(PARENTS, [{ kvsname: 's', proxies: 1 }]);
    let done = false;
    void g(t, 4).enterOwn('s', putsOf(4)).then(() => (done = true));
    await settle();
    expect(t.up[4]?.messages).toBe(1);
    expect(t.up[2]?.messages).toBe(0);
    g(t, 2).plan('s', false, [4]);
    await settle();
    expect(t.up[2]?.messages).toBe(1);
    expect(done).toBe(false);
    g(t, 0).plan('s', false, [2]);
    await settle();
    expect(done).toBe(true);
  });

  it('a failed barrier reaches every rank below as a failure', async () => {
    const t = tree([undefined, 0], [{ kvsname: 'w', proxies: 2 }]);
    g(t, 0).plan('w', true, [1]);
    // the controller already saw proxy 1 in this epoch: the gathered entry is refused
    const early = t.kvs.enter('w', 1, []);
    const a = g(t, 0).enterOwn('w', []);
    const b = g(t, 1).enterOwn('w', []);
    await expect(a).rejects.toThrow(/proxy 1 entered the barrier of w twice/);
    await expect(b).rejects.toThrow(/proxy 1 entered the barrier of w twice/);
    void early;
  });

  it('refuses an entry twice, a child outside the plan and a result nobody waits for', async () => {
    const t = tree([undefined, 0, 0, 0], [{ kvsname: 'w', proxies: 4 }]);
    g(t, 0).plan('w', true, [1, 2]);
    g(t, 0).enterChild(1, 'w', [1], []);
    expect(() => g(t, 0).enterChild(1, 'w', [1], [])).toThrow(/entered the barrier of w twice/);
    expect(() => g(t, 0).enterChild(3, 'w', [3], [])).toThrow(/has no ranks of/);
    expect(() => g(t, 0).result('w', [], undefined)).toThrow(/nothing waits for/);
    const own = g(t, 0).enterOwn('w', []);
    await expect(g(t, 0).enterOwn('w', [])).rejects.toThrow(/twice/);
    expect(t.up[0]?.messages).toBe(0);
    void own;
  });
});

describe('KvsService.enterMany', () => {
  it('counts each proxy of a gathered entry, and refuses one that entered already', async () => {
    const s = new KvsService();
    s.addGroup('g', 4);
    const a = s.enterMany('g', [0, 1, 2], [['a', '1']]);
    await expect(s.enterMany('g', [2, 3], [])).rejects.toThrow(/proxy 2 entered the barrier of g twice/);
    await expect(s.enterMany('g', [3, 3], [])).rejects.toThrow(/proxy 3 entered the barrier of g twice/);
    await expect(s.enterMany('g', [], [])).rejects.toThrow(/for no proxy/);
    expect(s.barriersCompleted('g')).toBe(0);
    const b = s.enter('g', 3, [['b', '2']]);
    expect(await a).toEqual([['a', '1'], ['b', '2']]);
    expect(await b).toEqual([['a', '1'], ['b', '2']]);
  });
});
