// The engine under hostile or broken peers: garbage, over-long input, duplicates, vanishing ranks, failing
// upstreams, plus fast-check properties (random bytes never throw; random valid PMI-1 sessions match a model)
// and a 1024-rank job.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KvsService } from '../../src/pmi/kvs-service.js';
import { MemoryPmiPeer } from '../../src/pmi/memory-peer.js';
import { PmiServer, type PmiServerEvents, type PmiUpstream } from '../../src/pmi/server.js';
import { frameV2 } from '../../src/pmi/wire2.js';

const settle = () => new Promise<void>((r) => setImmediate(r));
const INIT = 'cmd=init pmi_version=1 pmi_subversion=1\n';
const INIT_OK = 'cmd=response_to_init rc=0 pmi_version=1 pmi_subversion=1';

function quiet(errors: Array<[number, string]> = []): PmiServerEvents {
  return { initialized: () => {}, finalized: () => {}, aborted: () => {}, protocolError: (c, m) => errors.push([c, m]) };
}

function oneProxy(size: number, upstream?: PmiUpstream) {
  const service = new KvsService();
  service.addGroup('kvs', 1);
  const errors: Array<[number, string]> = [];
  const server = new PmiServer({ upstream: upstream ?? service.localUpstream(0, () => Promise.resolve({ ok: false, error: 'no' })), events: quiet(errors) });
  server.addGroup({ kvsname: 'kvs', size, processMapping: `(vector,(0,1,${size}))`, universeSize: size, localCount: size, spawned: false });
  const peers = Array.from({ length: size }, (_, r) => new MemoryPmiPeer(server, r, { rank: r, kvsname: 'kvs', appnum: 0 }));
  return { service, server, peers, errors };
}

