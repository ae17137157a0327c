// Listening PMI endpoints (src/pmi/endpoint.ts) with a real PmiServer behind them: PMI_PORT over loopback TCP
// (initack, PMI-2 fullinit with MPICH's pmirank= and libpmi2's srcid=, the peer check, the handshake deadline,
// one connection per id, garbage), and over a UNIX socket in a private directory (modes, no abstract name,
// removal); plus the engine changes PMI_PORT needed (PMI-2 init before the connection has a rank).
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { connectFromEnv, type PmiClient } from '../../src/pmi/client.js';
import { PmiEndpoint, socketBaseCandidates, type PmiEndpointOptions } from '../../src/pmi/endpoint.js';
import { KvsService } from '../../src/pmi/kvs-service.js';
import { MemoryPmiPeer } from '../../src/pmi/memory-peer.js';
import { systemPeerDeps } from '../../src/pmi/peer-uid.js';
import { PmiServer } from '../../src/pmi/server.js';
import { formatV2 } from '../../src/pmi/wire2.js';

const KVS = 'kvs_ep_0';
// Every socket here is local; a test that has not finished in 15 s hangs on a bug, not on a slow machine.
vi.setConfig({ testTimeout: 15_000 });
const endpoints: PmiEndpoint[] = [];
const sockets: net.Socket[] = [];
const clients: PmiClient[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(endpoints.splice(0).map((e) => e.close()));
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function engine(size: number) {
  const service = new KvsService();
  service.addGroup(KVS, 1);
  const errors: string[] = [];
  const server = new PmiServer({
    upstream: service.localUpstream(0, () => Promise.resolve({ ok: false, error: 'no spawn here' })),
    events: { initialized: () => {}, finalized: () => {}, aborted: () => {}, protocolError: (_c, m) => errors.push(m) },
  });
  server.addGroup({ kvsname: KVS, size, processMapping: `(vector,(0,1,${size}))`, universeSize: size, localCount: size, spawned: false });
  server.setIdResolver((id) => (id >= 0 && id < size ? { rank: id, kvsname: KVS, appnum: 0 } : undefined));
  return { server, errors };
}

async function open(o: Omit<PmiEndpointOptions, 'notice'> & { notices?: string[] }): Promise<PmiEndpoint> {
  const notices = o.notices ?? [];
  const ep = await PmiEndpoint.open({ ...o, notice: (l) => notices.push(l) });
  endpoints.push(ep);
  return ep;
}

function rawConnect(port: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const [host, p] = port.split(':') as [string, string];
    const s = net.connect(Number(p), host);
    sockets.push(s);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Everything the server sends until it hangs up (bounded by the test timeout). */
function untilClosed(s: net.Socket): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    s.on('data', (d: Buffer) => (got += d.toString()));
    s.on('error', () => undefined);
    s.once('close', () => resolve(got));
  });
}

function nextData(s: net.Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    s.once('data', (d: Buffer) => resolve(d.toString()));
    s.once('close', () => reject(new Error('closed')));
  });
}

async function client(port: string, rank: number, size: number): Promise<PmiClient> {
  const c = await connectFromEnv({ PMI_PORT: port, PMI_ID: String(rank), PMI_RANK: String(rank), PMI_SIZE: String(size) }, { timeoutMs: 10_000 });
  if (!c) throw new Error('no client');
  clients.push(c);
  return c;
}

const v2 = (cmd: string, pairs: Array<[string, string | number]>): string => formatV2(cmd, pairs);

