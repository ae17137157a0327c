// The job's KVS limits in the PMI engine: a put over --kvs-max-keys / --kvs-max-bytes gets an error reply in
// PMI-1 and PMI-2, nothing of it is stored, the user hears of it once, and pairs other proxies put count too.
import { describe, expect, it } from 'vitest';
import { KvsBudget } from '../../src/pmi/kvs-budget.js';
import { KvsService } from '../../src/pmi/kvs-service.js';
import { MemoryPmiPeer } from '../../src/pmi/memory-peer.js';
import { PmiServer } from '../../src/pmi/server.js';
import type { KvsLimits, KvsOverflow } from '../../src/pmi/types.js';

const settle = () => new Promise<void>((r) => setImmediate(r));

function job(limits: KvsLimits, proxies: number[][]) {
  const kvsname = 'kvs_7_0';
  const size = proxies.flat().length;
  const service = new KvsService();
  service.addGroup(kvsname, proxies.length);
  const said: Array<{ rank: number; over: KvsOverflow }> = [];
  const servers = proxies.map((ranks, p) => {
    const s = new PmiServer({
      upstream: service.localUpstream(p, () => Promise.resolve({ ok: false, error: 'no spawn here' })),
      events: {
        initialized: () => {},
        finalized: () => {},
        aborted: () => {},
        protocolError: () => {},
        limitReached: (r, over) => said.push({ rank: r.rank, over }),
      },
    });
    s.addGroup({ kvsname, size, processMapping: '', universeSize: size, localCount: ranks.length, spawned: false, kvsLimits: limits });
    return s;
  });
  const peers: MemoryPmiPeer[] = [];
  proxies.forEach((ranks, p) => {
    for (const r of ranks) peers[r] = new MemoryPmiPeer(servers[p]!, 100 + r, { rank: r, kvsname, appnum: 0 });
  });
  const v1 = (r: number, line: string): string[] => {
    peers[r]!.write(`${line}\n`);
    return peers[r]!.takeLines();
  };
  const v2 = (r: number, body: string): string[] => {
    peers[r]!.write(`${String(body.length).padStart(6, ' ')}${body}`);
    return peers[r]!.takeFrames().map((f) => (f.kind === 'v2' ? f.body : f.line));
  };
  return { kvsname, said, v1, v2, peers };
}

describe('KvsBudget', () => {
  it('admits up to the key limit, counts key and value bytes, and frees what a barrier settles', () => {
    const b = new KvsBudget({ maxKeys: 2, maxBytes: 100 });
    expect(b.admit('a', 'xx')).toBeUndefined();
    expect(b.admit('b', 'yy')).toBeUndefined();
    expect(b.admit('c', 'z')).toEqual({ limit: 'keys', max: 2 });
    expect(b.held()).toEqual({ keys: 2, bytes: 6 });
    // the barrier returns both pairs: they are now stored, not open, and the total is unchanged
    const kvs = new Map<string, string>();
    b.settle([['a', 'xx'], ['b', 'yy']]);
    b.store(kvs, 'a', 'xx');
    b.store(kvs, 'b', 'yy');
    expect(b.held()).toEqual({ keys: 2, bytes: 6 });
    // replacing a value counts only the difference
    b.store(kvs, 'a', 'xxxx');
    expect(b.held()).toEqual({ keys: 2, bytes: 8 });
  });

  it('refuses a put that would pass the byte limit, counting UTF-8 bytes', () => {
    const b = new KvsBudget({ maxKeys: 10, maxBytes: 10 });
    expect(b.admit('k', 'é'.repeat(4))).toBeUndefined(); // 1 + 8 bytes
    expect(b.admit('lm', '')).toEqual({ limit: 'bytes', max: 10 });
    expect(b.held()).toEqual({ keys: 1, bytes: 9 });
  });
});

describe('PmiServer with KVS limits', () => {
  it('PMI-1: the put over the key limit gets rc=-1 naming the limit, is not stored, and is said once', async () => {
    const j = job({ maxKeys: 2, maxBytes: 1 << 20 }, [[0]]);
    const k = j.kvsname;
    j.v1(0, 'cmd=init pmi_version=1 pmi_subversion=1');
    expect(j.v1(0, `cmd=put kvsname=${k} key=a value=1`)).toEqual(['cmd=put_result rc=0']);
    expect(j.v1(0, `cmd=put kvsname=${k} key=b value=2`)).toEqual(['cmd=put_result rc=0']);
    expect(j.v1(0, `cmd=put kvsname=${k} key=c value=3`)).toEqual(['cmd=put_result rc=-1 msg=KVS_limit_of_2_keys_reached']);
    expect(j.v1(0, `cmd=put kvsname=${k} key=d value=4`)).toEqual(['cmd=put_result rc=-1 msg=KVS_limit_of_2_keys_reached']);
    await settle();
    expect(j.said).toEqual([{ rank: 0, over: { limit: 'keys', max: 2 } }]);
    j.v1(0, 'cmd=barrier_in');
    await settle();
    expect(j.peers[0]!.takeLines()).toEqual(['cmd=barrier_out rc=0']);
    expect(j.v1(0, `cmd=get kvsname=${k} key=b`)).toEqual(['cmd=get_result rc=0 value=2']);
    expect(j.v1(0, `cmd=get kvsname=${k} key=c`)).toEqual(['cmd=get_result rc=-1 msg=key_c_not_found']);
  });

  it('PMI-2: kvs-put over the byte limit gets rc=1 with an errmsg', async () => {
    const j = job({ maxKeys: 100, maxBytes: 12 }, [[0]]);
    j.v2(0, 'cmd=fullinit;pmirank=0;');
    expect(j.v2(0, 'cmd=kvs-put;key=a;value=0123456789;')).toEqual(['cmd=kvs-put-response;rc=0;']);
    const refused = j.v2(0, 'cmd=kvs-put;key=b;value=xy;');
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatch(/cmd=kvs-put-response;rc=1;errmsg=KVS_limit_of_12_bytes_reached;/);
    await settle();
    expect(j.said).toEqual([{ rank: 0, over: { limit: 'bytes', max: 12 } }]);
  });

  it('pairs put on another proxy count once a barrier brought them: the job-wide total is what is limited', async () => {
    const j = job({ maxKeys: 3, maxBytes: 1 << 20 }, [[0], [1]]);
    const k = j.kvsname;
    for (const r of [0, 1]) j.v1(r, 'cmd=init pmi_version=1 pmi_subversion=1');
    expect(j.v1(1, `cmd=put kvsname=${k} key=x value=1`)).toEqual(['cmd=put_result rc=0']);
    expect(j.v1(1, `cmd=put kvsname=${k} key=y value=1`)).toEqual(['cmd=put_result rc=0']);
    for (const r of [0, 1]) j.v1(r, 'cmd=barrier_in');
    await settle();
    for (const r of [0, 1]) expect(j.peers[r]!.takeLines()).toEqual(['cmd=barrier_out rc=0']);
    // proxy 0 now holds x and y: one more key fits, the next does not
    expect(j.v1(0, `cmd=put kvsname=${k} key=z value=1`)).toEqual(['cmd=put_result rc=0']);
    expect(j.v1(0, `cmd=put kvsname=${k} key=w value=1`)).toEqual(['cmd=put_result rc=-1 msg=KVS_limit_of_3_keys_reached']);
    await settle();
    expect(j.said).toEqual([{ rank: 0, over: { limit: 'keys', max: 3 } }]);
  });
});