describe('robustness', () => {
  it('closes a connection that sends garbage and leaves the others working', async () => {
    const { server, peers, errors } = oneProxy(3);
    for (const p of peers) p.write(INIT);
    peers[0]!.write('cmd=put kvsname=kvs key=a value=1\n');
    peers[1]!.write('\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage');
    expect(peers[1]!.closed).toBe(true);
    expect(errors).toHaveLength(1);
    expect(errors[0]![0]).toBe(1);
    // later data on the closed connection is ignored
    peers[1]!.write('cmd=barrier_in\n');
    expect(peers[1]!.takeLines()).toEqual([INIT_OK]);
    expect(peers[0]!.takeLines()).toEqual([INIT_OK, 'cmd=put_result rc=0']);
    peers[2]!.write('cmd=get_my_kvsname\n');
    expect(peers[2]!.takeLines()).toEqual([INIT_OK, 'cmd=my_kvsname rc=0 kvsname=kvs']);
    expect(server.state(1, 'kvs')).toBe('initialized');
  });

  it('closes on a line over 64 KiB', () => {
    const { peers, errors } = oneProxy(1);
    peers[0]!.write(INIT);
    peers[0]!.write('cmd=put kvsname=kvs key=a value=' + 'A'.repeat(70_000));
    expect(peers[0]!.closed).toBe(true);
    expect(errors[0]![1]).toMatch(/longer than 65536/);
  });

  it('accepts long put lines below the limit (main does not clamp vallen)', () => {
    const { peers } = oneProxy(1);
    peers[0]!.write(INIT + `cmd=put kvsname=kvs key=a value=${'B'.repeat(5000)}\n`);
    expect(peers[0]!.takeLines()).toEqual([INIT_OK, 'cmd=put_result rc=0']);
  });

  it('refuses a second connection for an attached rank, a reused id and an unknown group', () => {
    const { server, peers, errors } = oneProxy(2);
    const dup = new MemoryPmiPeer(server, 77, { rank: 0, kvsname: 'kvs', appnum: 0 });
    expect(dup.closed).toBe(true);
    const out = new MemoryPmiPeer(server, 78, { rank: 5, kvsname: 'kvs', appnum: 0 });
    expect(out.closed).toBe(true);
    const unknown = new MemoryPmiPeer(server, 79, { rank: 0, kvsname: 'other', appnum: 0 });
    expect(unknown.closed).toBe(true);
    const reused = new MemoryPmiPeer(server, 1);
    expect(reused.closed).toBe(true);
    expect(errors.map(([c]) => c)).toEqual([77, 78, 79, 1]);
    peers[0]!.write(INIT);
    peers[1]!.write(INIT);
    expect(peers[0]!.takeLines()).toEqual([INIT_OK]);
    expect(peers[1]!.takeLines()).toEqual([INIT_OK]);
  });

  it('survives a rank vanishing mid-barrier: the others are released once all entered', async () => {
    const { server, peers, errors } = oneProxy(3);
    for (const p of peers) p.write(INIT);
    for (const p of peers) p.takeLines();
    peers[2]!.write('cmd=barrier_in\n');
    peers[2]!.end();
    peers[2]!.end(); // twice is harmless
    server.detach(12345); // unknown id is harmless
    server.data(12345, Buffer.from('cmd=init\n'));
    peers[0]!.write('cmd=barrier_in\n');
    peers[1]!.write('cmd=barrier_in\n');
    await settle();
    expect(peers[0]!.takeLines()).toEqual(['cmd=barrier_out rc=0']);
    expect(peers[1]!.takeLines()).toEqual(['cmd=barrier_out rc=0']);
    expect(peers[2]!.takeLines()).toEqual([]);
    expect(errors).toEqual([]);
    expect(server.state(2, 'kvs')).toBe('initialized');
  });

  it('does not crash when a rank vanishes before entering (the barrier simply cannot complete)', async () => {
    const { server, peers } = oneProxy(3);
    for (const p of peers) p.write(INIT);
    for (const p of peers) p.takeLines();
    peers[1]!.end();
    peers[0]!.write('cmd=barrier_in\n');
    peers[2]!.write('cmd=barrier_in\n');
    await settle();
    expect(peers[0]!.takeLines()).toEqual([]);
    peers[0]!.write('cmd=finalize\n');
    // the barrier is still pending for rank 0, but other commands are still answered
    expect(peers[0]!.takeLines()).toEqual(['cmd=finalize_ack rc=0']);
    expect(server.state(0, 'kvs')).toBe('finalized');
  });

  it('closes a rank that enters the barrier twice', () => {
    const { peers, errors } = oneProxy(2);
    peers[0]!.write(INIT + 'cmd=barrier_in\ncmd=barrier_in\n');
    expect(peers[0]!.closed).toBe(true);
    expect(errors[0]![1]).toMatch(/barrier twice/);
  });

  it('turns upstream failures into error replies', async () => {
    const bad: PmiUpstream = {
      barrier: () => Promise.reject(new Error('controller gone')),
      publish: () => {
        throw new Error('sync throw');
      },
      unpublish: () => Promise.resolve(true),
      lookup: () => Promise.reject(new Error('lost')),
      spawn: () => Promise.reject(new Error('cannot')),
    };
    const { peers } = oneProxy(1, bad);
    const p = peers[0]!;
    p.write(INIT + 'cmd=barrier_in\n');
    await settle();
    expect(p.takeLines()).toEqual([INIT_OK, 'cmd=barrier_out rc=-1 msg=barrier_failed:_controller_gone']);
    p.write('cmd=publish_name service=s port=p\n');
    await settle();
    expect(p.takeLines()).toEqual(['cmd=publish_result rc=1 msg=sync_throw']);
    p.write('cmd=lookup_name service=s\n');
    await settle();
    expect(p.takeLines()).toEqual(['cmd=lookup_result rc=1 msg=lost']);
    // barriers keep working after a failed one
    p.write('cmd=barrier_in\n');
    await settle();
    expect(p.takeLines()).toEqual(['cmd=barrier_out rc=-1 msg=barrier_failed:_controller_gone']);
  });

  it('closes on unknown commands of either version and on a PMI-2 frame inside a spawn', () => {
    const { server, peers, errors } = oneProxy(3);
    peers[0]!.write(INIT + 'cmd=getbyidx kvsname=kvs idx=0\n');
    peers[1]!.write(frameV2('cmd=job-teleport;'));
    peers[2]!.write(INIT + 'mcmd=spawn\nnprocs=1\nexecname=x\ntotspawns=2\nspawnssofar=1\nendcmd\n' + frameV2('cmd=finalize;'));
    expect(peers.map((p) => p.closed)).toEqual([true, true, true]);
    expect(errors.map(([, m]) => m)).toEqual([
      expect.stringMatching(/unknown PMI-1 command getbyidx/),
      expect.stringMatching(/unknown PMI-2 command job-teleport/),
      expect.stringMatching(/inside a PMI-1 spawn/),
    ]);
    expect(server.state(0, 'kvs')).toBe('initialized');
  });

  it('refuses to put a PMI-2 value with spaces into a PMI-1 reply', async () => {
    const { peers } = oneProxy(2);
    peers[0]!.write('    23cmd=fullinit;pmirank=0;' + frameV2('cmd=kvs-put;key=k;value=a b\ncmd=abort;') + frameV2('cmd=kvs-fence;'));
    peers[1]!.write(INIT + 'cmd=barrier_in\n');
    await settle();
    peers[1]!.takeLines();
    peers[1]!.write('cmd=get kvsname=kvs key=k\n');
    expect(peers[1]!.takeLines()).toEqual(['cmd=get_result rc=-1 msg=value_of_k_not_representable_in_PMI-1']);
  });
});

