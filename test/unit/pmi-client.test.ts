// The TypeScript PMI-1 client against the real engine over in-memory streams, plus PMI_PORT parsing.
import { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { PmiClient, PmiClientError, connectFromEnv, parsePmiPort, type PmiPortAddress } from '../../src/pmi/client.js';
import { KvsService } from '../../src/pmi/kvs-service.js';
import { PmiServer, type PmiRankInfo, type SpawnRequest } from '../../src/pmi/server.js';

const open: PmiClient[] = [];
afterEach(() => {
  for (const c of open.splice(0)) c.close();
});

function world(size: number) {
  const service = new KvsService();
  service.addGroup('kvs_c', 1);
  const aborts: number[] = [];
  const spawns: SpawnRequest[] = [];
  const server = new PmiServer({
    upstream: service.localUpstream(0, (req) => {
      spawns.push(req);
      return Promise.resolve({ ok: true, kvsname: 'kvs_kid' });
    }),
    events: { initialized: () => {}, finalized: () => {}, aborted: (_r, code) => aborts.push(code), protocolError: () => {} },
  });
  server.addGroup({ kvsname: 'kvs_c', size, processMapping: `(vector,(0,1,${size}))`, universeSize: size, localCount: size, spawned: false });
  server.setIdResolver((id): PmiRankInfo | undefined => (id < size ? { rank: id, kvsname: 'kvs_c', appnum: 0 } : undefined));
  let nextId = 1;
  /** A client-side stream wired to the engine as one connection. */
  const stream = (rank?: number): Duplex => {
    const id = nextId++;
    const d: Duplex = new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        server.data(id, chunk);
        cb();
      },
      destroy(err, cb) {
        server.detach(id);
        cb(err);
      },
    });
    server.attach(id, { send: (s) => d.push(s), close: () => d.push(null) }, rank === undefined ? undefined : { rank, kvsname: 'kvs_c', appnum: 0 });
    return d;
  };
  const client = (rank?: number, timeoutMs?: number) => {
    const c = new PmiClient(stream(rank), { timeoutMs });
    open.push(c);
    return c;
  };
  return { server, service, client, stream, aborts, spawns };
}

