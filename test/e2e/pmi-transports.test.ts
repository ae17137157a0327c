// PMI transports end to end through bin/tsmpiexec, with real third-party clients: MPICH 4.0.2 over -pmi-port,
// Slurm's libpmi2 (PMI-2) over the default PMI_FD and over TCP, `tsmpiexec pmi-check` over fd, tcp and unix (and
// under mpiexec.hydra, so the checker is not only checked against our own server); and
// the hardened endpoints: a process running as nobody is refused on the TCP port and cannot even reach the UNIX
// socket, garbage and over-long lines from our own uid are dropped, and the job is unaffected by all of it.
// Jobs that must stay up while a test probes their endpoint hold rank 1 back (before it connects) until the test
// creates a file; the hold has its own deadline in the rank's script.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { socketBaseCandidates } from '../../src/pmi/endpoint.js';
import { BIN, FIX, runHydra, trackedJobs, type RunOptions, type RunResult } from '../helpers/run.js';

const fx = (name: string): string => path.join(FIX, name);
const isRoot = process.getuid?.() === 0;
const hasHydra = ['/usr/bin/mpiexec.hydra', '/usr/local/bin/mpiexec.hydra'].some((p) => fs.existsSync(p));
let work: string;
let holdSeq = 0;

beforeAll(() => {
  if (!fs.existsSync('dist/main.js')) throw new Error('dist/main.js is missing: run `make build` first (make test does)');
  for (const f of ['hello', 'ring', 'pmi2check', 'pmi-probe']) {
    if (!fs.existsSync(fx(f))) throw new Error(`${fx(f)} is missing: the global setup builds it (needs mpicc.mpich and libpmi2-0-dev: make system-deps)`);
  }
  // Not under /tmp: ranks may run in a private /tmp and must still see the hold files and the XDG dir.
  work = fs.mkdtempSync(path.resolve('build/pmi-e2e-'));
});

afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

afterEach(async () => {
  expect(await jobs.leftovers(), 'processes of the job left behind').toEqual([]);
});

const jobs = trackedJobs();
const run = jobs.run;

/** Runs a program as nobody (no supplementary groups), with a deadline. */
function asNobody(argv: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', ...argv], { timeout: 25_000 }, (err, stdout) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1) : 0;
      resolve({ code, stdout: String(stdout) });
    });
  });
}

function probe(argv: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile(fx('pmi-probe'), argv, { timeout: 25_000 }, (err, stdout) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1) : 0;
      resolve({ code, stdout: String(stdout) });
    });
  });
}

/**
 * A job whose listed ranks print `port=$PMI_PORT`, then wait (≤ 30 s) for the hold file before exec'ing argv.
 * Resolves the port as soon as a rank printed it.
 */
function heldJob(jobArgs: (holdScript: string[]) => string[], opts: RunOptions = {}): { port: Promise<string>; release: () => void; done: Promise<RunResult> } {
  const hold = path.join(work, `hold-${holdSeq++}`);
  const script = ['sh', '-c', `echo "port=$PMI_PORT"; i=0; while [ ! -e '${hold}' ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; exec "$@"`, 'held'];
  let resolvePort!: (p: string) => void;
  const port = new Promise<string>((r) => (resolvePort = r));
  let seen = '';
  const done = run(jobArgs(script), {
    ...opts,
    onStdout: (chunk) => {
      seen += chunk.toString();
      const m = /^port=(\S+)$/m.exec(seen);
      if (m) resolvePort(m[1] as string);
    },
  });
  void done.then((r) => resolvePort(`(job ended first: code ${r.code}; ${r.stderr})`));
  return { port, release: () => fs.writeFileSync(hold, ''), done };
}

/** Sends bytes to a TCP endpoint; resolves with what came back before the server hung up. */
function sendRaw(port: string, data: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const [host, p] = port.split(':') as [string, string];
    const s = net.connect(Number(p), host);
    let got = '';
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error('the server neither answered nor hung up within 20 s'));
    }, 20_000);
    s.on('connect', () => s.write(data, () => undefined));
    s.on('data', (d: Buffer) => (got += d.toString()));
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(t);
      resolve(got);
    });
  });
}

function hexPort(port: string): string {
  return Number(port.split(':')[1]).toString(16).toUpperCase().padStart(4, '0');
}

