// The controller side of PMI barriers and the shared name table.
import { describe, expect, it } from 'vitest';
import { KvsService } from '../../src/pmi/kvs-service.js';

const pending = <T>(p: Promise<T>) => {
  const box: { done: boolean; value?: T; error?: unknown } = { done: false };
  p.then(
    (v) => Object.assign(box, { done: true, value: v }),
    (e: unknown) => Object.assign(box, { done: true, error: e }),
  );
  return box;
};
const settle = () => new Promise<void>((r) => setImmediate(r));

describe('KvsService', () => {
  it('releases every proxy once all entered, with the union of the epoch puts', async () => {
    const s = new KvsService();
    s.addGroup('g', 3);
    const a = pending(s.enter('g', 0, [['a', '1']]));
    const b = pending(s.enter('g', 2, [['b', '2'], ['a', '3']]));
    await settle();
    expect(a.done || b.done).toBe(false);
    const c = pending(s.enter('g', 1, []));
    await settle();
    for (const x of [a, b, c]) expect(x.value).toEqual([['a', '1'], ['b', '2'], ['a', '3']]);
    expect(s.barriersCompleted('g')).toBe(1);
    // next epoch starts empty
    const d = pending(s.enter('g', 0, [['z', '9']]));
    s.enter('g', 1, []);
    s.enter('g', 2, []);
    await settle();
    expect(d.value).toEqual([['z', '9']]);
  });

  it('keeps groups apart', async () => {
    const s = new KvsService();
    s.addGroup('g1', 1);
    s.addGroup('g2', 2);
    const x = pending(s.enter('g2', 0, [['k', 'v']]));
    const y = pending(s.enter('g1', 0, [['q', 'w']]));
    await settle();
    expect(y.value).toEqual([['q', 'w']]);
    expect(x.done).toBe(false);
  });

  it('rejects unknown groups, double entry and bad registrations', async () => {
    const s = new KvsService();
    s.addGroup('g', 2);
    await expect(s.enter('nope', 0, [])).rejects.toThrow(/unknown KVS group/);
    void s.enter('g', 0, []);
    await expect(s.enter('g', 0, [])).rejects.toThrow(/twice/);
    expect(() => s.addGroup('g', 1)).toThrow(/twice/);
    expect(() => s.addGroup('h', 0)).toThrow(/proxy count/);
    expect(s.barriersCompleted('nope')).toBeUndefined();
  });

  it('shares one name table through every local upstream', async () => {
    const s = new KvsService();
    const spawned: string[] = [];
    const u0 = s.localUpstream(0, (req) => {
      spawned.push(req.commands[0]!.command);
      return Promise.resolve({ ok: true, kvsname: 'kid' });
    });
    const u1 = s.localUpstream(1, () => Promise.resolve({ ok: false, error: 'x' }));
    expect(await u0.publish('svc', 'p')).toBe(true);
    expect(await u1.publish('svc', 'q')).toBe(false);
    expect(await u1.lookup('svc')).toBe('p');
    expect(await u1.unpublish('svc')).toBe(true);
    expect(await u0.unpublish('svc')).toBe(false);
    expect(await u0.lookup('svc')).toBeUndefined();
    const r = await u0.spawn({ parentKvsname: 'g', parentRank: 0, commands: [{ command: './c', args: [], maxprocs: 1, info: [] }], preput: [], protocol: 1 });
    expect(r).toEqual({ ok: true, kvsname: 'kid' });
    expect(spawned).toEqual(['./c']);
  });

  it('routes local upstream barriers to the right proxy id', async () => {
    const s = new KvsService();
    s.addGroup('g', 2);
    const none = () => Promise.resolve({ ok: false as const, error: '' });
    const a = pending(s.localUpstream(0, none).barrier('g', [['a', '1']]));
    const b = pending(s.localUpstream(0, none).barrier('g', []));
    await settle();
    expect(b.error).toBeInstanceOf(Error);
    const c = pending(s.localUpstream(1, none).barrier('g', []));
    await settle();
    expect(a.value).toEqual([['a', '1']]);
    expect(c.value).toEqual([['a', '1']]);
  });
});
