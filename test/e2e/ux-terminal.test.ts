// The terminal user experience, end to end with bin/tsmpiexec: colour only on a TTY or with FORCE_COLOR
// (NO_COLOR wins), never an escape code in a pipe; the start-up spinner only on a TTY stderr (a real
// pseudo-terminal from util-linux `script`) and cleared before rank output; chalk and ora never loaded on
// the pipe path; --timing phases. Several "hosts" come from a stand-in for ssh that runs the proxy here
// after a pause, so proxies take long enough to start for the spinner to be due.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, FIX, leftovers } from '../helpers/run.js';

const ESC = 0x1b;
const SGR = /\x1b\[[0-9;]*m/g;
const BRAILLE = /[\u2800-\u28ff]/; // ora's dots spinner
let dir: string;
let fakeSsh: string;
const live = new Set<ChildProcess>();
const markers: string[] = [];

interface Res {
  code: number | null;
  out: Buffer;
  err: Buffer;
}

/** Runs argv (tsmpiexec unless `raw`) with colour variables removed from the environment, then `env` added. */
function run(argv: string[], env: Record<string, string> = {}, raw = false): Promise<Res> {
  const marker = randomUUID();
  markers.push(marker);
  const base: Record<string, string | undefined> = { ...process.env };
  for (const k of ['NO_COLOR', 'FORCE_COLOR', 'CI', 'TERM', 'NODE_OPTIONS']) delete base[k];
  const full = raw ? argv : [process.execPath, BIN, ...argv];
  return new Promise((resolve, reject) => {
    const child = spawn(full[0] as string, full.slice(1), { env: { ...base, TERM: 'xterm', ...env, TSMPI_TEST_RUN: marker }, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${full.join(' ')} did not finish in 30 s; stderr: ${Buffer.concat(err).toString()}`));
    }, 30_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      live.delete(child);
      resolve({ code, out: Buffer.concat(out), err: Buffer.concat(err) });
    });
  });
}

const sq = (w: string): string => `'${w.replace(/'/g, `'\\''`)}'`;

/** tsmpiexec on a pseudo-terminal (stdin, stdout and stderr all on it): everything arrives on `out`. */
function onPty(argv: string[], env: Record<string, string> = {}): Promise<Res> {
  const cmd = [process.execPath, BIN, ...argv].map(sq).join(' ');
  return run(['script', '-qfec', cmd, '/dev/null'], env, true);
}

const multiHost = (prog: string[]): string[] => ['-launcher-exec', fakeSsh, '-hosts', 'a,b,c', '-l', '-n', '3', ...prog];

beforeAll(() => {
  if (!fs.existsSync('dist/bundle/main.cjs')) throw new Error('dist/bundle/main.cjs is missing: run `make build` first (make test does)');
  execFileSync('script', ['--version']); // util-linux (system-deps)
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsmpi-ux-'));
  // "ssh HOST CMD": wait a second (a slow login), then run CMD here
  fakeSsh = path.join(dir, 'slow-ssh');
  fs.writeFileSync(fakeSsh, '#!/bin/sh\nshift\nsleep 1\nexec sh -c "$*"\n', { mode: 0o755 });
});

afterAll(() => {
  if (dir && process.env.TSMPIEXEC_KEEP_TMP !== '1') fs.rmSync(dir, { recursive: true, force: true });
});

afterEach(async () => {
  for (const c of live) c.kill('SIGKILL');
  live.clear();
  const ms = markers.splice(0);
  for (const m of ms) expect(await leftovers(m), 'processes of the job left behind').toEqual([]);
});

describe('colour', () => {
  const failing = ['-l', '-n', '2', 'sh', '-c', 'echo out; echo err >&2; exit 3'];

  it('a pipe gets no escape code at all: labels, rank stderr, notices and the failure summary', async () => {
    const r = await run(failing);
    expect(r.code).toBe(3);
    expect(r.out.toString()).toMatch(/^\[[01]\] out$/m);
    // both may have exited by the time the first failure is judged: then nobody is left to terminate
    expect(r.err.toString()).toMatch(/^tsmpiexec: rank [01] on \S+ exited with code 3(: terminating the other 1 rank)?$/m);
    // the summary names the other rank (exited as well, or killed by the SIGTERM), not the one already named
    expect(r.err.toString()).toMatch(/^tsmpiexec: rank [01] on \S+: (exited with code 3|killed by SIGTERM \(signal 15\))$/m);
    expect(r.out.includes(ESC)).toBe(false);
    expect(r.err.includes(ESC)).toBe(false);
  });

  it('FORCE_COLOR=1 colours a pipe: rank labels, and tsmpiexec: lines in red', async () => {
    const r = await run(failing, { FORCE_COLOR: '1' });
    expect(r.code).toBe(3);
    const out = r.out.toString();
    expect(out).toMatch(/^\x1b\[3\dm\[0\]\x1b\[39m out$/m);
    // the first rank to exit 3 ends the job: the other may be terminated before its echo on a loaded machine
    const lines = out.replace(SGR, '').split('\n').filter((l) => l !== '');
    expect(lines.length).toBeGreaterThanOrEqual(1);
    for (const l of lines) expect(l).toMatch(/^\[[01]\] out$/);
    const err = r.err.toString();
    // the end summary (red) names the other rank: exited as well, or ended by the SIGTERM
    expect(err).toMatch(/\x1b\[1mtsmpiexec:\x1b\[22m\x1b\[31m rank [01] on \S+: (exited with code 3|killed by SIGTERM)/);
    expect(err).toMatch(/^\x1b\[3\dm\[[01]\]\x1b\[39m err$/m);
  });

  it('NO_COLOR wins over FORCE_COLOR, whatever its value (even empty)', async () => {
    for (const v of ['1', '']) {
      const r = await run(failing, { FORCE_COLOR: '1', NO_COLOR: v });
      expect(r.code).toBe(3);
      expect(r.out.includes(ESC), `NO_COLOR='${v}'`).toBe(false);
      expect(r.err.includes(ESC), `NO_COLOR='${v}'`).toBe(false);
    }
  });

  it('a TTY is coloured without asking, and NO_COLOR turns it off there too', async () => {
    const tty = await onPty(['-l', '-n', '2', 'sh', '-c', 'echo out']);
    expect(tty.code).toBe(0);
    expect(tty.out.toString()).toMatch(/\x1b\[3\dm\[0\]\x1b\[39m out/);
    const plain = await onPty(['-l', '-n', '2', 'sh', '-c', 'echo out'], { NO_COLOR: '1' });
    expect(plain.code).toBe(0);
    expect(plain.out.toString()).toMatch(/^\[0\] out\r$/m);
    expect(plain.out.includes(ESC)).toBe(false);
  });

  it('a usage error is highlighted only when colour is on; its hint is not red', async () => {
    const plain = await run(['-n', 'x', './a']);
    expect(plain.code).toBe(2);
    expect(plain.err.toString()).toMatch(/^tsmpiexec: .*\nhint: /);
    expect(plain.err.includes(ESC)).toBe(false);
    const col = await run(['-n', 'x', './a'], { FORCE_COLOR: '1' });
    expect(col.code).toBe(2);
    const [head, hint] = col.err.toString().split('\n');
    expect(head).toMatch(/^\x1b\[1mtsmpiexec:\x1b\[22m\x1b\[31m/);
    expect(hint).toMatch(/^\x1b\[2mhint: /);
  });

  it('labels written to -outfile-pattern files are never coloured', async () => {
    const pattern = path.join(dir, 'out.%r');
    const r = await run(['-l', '-outfile-pattern', pattern, '-n', '2', 'sh', '-c', 'echo out; echo err >&2'], { FORCE_COLOR: '1' });
    expect(r.code).toBe(0);
    for (const rank of [0, 1]) expect(fs.readFileSync(path.join(dir, `out.${rank}`), 'utf8')).toBe(`[${rank}] out\n`);
    expect(r.err.toString()).toMatch(/\x1b\[3\dm\[0\]\x1b\[39m err/);
  });

  it('--dry-run: a bold header only when coloured', async () => {
    const plain = await run(['--dry-run', '-hosts', 'a:2,b', '-n', '3', './app']);
    expect(plain.out.toString()).toMatch(/^HOST\s+NRANKS\s+RANKS\n/);
    expect(plain.out.includes(ESC)).toBe(false);
    const col = await run(['--dry-run', '-hosts', 'a:2,b', '-n', '3', './app'], { FORCE_COLOR: '1' });
    expect(col.out.toString()).toMatch(/^\x1b\[1mHOST\s+NRANKS\s+RANKS\x1b\[22m\n/);
  });
});

describe('chalk and ora are loaded only when used', () => {
  /** The modules a run loaded (an ESM load hook appends each URL to a file). */
  async function loaded(argv: string[], env: Record<string, string>): Promise<string[]> {
    const trace = path.join(dir, `trace-${randomUUID()}`);
    fs.writeFileSync(path.join(dir, 'hooks.mjs'), "import fs from 'node:fs';\nexport async function load(url, ctx, next) {\n  fs.appendFileSync(process.env.UX_TRACE_FILE, url + '\\n');\n  return next(url, ctx);\n}\n");
    fs.writeFileSync(path.join(dir, 'register.mjs'), "import { register } from 'node:module';\nregister('./hooks.mjs', import.meta.url);\n");
    const r = await run(argv, { ...env, UX_TRACE_FILE: trace, NODE_OPTIONS: `--import ${path.join(dir, 'register.mjs')}` });
    expect(r.code, r.err.toString()).toBe(0);
    return fs.readFileSync(trace, 'utf8').split('\n').filter(Boolean);
  }
  const has = (urls: string[], pkg: string): boolean => urls.some((u) => u.includes(`/node_modules/${pkg}/`));

  it('a run into pipes loads neither, even on several hosts', async () => {
    const urls = await loaded(multiHost(['true']), {});
    expect(urls.some((u) => u.includes('/bin/tsmpiexec.js'))).toBe(true); // the hook saw our own entry point
    expect(has(urls, 'chalk')).toBe(false);
    expect(has(urls, 'ora')).toBe(false);
  });

  it('FORCE_COLOR loads chalk, still not ora (stderr is no TTY)', async () => {
    const urls = await loaded(multiHost(['true']), { FORCE_COLOR: '1' });
    expect(has(urls, 'chalk')).toBe(true);
    expect(has(urls, 'ora')).toBe(false);
  });
});

describe('the start-up spinner', () => {
  it('never appears when stderr is a pipe', async () => {
    const r = await run(multiHost(['sh', '-c', 'echo hi']));
    expect(r.code).toBe(0);
    expect(r.out.toString().split('\n').sort()).toEqual(['', '[0] hi', '[1] hi', '[2] hi']);
    const err = r.err.toString();
    expect(err).not.toContain('starting proxies');
    expect(err).not.toMatch(BRAILLE);
    expect(r.err.includes(ESC)).toBe(false);
  });

  it('on a TTY: shown while proxies start, cleared before the first rank output, never drawn after it', async () => {
    const r = await onPty(multiHost(['sh', '-c', 'echo hi']));
    expect(r.code).toBe(0);
    const s = r.out.toString();
    expect(s).toMatch(/starting proxies 0\/3/);
    expect(s).toMatch(BRAILLE);
    const firstOutput = s.search(/\[\d\]/);
    const lastSpinner = s.lastIndexOf('starting proxies');
    expect(firstOutput).toBeGreaterThan(lastSpinner);
    // ora's clear: to column 1, erase to the end of the line
    expect(s.slice(lastSpinner, firstOutput)).toContain('\x1b[1G\x1b[0K');
    expect(s.slice(firstOutput)).not.toMatch(BRAILLE);
    expect(s.replace(SGR, '').match(/\[\d\] hi/g)?.sort()).toEqual(['[0] hi', '[1] hi', '[2] hi']);
  });

  it('on a TTY with ranks that print nothing: cleared by the end, and uncoloured under NO_COLOR', async () => {
    const r = await onPty(multiHost(['true']), { NO_COLOR: '1' });
    expect(r.code).toBe(0);
    const s = r.out.toString();
    const last = s.lastIndexOf('starting proxies');
    expect(last).toBeGreaterThanOrEqual(0);
    expect(s.slice(last)).toContain('\x1b[1G\x1b[0K');
    expect(s).not.toMatch(SGR); // cursor movement only, no colour
  });
});

describe('--timing', () => {
  const phaseLine = (name: string): RegExp => new RegExp(`^  ${name}\\s+[0-9.]+ ms  \\S`, 'm');

  it('prints every launch phase of an MPI job, the PMI barrier included', async () => {
    const hello = path.join(FIX, 'hello');
    if (!fs.existsSync(hello)) throw new Error(`MPI fixtures are missing in ${FIX}: is mpicc.mpich installed? (make system-deps)`);
    const r = await run(['--timing', '-n', '2', hello]);
    expect(r.code).toBe(0);
    const err = r.err.toString();
    expect(err).toMatch(/^tsmpiexec: timing \(wall clock\)$/m);
    for (const p of ['start-up', 'parse', 'plan', 'ranks started', 'PMI init barrier', 'run', 'teardown', 'total']) expect(err).toMatch(phaseLine(p));
    expect(r.out.toString()).toContain('hello from rank 1 of 2');
  });

  it('says so when there was no PMI barrier, and --dry-run stops after plan', async () => {
    const r = await run(['--timing', '-n', '2', 'true']);
    expect(r.code).toBe(0);
    expect(r.err.toString()).toMatch(/^  PMI init barrier\s+-\s+no PMI barrier/m);
    expect(r.err.toString()).toMatch(phaseLine('teardown'));
    const d = await run(['--timing', '--dry-run', '-n', '2', 'true']);
    expect(d.err.toString()).toMatch(phaseLine('plan'));
    expect(d.err.toString()).not.toContain('ranks started');
  });
});