describe('MPICH 4.0.2 over PMI_PORT', () => {
  it('hello + allreduce with -pmi-port', async () => {
    const r = await run(['-pmi-port', '-n', '4', fx('hello')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (let i = 0; i < 4; i++) expect(r.stdout).toContain(`hello from rank ${i} of 4 on ${os.hostname()} (allreduce sum 6, expected 6)`);
  });

  it('1 MiB messages around a ring with --pmi-transport tcp', async () => {
    const r = await run(['--pmi-transport', 'tcp', '-n', '4', fx('ring'), '2']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('ring: 4 ranks, 2 laps of 1048576 bytes, 0 bad');
  });

  it('ranks get PMI_PORT on loopback and PMI_ID, and no PMI_FD', async () => {
    const r = await run(['-pmi-port', '-n', '2', 'sh', '-c', 'echo "$PMI_RANK|$PMI_SIZE|$PMI_ID|$PMI_PORT|${PMI_FD-none}"']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n').sort();
    expect(lines).toHaveLength(2);
    lines.forEach((l, i) => expect(l).toMatch(new RegExp(`^${i}\\|2\\|${i}\\|127\\.0\\.0\\.1:\\d+\\|none$`)));
  });
});

describe("Slurm's libpmi2 (PMI-2)", () => {
  it('init, job attr PMI_process_mapping, put/fence/get of every key, node attrs, finalize over the default PMI_FD', async () => {
    const r = await run(['-n', '4', fx('pmi2check')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (let i = 0; i < 4; i++) expect(r.stdout).toMatch(new RegExp(`^pmi2check: rank ${i} of 4 OK \\(jobid kvs_\\S+, appnum 0, mapping \\(vector,\\(0,1,4\\)\\)\\)$`, 'm'));
  });

  it('the same over PMI_PORT (fullinit by srcid=)', async () => {
    const r = await run(['--pmi-transport', 'tcp', '-n', '3', fx('pmi2check')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.match(/OK \(jobid/g)).toHaveLength(3);
  });
});

describe('tsmpiexec pmi-check', () => {
  it('-n 8 over the default PMI_FD: a line per rank and a summary', async () => {
    const r = await run(['-n', '8', process.execPath, BIN, 'pmi-check']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (let i = 0; i < 8; i++) expect(r.stdout).toMatch(new RegExp(`^pmi-check: rank ${i} of 8 on \\S+ \\(pid \\d+, PMI_FD\\): connect [\\d.]+ ms, init .* exchange 32 keys .* total [\\d.]+ ms$`, 'm'));
    expect(r.stdout).toMatch(/^pmi-check: OK: 8 ranks, 4 keys each, 32 per rank read back; min\/median\/max init /m);
  });

  it('over TCP, as JSON', async () => {
    const r = await run(['--pmi-transport', 'tcp', '-n', '4', process.execPath, BIN, 'pmi-check', '--json', '--keys', '7']);
    expect(r.code).toBe(0);
    const objs = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const ranks = objs.filter((o) => 'rank' in o);
    expect(ranks.map((o) => o.rank).sort()).toEqual([0, 1, 2, 3]);
    for (const o of ranks) expect(o).toMatchObject({ ok: true, size: 4, transport: 'tcp', keys: 7 });
    expect(objs.find((o) => 'summary' in o)).toMatchObject({ summary: { ok: true, ranks: 4, keys: 7 } });
  });

  it('over a UNIX socket in $XDG_RUNTIME_DIR, reachable from the ranks\' private /tmp', async () => {
    // outside /tmp even when the clone is under /tmp: a runtime directory under /tmp is (rightly) not used
    const xdg = fs.mkdtempSync(path.join(work.startsWith('/tmp/') ? '/var/tmp' : work, 'xdg-'));
    fs.chmodSync(xdg, 0o700);
    const r = await run(['--pmi-transport', 'unix', '-n', '2', 'sh', '-c', 'echo "port=$PMI_PORT"; exec "$@"', 'x', process.execPath, BIN, 'pmi-check'], { env: { XDG_RUNTIME_DIR: xdg } });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^port=unix://${xdg}/tsmpi-pmi-\\w+/pmi\\.sock$`, 'm'));
    expect(r.stdout).toMatch(/^pmi-check: rank 1 of 2 on \S+ \(pid \d+, PMI_PORT unix\)/m);
    expect(r.stdout).toMatch(/^pmi-check: OK: 2 ranks/m);
    expect(fs.readdirSync(xdg), 'socket directory left behind').toEqual([]);
    fs.rmSync(xdg, { recursive: true, force: true });
  });

  it('fails (non-zero, job aborted) when a rank never shows up for the barrier', async () => {
    const r = await run(['-n', '1', process.execPath, BIN, 'pmi-check', '--timeout', '2', ':', '-n', '1', 'true'], { timeoutMs: 60_000 });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/tsmpiexec pmi-check: rank 0 on \S+: FAILED in barrier: no PMI reply within 2000 ms/);
  });

  it.runIf(hasHydra)('agrees with MPICH\'s own launcher (mpiexec.hydra), over PMI_FD and -pmi-port', async () => {
    for (const extra of [[], ['-pmi-port']]) {
      const marker = `pmi-check-hydra-${process.pid}-${extra.length}`;
      jobs.track(marker);
      const r = await runHydra([...extra, '-n', '3', process.execPath, BIN, 'pmi-check'], marker);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^pmi-check: rank 2 of 3 on \\S+ \\(pid \\d+, ${extra.length ? 'PMI_PORT tcp' : 'PMI_FD'}\\)`, 'm'));
      expect(r.stdout).toMatch(/^pmi-check: OK: 3 ranks/m);
    }
  });

  it.runIf(hasHydra)('its PMI-1 spawn works against Hydra\'s server too (the wire form is MPICH\'s, not only ours)', async () => {
    const marker = `pmi-check-hydra-spawn-${process.pid}`;
    jobs.track(marker);
    const r = await runHydra(['-n', '2', process.execPath, BIN, 'pmi-check', '--spawn', '2'], marker);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^pmi-check: rank 0 of 2 .*; spawned 2 processes$/m);
    expect(r.stdout.split('\n').filter((l) => / of 2 on .*; spawned by \S+$/.test(l))).toHaveLength(2);
  });

  it('documents itself and refuses to run outside a job', async () => {
    const help = await run(['pmi-check', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: tsmpiexec pmi-check \[--keys N\] \[--spawn N\] \[--json\]/);
    const alone = await run(['pmi-check']);
    expect(alone.code).toBe(2);
    expect(alone.stderr).toMatch(/neither PMI_FD nor PMI_PORT is set/);
    const bad = await run(['pmi-check', '--keys', 'many']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--keys needs a count/);
  });
});

describe('hardened PMI endpoints', () => {
  it.runIf(isRoot)('TCP: nobody claiming an id is refused, garbage and a >64 KiB line are dropped, the job completes', async () => {
    const job = heldJob((hold) => ['--pmi-transport', 'tcp', '-n', '1', fx('pmi2check'), ':', '-n', '1', ...hold, fx('pmi2check')]);
    const port = await job.port;
    expect(port).toMatch(/^127\.0\.0\.1:\d+$/);
    // listening on loopback only
    const table = fs.readFileSync('/proc/net/tcp', 'utf8');
    expect(table).toMatch(new RegExp(`^\\s*\\d+: 0100007F:${hexPort(port)} 00000000:0000 0A `, 'm'));
    expect(table).not.toMatch(new RegExp(`^\\s*\\d+: 00000000:${hexPort(port)} `, 'm'));
    // nobody tries to become rank 1 (which has not connected yet)
    const [host, p] = port.split(':') as [string, string];
    const intruder = await asNobody([fx('pmi-probe'), 'tcp', host, p, 'cmd=initack pmiid=1']);
    expect(intruder.stdout.trim()).toBe('closed-without-reply');
    // our own uid, but not speaking PMI
    expect(await sendRaw(port, 'GET / HTTP/1.1\r\nHost: localhost\r\n\r\n')).toBe('');
    expect(await sendRaw(port, `cmd=put kvsname=x key=y value=${'z'.repeat(70 * 1024)}`)).toBe('');
    expect((await probe(['tcp', host, p, '\x01\x02binary'])).stdout.trim()).toBe('closed-without-reply');
    job.release();
    const r = await job.done;
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^pmi2check: rank 0 of 2 OK/m);
    expect(r.stdout).toMatch(/^pmi2check: rank 1 of 2 OK/m);
    expect(r.stderr).toMatch(new RegExp(`^tsmpiexec: refused a PMI connection from 127\\.0\\.0\\.1:\\d+ on ${port.replace(/\./g, '\\.')} \\(uid 65534\\): `, 'm'));
    expect(r.stderr).toMatch(/garbage/);
    expect(r.stderr).toMatch(/longer than 65536 bytes/);
    // the port is closed after the job
    expect(fs.readFileSync('/proc/net/tcp', 'utf8')).not.toMatch(new RegExp(`^\\s*\\d+: 0100007F:${hexPort(port)} 00000000:0000 0A `, 'm'));
  });

  it.runIf(isRoot)('UNIX: the socket directory is 0700, nobody gets EACCES, no abstract name, removed at the end', async () => {
    const expectedBase = socketBaseCandidates({ XDG_RUNTIME_DIR: '' })[0] as string;
    const job = heldJob((hold) => ['--pmi-transport', 'unix', '--isolate', 'off', '-n', '2', ...hold, process.execPath, BIN, 'pmi-check'], { env: { XDG_RUNTIME_DIR: '' } });
    const port = await job.port;
    expect(port).toMatch(/^unix:\/\/\//);
    const sock = port.slice('unix://'.length);
    const dir = path.dirname(sock);
    expect(path.dirname(dir)).toBe(expectedBase);
    const st = fs.lstatSync(dir);
    expect(st.isDirectory() && !st.isSymbolicLink()).toBe(true);
    expect(st.mode & 0o777).toBe(0o700);
    expect(st.uid).toBe(0);
    const sst = fs.lstatSync(sock);
    expect(sst.isSocket()).toBe(true);
    expect(sst.mode & 0o777).toBe(0o600);
    const unixTable = fs.readFileSync('/proc/net/unix', 'utf8');
    expect(unixTable).toContain(sock);
    expect(unixTable).not.toMatch(/@tsmpi/);
    const intruder = await asNobody([fx('pmi-probe'), 'unix', sock, 'cmd=initack pmiid=1']);
    expect(intruder.stdout.trim()).toBe('connect-failed EACCES');
    expect(intruder.code).toBe(2);
    job.release();
    const r = await job.done;
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^pmi-check: OK: 2 ranks/m);
    expect(fs.existsSync(dir), 'socket directory left behind').toBe(false);
  });
});