describe('PMI_PORT over TCP', () => {
  it('serves whole PMI-1 conversations, then stops listening once every id connected', async () => {
    const { server, errors } = engine(2);
    const ep = await open({ kind: 'tcp', engine: server, expected: 2 });
    expect(ep.port).toMatch(/^127\.0\.0\.1:\d+$/);
    const run = async (rank: number): Promise<string | undefined> => {
      const c = await client(ep.port, rank, 2);
      expect(c.rank).toBe(rank);
      expect(c.size).toBe(2);
      await c.init();
      await c.put(KVS, `k${rank}`, `v${rank}`);
      await c.barrier();
      const other = await c.get(KVS, `k${1 - rank}`);
      await c.finalize();
      return other;
    };
    expect(await Promise.all([run(0), run(1)])).toEqual(['v1', 'v0']);
    expect(server.state(0, KVS)).toBe('finalized');
    expect(errors).toEqual([]);
    const [host, p] = ep.port.split(':') as [string, string];
    const refused = await new Promise<string>((resolve) => {
      const s = net.connect(Number(p), host);
      s.once('connect', () => {
        s.destroy();
        resolve('connected');
      });
      s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    });
    expect(refused).toBe('ECONNREFUSED');
  });

  it('PMI-2 over TCP: init before any rank is known, fullinit by pmirank= (MPICH) or srcid= (libpmi2)', async () => {
    const { server, errors } = engine(2);
    const ep = await open({ kind: 'tcp', engine: server, expected: 2 });
    const a = await rawConnect(ep.port);
    a.write('cmd=init pmi_version=2 pmi_subversion=0\n');
    expect(await nextData(a)).toBe('cmd=response_to_init rc=0 pmi_version=2 pmi_subversion=0\n');
    a.write(v2('fullinit', [['pmirank', 1], ['threaded', 'FALSE']]));
    expect(await nextData(a)).toMatch(/^\s*\d+cmd=fullinit-response;pmi-version=2;pmi-subversion=0;rank=1;size=2;appnum=0;.*rc=0;$/);
    const b = await rawConnect(ep.port);
    b.write('cmd=init pmi_version=2 pmi_subversion=0\n');
    await nextData(b);
    // Slurm's libpmi2 header: left-aligned length, padded to 6 bytes
    const body = 'cmd=fullinit;srcid=0;threaded=FALSE;';
    b.write(`${String(body.length).padEnd(6)}${body}`);
    expect(await nextData(b)).toMatch(/rank=0;size=2;/);
    expect(server.identity(1_000_000_001)?.rank).toBe(0); // connection ids start at 1e9
    expect(errors).toEqual([]);
  });

  it('refuses a peer of another uid before reading a byte, with one notice line', async () => {
    const { server } = engine(2);
    const notices: string[] = [];
    const attached: number[] = [];
    const spy = { ...bindEngine(server), attach: (...a: Parameters<PmiServer['attach']>) => (attached.push(a[0]), server.attach(...a)) };
    const real = systemPeerDeps();
    const ep = await open({ kind: 'tcp', engine: spy, expected: 2, notices, peerDeps: { ...real, uid: real.uid + 1 } });
    const s = await rawConnect(ep.port);
    const got = untilClosed(s);
    s.write('cmd=initack pmiid=0\n');
    expect(await got).toBe('');
    expect(attached).toEqual([]);
    expect(notices).toHaveLength(1);
    expect(notices[0]).toMatch(new RegExp(`^refused a PMI connection from 127\\.0\\.0\\.1:\\d+ on ${ep.port.replace(/\./g, '\\.')} \\(uid ${real.uid}\\): peer uid ${real.uid} is not ours`));
  });

  it('fails closed when the socket tables cannot be read', async () => {
    const { server } = engine(1);
    const notices: string[] = [];
    const real = systemPeerDeps();
    const ep = await open({ kind: 'tcp', engine: server, expected: 1, notices, peerDeps: { ...real, readFile: () => Promise.reject(new Error('EACCES')) } });
    const s = await rawConnect(ep.port);
    s.write('cmd=initack pmiid=0\n');
    expect(await untilClosed(s)).toBe('');
    expect(notices[0]).toMatch(/cannot read \/proc\/net\/tcp/);
  });

  it('drops a connection that does not complete its handshake in time', async () => {
    const { server } = engine(2);
    const notices: string[] = [];
    const ep = await open({ kind: 'tcp', engine: server, expected: 2, notices, handshakeTimeoutMs: 200 });
    const silent = await rawConnect(ep.port);
    const silentDone = untilClosed(silent);
    const partial = await rawConnect(ep.port);
    const partialDone = untilClosed(partial);
    partial.write('cmd=initack pmi');
    expect(await silentDone).toBe('');
    expect(await partialDone).toBe('');
    expect(notices.filter((n) => /no PMI handshake within 0\.2 s/.test(n))).toHaveLength(2);
    // a rank that does its handshake stays connected past the deadline
    const c = await client(ep.port, 0, 2);
    await new Promise((r) => setTimeout(r, 400));
    await c.init();
    await c.finalize();
  });

  it('lets each PMI id connect once, and only ids of this proxy', async () => {
    const { server, errors } = engine(2);
    const ep = await open({ kind: 'tcp', engine: server, expected: 2 });
    const c = await client(ep.port, 0, 2);
    await c.init();
    const again = await rawConnect(ep.port);
    const r1 = untilClosed(again);
    again.write('cmd=initack pmiid=0\n');
    expect(await r1).toBe('');
    const stranger = await rawConnect(ep.port);
    const r2 = untilClosed(stranger);
    stranger.write('cmd=initack pmiid=7\n');
    expect(await r2).toBe('');
    expect(errors).toEqual(['rank 0 of kvs_ep_0 is already connected', 'initack with unknown pmiid 7']);
    // rank 0 is unaffected
    await c.put(KVS, 'a', 'b');
    await c.finalize();
  });

  it('drops garbage and over-long lines, and PMI commands sent before the handshake', async () => {
    const { server, errors } = engine(2);
    const ep = await open({ kind: 'tcp', engine: server, expected: 2 });
    const cases = ['GET / HTTP/1.1\r\nHost: x\r\n\r\n', `cmd=put kvsname=${KVS} key=k value=${'x'.repeat(70 * 1024)}`, `cmd=get kvsname=${KVS} key=k\n`];
    for (const text of cases) {
      const s = await rawConnect(ep.port);
      const r = untilClosed(s);
      s.write(text, () => undefined);
      expect(await r).toBe('');
    }
    expect(errors).toHaveLength(3);
    expect(errors[0]).toMatch(/garbage/);
    expect(errors[1]).toMatch(/longer than 65536/);
    expect(errors[2]).toMatch(/no rank identity/);
  });

  it('refuses connections beyond maxPending while others are in their handshake', async () => {
    const { server } = engine(2);
    const notices: string[] = [];
    const ep = await open({ kind: 'tcp', engine: server, expected: 2, notices, maxPending: 1 });
    const first = await rawConnect(ep.port);
    await new Promise((r) => setTimeout(r, 50));
    const second = await rawConnect(ep.port);
    expect(await untilClosed(second)).toBe('');
    expect(notices.some((n) => /too many connections/.test(n))).toBe(true);
    first.write('cmd=initack pmiid=1\n');
    expect(await nextData(first)).toMatch(/^cmd=initack rc=0 rank=1 size=2/);
  });
});

