// HostProxy with --pmi-transport tcp/unix: ranks get PMI_PORT + PMI_ID instead of PMI_FD, start once the endpoint
// listens (stdin written meanwhile is not lost), never start if the endpoint cannot be opened or the job was
// killed first, and the endpoint is gone after close(). Real processes, each with a deadline.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { RankOutcome } from '../../src/model/types.js';
import { KvsService } from '../../src/pmi/kvs-service.js';
import { HostProxy, type HostProxyOptions, type PmiState } from '../../src/proxy/host-proxy.js';
import type { RankLaunch } from '../../src/proxy/rank-process.js';
import { withPmiPort } from '../../src/run/rank-env.js';

vi.setConfig({ testTimeout: 20_000 });

const KVS = 'kvs_hp_0';
const proxies: HostProxy[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const p of proxies.splice(0)) {
    p.killAll();
    p.destroyStreams();
    await p.close();
  }
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

interface Seen {
  out: Map<number, string>;
  exited: Map<number, RankOutcome>;
  settled: Map<number, PmiState>;
  notices: string[];
  errors: string[];
  done: Promise<void>;
}

function launch(rank: number, argv: string[], stdin = false): RankLaunch {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', PMI_RANK: String(rank), PMI_SIZE: '2', PMI_FD: '3' };
  return { rank, file: argv[0] as string, args: argv.slice(1), cwd: process.cwd(), env, stdin };
}

function makeProxy(launches: RankLaunch[], o: Partial<HostProxyOptions> = {}): { proxy: HostProxy; seen: Seen } {
  const kvs = new KvsService();
  kvs.addGroup(KVS, 1);
  let resolve!: () => void;
  const seen: Seen = { out: new Map(), exited: new Map(), settled: new Map(), notices: [], errors: [], done: new Promise<void>((r) => (resolve = r)) };
  const deadline = setTimeout(() => proxy.killAll(), 15_000);
  const proxy = new HostProxy({
    host: 'localhost',
    group: { kvsname: KVS, size: launches.length, processMapping: `(vector,(0,1,${launches.length}))`, universeSize: launches.length, localCount: launches.length, spawned: false },
    appnum: () => 0,
    launches,
    upstream: kvs.localUpstream(0, () => Promise.resolve({ ok: false, error: 'no spawn' })),
    events: {
      output: (rank, _s, d) => {
        seen.out.set(rank, (seen.out.get(rank) ?? '') + d.toString());
        return true;
      },
      outputEnd: () => undefined,
      started: () => undefined,
      exited: (rank, outcome) => seen.exited.set(rank, outcome),
      settled: (rank, _o, pmi) => {
        seen.settled.set(rank, pmi);
        if (seen.settled.size === launches.length) {
          clearTimeout(deadline);
          resolve();
        }
      },
      aborted: () => undefined,
      pmiError: (_r, m) => seen.errors.push(m),
      notice: (l) => seen.notices.push(l),
    },
    ...o,
  });
  proxies.push(proxy);
  return { proxy, seen };
}

describe('rank environment for PMI_PORT', () => {
  it('swaps PMI_FD for PMI_PORT and PMI_ID and keeps rank and size', () => {
    const env = { PATH: '/bin', PMI_FD: '3', PMI_RANK: '5', PMI_SIZE: '8', MPI_LOCALRANKID: '1' };
    expect(withPmiPort(env, '127.0.0.1:4000', 5)).toEqual({ PATH: '/bin', PMI_RANK: '5', PMI_SIZE: '8', MPI_LOCALRANKID: '1', PMI_PORT: '127.0.0.1:4000', PMI_ID: '5' });
    expect(env.PMI_FD).toBe('3');
  });
});