describe('properties', () => {
  it('random bytes on one connection never throw and never disturb another rank', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 20 }),
        fc.boolean(),
        (chunks, attached) => {
          const service = new KvsService();
          service.addGroup('a', 1);
          service.addGroup('b', 1);
          const server = new PmiServer({ upstream: service.localUpstream(0, () => Promise.resolve({ ok: false, error: 'no' })), events: quiet() });
          server.addGroup({ kvsname: 'a', size: 1, processMapping: '', universeSize: 1, localCount: 1, spawned: false });
          server.addGroup({ kvsname: 'b', size: 1, processMapping: '', universeSize: 1, localCount: 1, spawned: false });
          const good = new MemoryPmiPeer(server, 1, { rank: 0, kvsname: 'a', appnum: 3 });
          const evil = new MemoryPmiPeer(server, 2, attached ? { rank: 0, kvsname: 'b', appnum: 0 } : undefined);
          good.write(INIT);
          expect(good.takeLines()).toEqual([INIT_OK]);
          for (const c of chunks) {
            evil.write(Buffer.from(c));
            good.write('cmd=get_appnum\n');
            expect(good.takeLines()).toEqual(['cmd=appnum rc=0 appnum=3']);
          }
          good.write('cmd=put kvsname=a key=x value=1\ncmd=get kvsname=a key=x\n');
          expect(good.takeLines()).toEqual(['cmd=put_result rc=0', 'cmd=get_result rc=-1 msg=key_x_not_found']);
          expect(server.state(0, 'a')).toBe('initialized');
        },
      ),
      { numRuns: 300 },
    );
  });

  it('random framed PMI-2 bodies never throw', () => {
    const token = fc.stringMatching(/^[a-z=;-]{0,12}$/);
    fc.assert(
      fc.property(fc.array(fc.array(token, { maxLength: 8 }), { maxLength: 10 }), (bodies) => {
        const { peers } = oneProxy(1);
        peers[0]!.write('    23cmd=fullinit;pmirank=0;');
        for (const parts of bodies) {
          const body = parts.join('');
          if (body.length === 0) continue;
          peers[0]!.write(frameV2(body));
          peers[0]!.takeRaw();
        }
      }),
      { numRuns: 300 },
    );
  });

  // A model of what one proxy's KVS and name service must answer, for random interleaved PMI-1 sessions.
  type Op =
    | { op: 'put'; rank: number; key: string; value: string }
    | { op: 'get'; rank: number; key: string }
    | { op: 'simple'; rank: number; which: 'get_maxes' | 'get_appnum' | 'get_my_kvsname' | 'get_universe_size' }
    | { op: 'publish'; rank: number; service: string; port: string }
    | { op: 'lookup'; rank: number; service: string }
    | { op: 'unpublish'; rank: number; service: string }
    | { op: 'barrier' };
  const RANKS = 3;
  const rank = fc.integer({ min: 0, max: RANKS - 1 });
  const key = fc.constantFrom('a', 'b', 'c=d', 'PMI_process_mapping', 'PMI_dead_processes');
  const val = fc.stringMatching(/^[!-~]{0,10}$/);
  const svc = fc.constantFrom('s1', 's2');
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ op: fc.constant('put' as const), rank, key: key.filter((k) => !k.startsWith('PMI_')), value: val }),
    fc.record({ op: fc.constant('get' as const), rank, key }),
    fc.record({ op: fc.constant('simple' as const), rank, which: fc.constantFrom('get_maxes', 'get_appnum', 'get_my_kvsname', 'get_universe_size') }),
    fc.record({ op: fc.constant('publish' as const), rank, service: svc, port: val }),
    fc.record({ op: fc.constant('lookup' as const), rank, service: svc }),
    fc.record({ op: fc.constant('unpublish' as const), rank, service: svc }),
    fc.constant({ op: 'barrier' as const }),
  );

  it('random valid PMI-1 sessions get exactly the replies a model predicts', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { maxLength: 40 }), fc.integer({ min: 1, max: 7 }), async (ops, split) => {
        const { peers } = oneProxy(RANKS);
        const visible = new Map<string, string>();
        let pending: Array<[string, string]> = [];
        const names = new Map<string, string>();
        for (const p of peers) p.write(INIT);
        for (const p of peers) expect(p.takeLines()).toEqual([INIT_OK]);
        /** Write a line in two pieces, to exercise reassembly. */
        const send = (r: number, line: string) => {
          const at = Math.min(split, line.length);
          peers[r]!.write(line.slice(0, at));
          peers[r]!.write(line.slice(at) + '\n');
        };
        const expectReply = async (r: number, line: string, reply: string) => {
          send(r, line);
          await settle();
          expect(peers[r]!.takeLines()).toEqual([reply]);
        };
        for (const o of ops) {
          switch (o.op) {
            case 'put':
              pending.push([o.key, o.value]);
              await expectReply(o.rank, `cmd=put kvsname=kvs key=${o.key} value=${o.value}`, 'cmd=put_result rc=0');
              break;
            case 'get': {
              const v =
                o.key === 'PMI_process_mapping' ? `(vector,(0,1,${RANKS}))` : o.key === 'PMI_dead_processes' ? '' : visible.get(o.key);
              await expectReply(
                o.rank,
                `cmd=get kvsname=kvs key=${o.key}`,
                v === undefined ? `cmd=get_result rc=-1 msg=key_${o.key.replace('=', '_')}_not_found` : `cmd=get_result rc=0 value=${v}`,
              );
              break;
            }
            case 'simple': {
              const want = {
                get_maxes: 'cmd=maxes rc=0 kvsname_max=256 keylen_max=64 vallen_max=1024',
                get_appnum: 'cmd=appnum rc=0 appnum=0',
                get_my_kvsname: 'cmd=my_kvsname rc=0 kvsname=kvs',
                get_universe_size: `cmd=universe_size rc=0 size=${RANKS}`,
              }[o.which];
              await expectReply(o.rank, `cmd=${o.which}`, want);
              break;
            }
            case 'publish': {
              const fresh = !names.has(o.service);
              if (fresh) names.set(o.service, o.port);
              await expectReply(
                o.rank,
                `cmd=publish_name service=${o.service} port=${o.port}`,
                fresh ? 'cmd=publish_result rc=0' : 'cmd=publish_result rc=1 msg=key_already_present',
              );
              break;
            }
            case 'lookup': {
              const port = names.get(o.service);
              await expectReply(
                o.rank,
                `cmd=lookup_name service=${o.service}`,
                port === undefined ? 'cmd=lookup_result rc=1 msg=service_not_found' : `cmd=lookup_result rc=0 port=${port}`,
              );
              break;
            }
            case 'unpublish': {
              const had = names.delete(o.service);
              await expectReply(
                o.rank,
                `cmd=unpublish_name service=${o.service}`,
                had ? 'cmd=unpublish_result rc=0' : 'cmd=unpublish_result rc=1 msg=service_not_found',
              );
              break;
            }
            case 'barrier': {
              for (let r = 0; r < RANKS; r++) send(r, 'cmd=barrier_in');
              await settle();
              for (const [k, v] of pending) visible.set(k, v);
              pending = [];
              for (const p of peers) expect(p.takeLines()).toEqual(['cmd=barrier_out rc=0']);
              break;
            }
          }
        }
      }),
      { numRuns: 150 },
    );
  });
});