describe('PmiClient', () => {
  it('runs init, maxes, put, barrier, get, finalize for two ranks', async () => {
    const w = world(2);
    const [a, b] = [w.client(0), w.client(1)];
    expect(await a.init()).toEqual({ version: 1, subversion: 1 });
    await b.init();
    expect(await a.getMaxes()).toEqual({ kvsnameMax: 256, keylenMax: 64, vallenMax: 1024 });
    expect(await a.getAppnum()).toBe(0);
    expect(await a.getUniverseSize()).toBe(2);
    const kvs = await b.getMyKvsname();
    expect(kvs).toBe('kvs_c');
    await a.put(kvs, 'ka', 'va=1');
    await b.put(kvs, 'kb', 'vb');
    expect(await a.get(kvs, 'kb')).toBeUndefined();
    await Promise.all([a.barrier(), b.barrier()]);
    expect(await a.get(kvs, 'kb')).toBe('vb');
    expect(await b.get(kvs, 'ka')).toBe('va=1');
    expect(await b.get(kvs, 'PMI_process_mapping')).toBe('(vector,(0,1,2))');
    await a.finalize();
    expect(w.server.state(0, 'kvs_c')).toBe('finalized');
    expect(w.server.state(1, 'kvs_c')).toBe('initialized');
  });

  it('uses the name service and spawns the 4.0.2 way', async () => {
    const w = world(1);
    const c = w.client(0);
    await c.init();
    expect(await c.publish('svc', 'port#1')).toBe(true);
    expect(await c.publish('svc', 'port#2')).toBe(false);
    expect(await c.lookup('svc')).toBe('port#1');
    expect(await c.unpublish('svc')).toBe(true);
    expect(await c.lookup('svc')).toBeUndefined();
    await c.spawn(
      [
        { command: './a', args: ['x y', '-n'], maxprocs: 2, info: [['wdir', '/tmp']] },
        { command: './b', maxprocs: 1 },
      ],
      [['PARENT_ROOT_PORT_NAME', 'p']],
    );
    expect(w.spawns[0]?.commands).toEqual([
      { command: './a', args: ['x y', '-n'], maxprocs: 2, info: [['wdir', '/tmp']] },
      { command: './b', args: [], maxprocs: 1, info: [] },
    ]);
    expect(w.spawns[0]?.preput).toEqual([['PARENT_ROOT_PORT_NAME', 'p']]);
    await expect(c.put('kvs_c', 'k', 'has space')).rejects.toBeInstanceOf(PmiClientError);
    await c.abort(9, 'bye');
    await new Promise((r) => setImmediate(r));
    expect(w.aborts).toEqual([9]);
  });

  it('throws on an error reply and on a reply of the wrong name', async () => {
    const w = world(1);
    const c = w.client(0);
    await expect(c.getMaxes()).rejects.toThrow(/maxes: rc=-1 not_initialized/);
    await c.init();
    await expect(c.put('wrong', 'k', 'v')).rejects.toThrow(/put_result: rc=-1/);
  });

  it('times out a request the server never answers, and fails pending requests on close', async () => {
    const w = world(2);
    const c = w.client(0, 50);
    await c.init();
    await expect(c.barrier()).rejects.toThrow(/no PMI reply within 50 ms/);
    await expect(c.getAppnum()).rejects.toThrow(/closed/);
    const d = w.client(1);
    await d.init();
    // rank 0 entered before it went away, so rank 1 completes the epoch and is answered
    await d.barrier();
    const e = new PmiClient(w.stream(undefined));
    const pending = e.init();
    // no identity: the server closes the connection
    await expect(pending).rejects.toThrow(/closed/);
  });

  it('does the initack handshake through connectFromEnv with PMI_PORT and PMI_ID', async () => {
    const w = world(3);
    const seen: PmiPortAddress[] = [];
    const c = await connectFromEnv(
      { PMI_PORT: '127.0.0.1:5555', PMI_ID: '2' },
      {
        connect: (addr) => {
          seen.push(addr);
          return Promise.resolve(w.stream());
        },
      },
    );
    expect(c).toBeDefined();
    open.push(c!);
    expect(seen).toEqual([{ kind: 'tcp', host: '127.0.0.1', port: 5555 }]);
    expect([c!.rank, c!.size]).toEqual([2, 3]);
    await c!.init();
    expect(w.server.state(2, 'kvs_c')).toBe('initialized');
  });

  it('prefers PMI_FD, takes rank and size from the environment, and is a singleton without either', async () => {
    const w = world(2);
    const fds: number[] = [];
    const c = await connectFromEnv(
      { PMI_FD: '7', PMI_PORT: 'x:1', PMI_RANK: '1', PMI_SIZE: '2' },
      {
        fromFd: (fd) => {
          fds.push(fd);
          return w.stream(1);
        },
      },
    );
    open.push(c!);
    expect(fds).toEqual([7]);
    expect([c!.rank, c!.size]).toEqual([1, 2]);
    expect(await connectFromEnv({})).toBeUndefined();
    await expect(connectFromEnv({ PMI_FD: 'three' })).rejects.toThrow(/PMI_FD/);
    await expect(connectFromEnv({ PMI_PORT: 'tcp://h:1' })).rejects.toThrow(/PMI_PORT/);
  });
});

describe('parsePmiPort', () => {
  it.each([
    ['127.0.0.1:5555', { kind: 'tcp', host: '127.0.0.1', port: 5555 }],
    ['vm:38887', { kind: 'tcp', host: 'vm', port: 38887 }],
    ['unix:///run/tsmpi/pmi.sock', { kind: 'unix', path: '/run/tsmpi/pmi.sock' }],
    ['::1:80', undefined],
    ['host', undefined],
    ['host:0', undefined],
    ['host:65536', undefined],
    ['host:12x', undefined],
    ['unix://relative', undefined],
    [':80', undefined],
  ])('%j', (v, want) => {
    expect(parsePmiPort(v)).toEqual(want);
  });
});
