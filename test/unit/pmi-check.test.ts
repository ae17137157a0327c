// `tsmpiexec pmi-check`'s work (src/pmi-check/check.ts) as in-process ranks against a real PmiServer behind a
// PMI_PORT endpoint: the whole run, rank 0's summary, and that a wrong value, a missing server or a dead port
// fail in the right phase.
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { connectFromEnv, type PmiClient } from '../../src/pmi/client.js';
import { PmiEndpoint } from '../../src/pmi/endpoint.js';
import { KvsService } from '../../src/pmi/kvs-service.js';
import { PmiServer } from '../../src/pmi/server.js';
import { CheckFailure, NoPmiError, formatReport, formatSummary, keyName, keyValue, runCheck, stat, transportOf } from '../../src/pmi-check/check.js';

vi.setConfig({ testTimeout: 15_000 });

const KVS = 'kvs_chk_0';
const endpoints: PmiEndpoint[] = [];
const clients: PmiClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await Promise.all(endpoints.splice(0).map((e) => e.close()));
});

async function serve(size: number, kind: 'tcp' | 'unix' = 'tcp') {
  const service = new KvsService();
  service.addGroup(KVS, 1);
  const errors: string[] = [];
  const server = new PmiServer({
    upstream: service.localUpstream(0, () => Promise.resolve({ ok: false, error: 'no spawn' })),
    events: { initialized: () => {}, finalized: () => {}, aborted: () => {}, protocolError: (_c, m) => errors.push(m) },
  });
  server.addGroup({ kvsname: KVS, size, processMapping: `(vector,(0,1,${size}))`, universeSize: size, localCount: size, spawned: false });
  server.setIdResolver((id) => (id >= 0 && id < size ? { rank: id, kvsname: KVS, appnum: 0 } : undefined));
  const ep = await PmiEndpoint.open({ kind, engine: server, expected: size, notice: (l) => errors.push(l) });
  endpoints.push(ep);
  const env = (rank: number) => ({ PMI_PORT: ep.port, PMI_ID: String(rank), PMI_RANK: String(rank), PMI_SIZE: String(size) });
  return { server, errors, env };
}

const now = () => performance.now();

describe('pmi-check', () => {
  it.each(['tcp', 'unix'] as const)('runs init, barrier, exchange and finalize on every rank over %s', async (kind) => {
    const size = 3;
    const { server, errors, env } = await serve(size, kind);
    const results = await Promise.all([0, 1, 2].map((r) => runCheck(env(r), { keys: 5, timeoutMs: 10_000 }, now)));
    results.forEach(({ report }, r) => {
      expect(report).toMatchObject({ rank: r, size, kvsname: KVS, transport: kind, keys: 5 });
      for (const v of Object.values(report.ms)) expect(v).toBeGreaterThanOrEqual(0);
      expect(server.state(r, KVS)).toBe('finalized');
      expect(formatReport(report, 'h', 42)).toMatch(new RegExp(`^pmi-check: rank ${r} of 3 on h \\(pid 42, PMI_PORT ${kind}\\): connect .* exchange 15 keys .* total `));
    });
    expect(results[1]?.summary).toBeUndefined();
    const s = results[0]?.summary;
    expect(s).toMatchObject({ ranks: 3, keys: 5, kvsname: KVS });
    expect(s && s.exchange.min <= s.exchange.median && s.exchange.median <= s.exchange.max).toBe(true);
    expect(formatSummary(s!)).toMatch(/^pmi-check: OK: 3 ranks, 5 keys each, 15 per rank read back; min\/median\/max init /);
    expect(errors).toEqual([]);
  });

  it('fails in the exchange when a rank reads a value that is not what its owner should have put', async () => {
    const { env } = await serve(2);
    const rogue = (await connectFromEnv(env(1), { timeoutMs: 10_000 })) as PmiClient;
    clients.push(rogue);
    const honest = runCheck(env(0), { keys: 2, timeoutMs: 10_000 }, now);
    await rogue.init();
    await rogue.barrier();
    await rogue.put(KVS, keyName(1, 0), keyValue(KVS, 1, 0));
    await rogue.put(KVS, keyName(1, 1), 'forged');
    await rogue.barrier();
    const err = await honest.then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(CheckFailure);
    expect((err as CheckFailure).phase).toBe('exchange');
    expect((err as CheckFailure).message).toMatch(/key pmichk-1-1 has "forged", expected "1\.1\./);
  });

  it('says so when no PMI server is named, and fails in connect when it is gone', async () => {
    await expect(runCheck({}, { keys: 1, timeoutMs: 1000 }, now)).rejects.toBeInstanceOf(NoPmiError);
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as net.AddressInfo).port;
    await new Promise<void>((r) => srv.close(() => r()));
    const err = await runCheck({ PMI_PORT: `127.0.0.1:${port}`, PMI_ID: '0' }, { keys: 1, timeoutMs: 1000 }, now).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(CheckFailure);
    expect((err as CheckFailure).phase).toBe('connect');
  });

  it('tells transports apart and summarises', () => {
    expect(transportOf({ PMI_FD: '3', PMI_PORT: 'x:1' })).toBe('fd');
    expect(transportOf({ PMI_PORT: '127.0.0.1:5' })).toBe('tcp');
    expect(transportOf({ PMI_PORT: 'unix:///run/x/pmi.sock' })).toBe('unix');
    expect(transportOf({ PMI_FD: '' })).toBeUndefined();
    expect(stat([{ rank: 0, v: 3 }, { rank: 1, v: 1 }, { rank: 2, v: 2 }, { rank: 3, v: 10 }])).toEqual({ min: 1, median: 2.5, max: 10, slowest: 3 });
    expect(keyValue('kvs', 1, 2)).toBe(keyValue('kvs', 1, 2));
    expect(keyValue('kvs', 1, 2)).not.toBe(keyValue('kvs2', 1, 2));
  });
});