function bindEngine(server: PmiServer) {
  return {
    attach: server.attach.bind(server),
    data: server.data.bind(server),
    detach: server.detach.bind(server),
    identity: server.identity.bind(server),
  };
}

describe('PMI_PORT over a UNIX socket', () => {
  function tmpBase(mode = 0o700): string {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'tsmpi-eptest-'));
    fs.chmodSync(d, mode);
    dirs.push(d);
    return d;
  }

  it('binds in a fresh 0700 directory, never an abstract name, and removes it on close', async () => {
    const base = tmpBase();
    const { server, errors } = engine(1);
    const ep = await open({ kind: 'unix', engine: server, expected: 1, socketBase: base });
    expect(ep.port).toBe(`unix://${ep.socketPath}`);
    const dir = ep.socketDir as string;
    expect(path.dirname(dir)).toBe(base);
    expect(path.basename(dir)).toMatch(/^tsmpi-pmi-/);
    const st = fs.lstatSync(dir);
    expect(st.isDirectory()).toBe(true);
    expect(st.mode & 0o777).toBe(0o700);
    expect(st.uid).toBe(process.getuid?.());
    const sst = fs.lstatSync(ep.socketPath as string);
    expect(sst.isSocket()).toBe(true);
    expect(sst.mode & 0o777).toBe(0o600);
    const unixTable = fs.readFileSync('/proc/net/unix', 'utf8');
    expect(unixTable).toContain(ep.socketPath as string);
    expect(unixTable).not.toMatch(/@tsmpi/);
    const c = await client(ep.port, 0, 1);
    await c.init();
    await c.barrier();
    await c.finalize();
    expect(errors).toEqual([]);
    await ep.close();
    expect(fs.existsSync(dir)).toBe(false);
  });

  it('names the socket as the ranks see the directory when told', async () => {
    const base = tmpBase();
    const { server } = engine(1);
    const ep = await open({ kind: 'unix', engine: server, expected: 1, socketBase: base, rankSocketBase: '/tmp' });
    expect(ep.port).toBe(`unix:///tmp/${path.basename(ep.socketDir as string)}/pmi.sock`);
  });

  it('fails cleanly when the socket cannot be made', async () => {
    const { server } = engine(1);
    await expect(PmiEndpoint.open({ kind: 'unix', engine: server, expected: 1, notice: () => undefined, socketBase: '/nonexistent/dir' })).rejects.toThrow(/cannot create the PMI UNIX socket/);
    const base = tmpBase();
    const deep = path.join(base, 'd'.repeat(90));
    fs.mkdirSync(deep);
    await expect(PmiEndpoint.open({ kind: 'unix', engine: server, expected: 1, notice: () => undefined, socketBase: deep })).rejects.toThrow(/longer than 107 bytes/);
    expect(fs.readdirSync(deep)).toEqual([]);
  });

  it('prefers a usable $XDG_RUNTIME_DIR outside /tmp, then /run/user/<uid>, then /run for root, then the temp dir', () => {
    const uid = process.getuid?.() ?? 0;
    // outside /tmp even when the clone is under /tmp (a runtime directory under /tmp is not used)
    fs.mkdirSync('build', { recursive: true });
    const good = fs.mkdtempSync(path.resolve('build').startsWith('/tmp/') ? '/var/tmp/tsmpi-eptest-' : path.resolve('build/tsmpi-eptest-'));
    fs.chmodSync(good, 0o700);
    dirs.push(good);
    const underTmp = tmpBase(0o700);
    const loose = tmpBase(0o777);
    const runUser = `/run/user/${uid}`;
    const hasRunUser = fs.existsSync(runUser);
    const runRoot = uid === 0 && fs.statSync('/run').uid === 0 && (fs.statSync('/run').mode & 0o022) === 0;
    const tail = [...(hasRunUser ? [runUser] : []), ...(runRoot ? ['/run'] : []), os.tmpdir()];
    expect(socketBaseCandidates({ XDG_RUNTIME_DIR: good }, uid)).toEqual([good, ...tail.filter((d) => d !== good)]);
    expect(socketBaseCandidates({ XDG_RUNTIME_DIR: loose }, uid)).toEqual(tail);
    // under /tmp it would be hidden from ranks with a private /tmp
    expect(socketBaseCandidates({ XDG_RUNTIME_DIR: underTmp }, uid).includes(underTmp)).toBe(false);
    expect(socketBaseCandidates({ XDG_RUNTIME_DIR: 'relative/dir' }, uid)).toEqual(tail);
    expect(socketBaseCandidates({ XDG_RUNTIME_DIR: '' }, uid)).toEqual(tail);
    // owned by someone else: not ours to use
    expect(socketBaseCandidates({ XDG_RUNTIME_DIR: good }, uid + 1).includes(good)).toBe(false);
  });
});