// Speed is measured in bench/ (no timing asserts in tests); this checks that 1024 ranks complete correctly.
describe('scale', () => {
  it('1024 ranks on one host: init + 2 barriers + gets all answered correctly', async () => {
    const N = 1024;
    const service = new KvsService();
    service.addGroup('big', 1);
    const server = new PmiServer({ upstream: service.localUpstream(0, () => Promise.resolve({ ok: false, error: '' })), events: quiet() });
    server.addGroup({ kvsname: 'big', size: N, processMapping: `(vector,(0,1,${N}))`, universeSize: N, localCount: N, spawned: false });
    const peers = Array.from({ length: N }, (_, r) => new MemoryPmiPeer(server, r, { rank: r, kvsname: 'big', appnum: 0 }));
    for (const p of peers) {
      p.write(INIT);
      p.write('cmd=get_maxes\ncmd=get_appnum\ncmd=get_my_kvsname\ncmd=get kvsname=big key=PMI_process_mapping\ncmd=barrier_in\n');
    }
    await settle();
    for (let r = 0; r < N; r++) peers[r]!.write(`cmd=put kvsname=big key=-allgather-shm-1-${r} value=${'AB'.repeat(64)}\ncmd=barrier_in\n`);
    await settle();
    for (let r = 0; r < N; r++) peers[r]!.write(`cmd=get kvsname=big key=-allgather-shm-1-${(r + 1) % N}\n`);
    for (const p of peers) {
      const lines = p.takeLines();
      expect(lines).toHaveLength(9);
      expect(lines[5]).toBe('cmd=barrier_out rc=0');
      expect(lines[7]).toBe('cmd=barrier_out rc=0');
      expect(lines[8]).toBe(`cmd=get_result rc=0 value=${'AB'.repeat(64)}`);
    }
    expect(service.barriersCompleted('big')).toBe(2);
  });
});