describe('HostProxy over PMI_PORT', () => {
  it.each(['tcp', 'unix'] as const)('%s: ranks get PMI_PORT and PMI_ID, not PMI_FD', async (transport) => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'tsmpi-hptest-'));
    dirs.push(base);
    const show = ['/bin/sh', '-c', 'echo "$PMI_PORT|$PMI_ID|$PMI_RANK|$PMI_SIZE|${PMI_FD-none}"'];
    const { proxy, seen } = makeProxy([launch(0, show), launch(1, show)], { pmiTransport: transport, pmiSocketBase: base });
    proxy.start();
    await seen.done;
    const port = proxy.pmiPort as string;
    expect(port).toMatch(transport === 'tcp' ? /^127\.0\.0\.1:\d+$/ : new RegExp(`^unix://${base}/tsmpi-pmi-\\w+/pmi\\.sock$`));
    expect(seen.out.get(0)).toBe(`${port}|0|0|2|none\n`);
    expect(seen.out.get(1)).toBe(`${port}|1|1|2|none\n`);
    expect([...seen.settled.values()]).toEqual(['none', 'none']);
    await proxy.close();
    expect(fs.readdirSync(base)).toEqual([]);
  });

  it('passes stdin written before the ranks started', async () => {
    const { proxy, seen } = makeProxy([launch(0, ['/bin/cat'], true)], { pmiTransport: 'tcp' });
    proxy.start();
    const w = proxy.stdinOf(0);
    expect(w).toBeDefined();
    w?.end('early bytes\n');
    await seen.done;
    expect(seen.out.get(0)).toBe('early bytes\n');
    expect(seen.exited.get(0)).toEqual({ kind: 'exited', code: 0 });
  });

  it('starts no rank when the endpoint cannot be opened', async () => {
    const { proxy, seen } = makeProxy([launch(0, ['/bin/true']), launch(1, ['/bin/true'])], { pmiTransport: 'unix', pmiSocketBase: '/nonexistent/base' });
    proxy.start();
    await seen.done;
    for (const r of [0, 1]) {
      expect(seen.exited.get(r)).toMatchObject({ kind: 'not-started', reason: expect.stringMatching(/cannot open the PMI endpoint/) });
      expect(seen.settled.get(r)).toBe('none');
    }
  });

  it('starts no rank when the job was killed before the endpoint listened', async () => {
    const { proxy, seen } = makeProxy([launch(0, ['/bin/sleep', '30'])], { pmiTransport: 'tcp' });
    proxy.start();
    proxy.killAll();
    await seen.done;
    expect(seen.exited.get(0)).toMatchObject({ kind: 'not-started' });
    expect(proxy.pidOf(0)).toBeUndefined();
  });

  it('replays a signal that arrived before the ranks started', async () => {
    const { proxy, seen } = makeProxy([launch(0, ['/bin/sleep', '30'])], { pmiTransport: 'tcp' });
    proxy.start();
    proxy.signal('SIGTERM');
    await seen.done;
    expect(seen.exited.get(0)).toEqual({ kind: 'signaled', signal: 'SIGTERM' });
  });
});

describe('PMI_FD ranks and the native helper', () => {
  const PMI_CHECK = [process.execPath, path.resolve('bin/tsmpiexec.js'), 'pmi-check'];

  it.each([
    ['a helper that cannot be started (then Node starts them)', { batchHelper: '/nonexistent/tsmpiexec-helper' }],
    ['no helper at all', { batchHelper: false as const }],
    ['the helper make build made, when there is one', {}],
  ])('%s: every rank runs and completes PMI', async (_name, o) => {
    const launches = [launch(0, PMI_CHECK, true), launch(1, PMI_CHECK), launch(2, PMI_CHECK)].map((l) => ({
      ...l,
      env: { ...l.env, PMI_SIZE: '3' },
    }));
    const { proxy, seen } = makeProxy(launches, o);
    proxy.start();
    await seen.done;
    for (const r of [0, 1, 2]) {
      expect(seen.exited.get(r), seen.out.get(r)).toEqual({ kind: 'exited', code: 0 });
      expect(seen.settled.get(r)).toBe('finalized');
    }
  });
});

import { runsHere } from '../../src/isolate/native.js';

describe('a native helper built for another machine', () => {
  const elf = (machine: number, bigEndian = false): Buffer => {
    const b = Buffer.alloc(20);
    b.writeUInt32BE(0x7f454c46, 0);
    b[5] = bigEndian ? 2 : 1;
    if (bigEndian) b.writeUInt16BE(machine, 18);
    else b.writeUInt16LE(machine, 18);
    return b;
  };
  it('is used only when its ELF machine is this one', () => {
    expect(runsHere(elf(62), 'x64')).toBe(true);
    expect(runsHere(elf(183), 'x64')).toBe(false);
    expect(runsHere(elf(183), 'arm64')).toBe(true);
    expect(runsHere(elf(22, true), 's390x')).toBe(true);
    expect(runsHere(Buffer.from('#!/bin/sh\necho hi\n....'), 'x64')).toBe(false);
    expect(runsHere(Buffer.alloc(4), 'x64')).toBe(false);
  });
});