describe('engine: identities learned on the connection', () => {
  it('answers a PMI-2 init line on an anonymous connection, and binds on fullinit', () => {
    const { server, errors } = engine(2);
    server.setIdResolver((id) => (id < 2 ? { rank: id, kvsname: KVS, appnum: 0 } : undefined));
    const p = new MemoryPmiPeer(server, 50);
    p.write('cmd=init pmi_version=2 pmi_subversion=0\n');
    expect(p.takeLines()).toEqual(['cmd=response_to_init rc=0 pmi_version=2 pmi_subversion=0']);
    expect(server.identity(50)).toBeUndefined();
    p.write(v2('fullinit', [['srcid', 1], ['threaded', 'FALSE']]));
    expect(server.identity(50)).toEqual({ rank: 1, kvsname: KVS, appnum: 0 });
    expect(errors).toEqual([]);
  });

  it('still refuses PMI-1 init from a connection with no rank', () => {
    const { server, errors } = engine(2);
    const p = new MemoryPmiPeer(server, 51);
    p.write('cmd=init pmi_version=1 pmi_subversion=1\n');
    expect(p.closed).toBe(true);
    expect(errors[0]).toMatch(/no rank identity/);
  });

  it('names the rank in protocol errors once it is known', () => {
    const service = new KvsService();
    service.addGroup(KVS, 1);
    const seen: Array<[number, string, number | undefined]> = [];
    const server = new PmiServer({
      upstream: service.localUpstream(0, () => Promise.resolve({ ok: false, error: 'x' })),
      events: { initialized: () => {}, finalized: () => {}, aborted: () => {}, protocolError: (c, m, r) => seen.push([c, m, r?.rank]) },
    });
    server.addGroup({ kvsname: KVS, size: 2, processMapping: '', universeSize: 2, localCount: 2, spawned: false });
    server.setIdResolver((id) => ({ rank: id, kvsname: KVS, appnum: 0 }));
    const p = new MemoryPmiPeer(server, 60);
    p.write('cmd=initack pmiid=1\n');
    p.write('cmd=bogus\n');
    const q = new MemoryPmiPeer(server, 61);
    q.write('nonsense!\n');
    expect(seen).toEqual([
      [60, 'unknown PMI-1 command bogus', 1],
      [61, 'garbage: neither a PMI-1 line nor a PMI-2 length header', undefined],
    ]);
  });
});
