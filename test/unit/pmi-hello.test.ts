// Runs the bundled demo rank examples/pmi-hello.mjs as 3 real Node processes, each on its own stdio[3]
// socketpair (PMI_FD=3), against a real PmiServer + KvsService: the PMI-1 path `make demo` depends on.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Duplex } from 'node:stream';
import os from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { KvsService } from '../../src/pmi/kvs-service.js';
import { PmiServer } from '../../src/pmi/server.js';

const HELLO = fileURLToPath(new URL('../../examples/pmi-hello.mjs', import.meta.url));
const DEADLINE_MS = 10_000;
const children: ChildProcess[] = [];

afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

interface Ran {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function runRank(server: PmiServer, rank: number, size: number, kvsname: string, env: Record<string, string> = {}): Promise<Ran> {
  const child = spawn(process.execPath, [HELLO], {
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '', PMI_FD: '3', PMI_RANK: String(rank), PMI_SIZE: String(size), ...env },
  });
  children.push(child);
  const sock = child.stdio[3] as Duplex;
  const connId = 1000 + rank;
  server.attach(connId, { send: (d) => sock.write(d), close: () => sock.destroy() }, { rank, kvsname, appnum: 0 });
  sock.on('data', (b: Buffer) => server.data(connId, b));
  sock.on('close', () => server.detach(connId));
  sock.on('error', () => server.detach(connId));
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`rank ${rank} did not finish within ${DEADLINE_MS} ms; stderr: ${stderr}`));
    }, DEADLINE_MS);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

function makeServer(size: number, kvsname: string) {
  const service = new KvsService();
  service.addGroup(kvsname, 1);
  const errors: string[] = [];
  const server = new PmiServer({
    upstream: service.localUpstream(0, () => Promise.resolve({ ok: false, error: 'no spawn in this test' })),
    events: { initialized: () => {}, finalized: () => {}, aborted: () => {}, protocolError: (_c, m) => errors.push(m) },
  });
  server.addGroup({ kvsname, size, processMapping: `(vector,(0,1,${size}))`, universeSize: size, localCount: size, spawned: false });
  return { server, service, errors };
}

describe('examples/pmi-hello.mjs', () => {
  it('runs as 3 real ranks over PMI_FD socketpairs and finalizes', async () => {
    const size = 3;
    const { server, service, errors } = makeServer(size, 'kvs_hello_0');
    const results = await Promise.all([0, 1, 2].map((r) => runRank(server, r, size, 'kvs_hello_0')));
    results.forEach((res, r) => {
      expect(res.stderr).toBe('');
      expect(res.code).toBe(0);
      expect(res.stdout).toBe(`rank ${r} of ${size} on ${os.hostname()}: saw ${size} peers\n`);
      expect(server.state(r, 'kvs_hello_0')).toBe('finalized');
    });
    expect(service.barriersCompleted('kvs_hello_0')).toBe(1);
    expect(errors).toEqual([]);
  }, 20_000);

  it('exits non-zero when a peer never says hello', async () => {
    // The server knows a group of 1, but the rank is told PMI_SIZE=2: after the barrier it looks for
    // hello-1, which nobody put, and must fail loudly instead of printing its line.
    const { server } = makeServer(1, 'kvs_hello_1');
    const res = await runRank(server, 0, 2, 'kvs_hello_1');
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/rank 1 never said hello/);
    expect(res.stdout).toBe('');
  }, 20_000);
});
