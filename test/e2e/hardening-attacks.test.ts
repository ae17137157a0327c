// Attacks on a running job, through bin/tsmpiexec: another user (nobody, via setpriv) against a job owned by root
// (its private /tmp, its environment, its processes and cgroups, secrets in command lines and in --verbose), and
// forged or garbled messages on the control channel, from either end: fed by hand to `tsmpiexec proxy`, from a
// fake proxy the controller launches, and injected mid-job by a man in the middle. The PMI endpoint attacks
// (nobody on the TCP port, EACCES on the UNIX socket, garbage and over-long lines) are in pmi-transports.test.ts.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, killLive, runTsmpiexec, type RunOptions, type RunResult } from '../helpers/run.js';
import { allJobCgroups, JobLeaks } from '../fixtures/hardening/leaks.js';
import { PROTOCOL_VERSION } from '../../src/control/messages.js';

const isRoot = process.getuid?.() === 0;
const FAKE = path.resolve('test/fixtures/hardening/fake-proxy.cjs');
const MITM = path.resolve('test/fixtures/hardening/mitm-proxy.cjs');
const NODE = process.execPath;
const STACK = /\n\s+at /;
const jobs = new JobLeaks();
let work: string;

async function run(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await runTsmpiexec(args, { timeoutMs: 45_000, ...opts });
  jobs.note(r);
  return r;
}

/** A shell script run as nobody (uid and gid 65534, no supplementary groups), with a deadline. */
function asNobody(script: string, args: string[] = [], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'sh', '-c', script, 'attacker', ...args], { timeout: 20_000, cwd: '/', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env } }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

beforeAll(() => {
  if (!fs.existsSync('dist/main.js')) throw new Error('dist/main.js is missing: run `make build` first (make test does)');
  fs.mkdirSync('build', { recursive: true });
  // Not under /tmp (the ranks' /tmp is private); readable by nobody only where a test says so.
  work = fs.mkdtempSync(path.resolve('build/hardening-attacks-'));
});

afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

afterEach(async () => {
  killLive();
  const left = await jobs.sweep();
  expect(left.processes, 'processes left behind').toEqual([]);
  expect(left.residue, 'cgroups, mounts or temp dirs left behind').toEqual([]);
});

describe.runIf(isRoot)('another user (nobody) against a job owned by root', () => {
  it('cannot read its private /tmp, its environment or its host /tmp, signal its ranks, or touch its cgroups; finds no secret in any command line or in --verbose', async () => {
    const secret = `tsmpi-secret-${randomUUID()}`;
    const tag = `private-${randomUUID()}`;
    const hold = path.join(work, 'release');
    const script = [
      `echo "$TSMPI_HARDENING_SECRET" > /tmp/${tag}`,
      `echo $$ > ${work}/pid.$PMI_RANK`,
      'echo ready',
      `i=0; while [ ! -e ${hold} ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done`,
    ].join('; ');
    let attack: Promise<{ code: number; stdout: string; stderr: string }> | undefined;
    let seen = '';
    let rootView = { environHasSecret: false, cmdlines: [] as string[], cgroups: [] as string[], hostTmp: [] as string[] };
    const job = run(['--verbose', '-n', '2', 'sh', '-c', script], {
      env: { TSMPI_HARDENING_SECRET: secret },
      onStdout: (chunk, child) => {
        seen += chunk.toString();
        if (attack || (seen.match(/ready/g) ?? []).length < 2) return;
        const rankPids = [0, 1].map((r) => fs.readFileSync(path.join(work, `pid.${r}`), 'utf8').trim());
        const tagOf = `kvs_${child.pid}_`;
        rootView = {
          environHasSecret: fs.readFileSync(`/proc/${rankPids[0]}/environ`).includes(secret),
          cmdlines: [String(child.pid), ...rankPids].map((p) => fs.readFileSync(`/proc/${p}/cmdline`, 'latin1')),
          cgroups: allJobCgroups().filter((c) => c.includes(tagOf)),
          hostTmp: fs.readdirSync('/tmp').filter((e) => e.includes(tagOf)).map((e) => path.join('/tmp', e)),
        };
        const attacker = [
          'for p in "$1" "$2"; do',
          '  ls "/proc/$p/root/tmp" >/dev/null 2>&1 && echo "LEAK: listed /proc/$p/root/tmp"',
          `  cat "/proc/$p/root/tmp/${tag}" 2>/dev/null && echo "LEAK: read the private file via /proc/$p/root"`,
          '  cat "/proc/$p/environ" >/dev/null 2>&1 && echo "LEAK: read /proc/$p/environ"',
          '  kill -0 "$p" 2>/dev/null && echo "LEAK: may signal $p"',
          'done',
          `[ -e /tmp/${tag} ] && echo "LEAK: the private file is in the host /tmp"`,
          'shift 2',
          'for e in "$@"; do',
          '  case "$e" in',
          '    /sys/*) { echo 1 > "$e/cgroup.kill"; } 2>/dev/null && echo "LEAK: wrote $e/cgroup.kill"',
          '            { echo $$ > "$e/cgroup.procs"; } 2>/dev/null && echo "LEAK: joined $e"',
          '            { echo 1 > "$e/pids.max"; } 2>/dev/null && echo "LEAK: set $e/pids.max";;',
          '    *) ls "$e" >/dev/null 2>&1 && echo "LEAK: listed $e";;',
          '  esac',
          'done',
          // the needle comes in the environment: in the script it would be in this shell's own command line
          `printf '%s\\n' "$NEEDLE" | grep -l -a -F -f - /proc/[0-9]*/cmdline 2>/dev/null | sed 's/^/LEAK: secret in /'`,
          'echo attack-done',
        ].join('\n');
        attack = asNobody(attacker, [...rankPids, ...rootView.cgroups, ...rootView.hostTmp], { NEEDLE: secret }).finally(() => fs.writeFileSync(hold, ''));
      },
    });
    const r = await job;
    expect(attack, 'the ranks never became ready').toBeDefined();
    const a = await (attack as NonNullable<typeof attack>);
    expect(a.stdout).toContain('attack-done');
    expect(a.stdout.split('\n').filter((l) => l.startsWith('LEAK')), a.stdout).toEqual([]);
    // the attack had something to find: the secret is in the rank's environment, the job has cgroups
    expect(rootView.environHasSecret).toBe(true);
    expect(rootView.cgroups.length).toBeGreaterThan(0);
    for (const c of rootView.cmdlines) expect(c).not.toContain(secret);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^tsmpiexec: .*launcher fork/m); // --verbose did speak
    expect(r.stderr + r.stdout).not.toContain(secret);
  });
});

/** Starts `tsmpiexec proxy` by hand (as ssh would) and feeds it `input`; resolves when it exits (deadline 20 s). */
function feedProxy(input: Buffer[], marker: string): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: Buffer; stderr: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(NODE, [BIN, 'proxy'], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, TSMPI_TEST_RUN: marker } });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.stdin.on('error', () => undefined);
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the proxy did not exit within 20 s; stderr: ${err}`));
    }, 20_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out), stderr: err, ms: Date.now() - t0 });
    });
    // keep the channel open after the input: the proxy must act on the bytes, not on EOF
    for (const b of input) child.stdin.write(b);
  });
}

const jsonFrame = (value: unknown): Buffer => {
  const body = Buffer.from(JSON.stringify(value));
  const h = Buffer.alloc(5);
  h.writeUInt32BE(body.length + 1, 0);
  h.writeUInt8(1, 4);
  return Buffer.concat([h, body]);
};

describe('a forged or garbled control channel, fed to `tsmpiexec proxy` by hand', () => {
  const oneLine = (stderr: string): void => {
    expect(stderr).not.toMatch(STACK);
    expect(stderr.trim().split('\n'), stderr).toHaveLength(1);
    expect(stderr).toMatch(/^tsmpiexec proxy on \S+: bad control channel data \(.+\); killing my ranks\n$/);
  };
  const cases: Array<[string, Buffer[], RegExp]> = [
    ['text instead of frames', [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')], /bad frame length \d+/],
    ['a forged 4 GiB frame length (refused at once, nothing buffered for it)', [Buffer.from([0xff, 0xff, 0xff, 0xff, 1])], /bad frame length 4294967295/],
    ['a zero frame length', [Buffer.from([0, 0, 0, 0, 1, 2, 3])], /bad frame length 0/],
    ['an unknown frame kind', [Buffer.from([0, 0, 0, 2, 9, 0])], /unknown frame kind 9/],
    ['a JSON frame that is not JSON', [Buffer.from([0, 0, 0, 3, 1, 0x7b, 0x7b])], /bad JSON/],
  ];
  it.each(cases)('%s: exits 1 with one line', async (_t, input, why) => {
    const marker = randomUUID();
    jobs.markers.push(marker);
    const r = await feedProxy(input, marker);
    expect(r.code).toBe(1);
    oneLine(r.stderr);
    expect(r.stderr).toMatch(why);
    // it said hello (the current protocol version) and nothing else
    expect(r.stdout.subarray(5).toString()).toMatch(new RegExp(`^\\{"t":"hello","version":${PROTOCOL_VERSION},`));
    expect(r.stdout.readUInt32BE(0)).toBe(r.stdout.length - 4);
  });

  it('the channel closed at once (the controller is gone): exits 1, nothing left', async () => {
    const marker = randomUUID();
    jobs.markers.push(marker);
    const r = await new Promise<number | null>((resolve) => {
      const child = spawn(NODE, [BIN, 'proxy'], { stdio: ['pipe', 'ignore', 'pipe'], env: { ...process.env, TSMPI_TEST_RUN: marker } });
      const t = setTimeout(() => child.kill('SIGKILL'), 20_000);
      child.on('close', (code) => {
        clearTimeout(t);
        resolve(code);
      });
      child.stdin.end();
    });
    expect(r).toBe(1);
  });

  // A well-framed message that is not a valid ToProxy (null, or an assign without its fields) is refused with
  // one line, like a broken frame (it used to crash the proxy with a TypeError stack).
  it.each([
    ['null', [jsonFrame(null)]],
    ['an assign without its fields', [jsonFrame({ t: 'assign' })]],
  ] as Array<[string, Buffer[]]>)('a well-framed message of the wrong shape (%s): exits 1 with one line', async (_t, input) => {
    const marker = randomUUID();
    jobs.markers.push(marker);
    const r = await feedProxy(input, marker);
    expect(r.code).toBe(1);
    expect(r.stderr).not.toMatch(STACK);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});

describe('a broken or hostile proxy, as the controller sees it', () => {
  const viaFake = (mode: string, extra: string[] = []): Promise<RunResult> =>
    run(['--launch-timeout', '3', ...extra, '-launcher', 'ssh', '-launcher-exec', `${NODE} ${FAKE} ${mode}`, '-hosts', 'fakehost', '-n', '1', 'true']);
  const cases: Array<[string, string, RegExp]> = [
    ['a wrong protocol version', 'version', new RegExp(`^tsmpiexec: cannot start the proxy on fakehost: proxy speaks protocol 99, expected ${PROTOCOL_VERSION}`, 'm')],
    ['bytes that are no frame', 'garbage', /^tsmpiexec: lost the proxy on fakehost: garbled control channel \(bad frame length \d+\)/m],
    ['silence', 'silent', /^tsmpiexec: cannot start the proxy on fakehost: no answer from the proxy within 3 s/m],
    ['an event for a rank that is not its own', 'other-rank', /^tsmpiexec: lost the proxy on fakehost: it sent a malformed event for rank 99999/m],
    ['an exit without rank or outcome', 'no-outcome', /^tsmpiexec: lost the proxy on fakehost: it sent a malformed event/m],
  ];
  it.each(cases)('%s: status 125, one line naming the host', async (_t, mode, why) => {
    const r = await viaFake(mode);
    expect(r.code, r.stderr).toBe(125);
    expect(r.stderr).toMatch(why);
    expect(r.stderr).not.toMatch(STACK);
    for (const l of r.stderr.trim().split('\n')) expect(l).toMatch(/^tsmpiexec: /);
  });

  // A proxy sending the JSON message null is a lost proxy (it used to crash the controller).
  it('the JSON message null: status 125, one line', async () => {
    const r = await viaFake('null');
    expect(r.code).toBe(125);
    expect(r.stderr).not.toMatch(STACK);
  });

  it.each([['garbage'], ['forged']])('%s injected into a real proxy mid-job: the ranks die, the job ends within seconds', async (mode) => {
    const r = await run(['-launcher', 'ssh', '-launcher-exec', `${NODE} ${MITM} ${mode}`, '-hosts', 'fakehost', '-n', '2', 'sh', '-c', 'echo up; sleep 60']);
    // The proxy names the bad data, kills its ranks and reports nothing more: the controller hears the channel
    // end (125), never the exits of ranks the proxy killed itself (137, before) or whose start it tore down (126).
    expect(r.code, r.stderr).toBe(125);
    expect(r.stderr).toMatch(/bad control channel data/);
    expect(r.stderr).toMatch(/lost the proxy on fakehost/);
    expect(r.ms, 'the ranks sleep 60 s').toBeLessThan(30_000);
    expect(r.stderr).not.toMatch(STACK);
  });
});

describe('nothing of a secret in argv: the proxies of a job on several hosts', () => {
  it('the ssh command line carries no environment value (assignments travel on the channel)', async () => {
    const secret = `tsmpi-secret-${randomUUID()}`;
    const argvFile = path.join(work, 'launcher-argv');
    // a launcher that records its own argv, then runs the proxy like the MITM does
    const recorder = path.join(work, 'record-launcher.sh');
    fs.writeFileSync(recorder, `#!/bin/sh\nprintf '%s\\n' "$@" > '${argvFile}'\nshift\nexec sh -c "$1"\n`, { mode: 0o755 });
    const r = await run(['-launcher', 'ssh', '-launcher-exec', recorder, '-hosts', 'fakehost', '-n', '1', 'sh', '-c', 'test -n "$TSMPI_HARDENING_SECRET" && echo has-secret'], {
      env: { TSMPI_HARDENING_SECRET: secret },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('has-secret\n');
    const argv = fs.readFileSync(argvFile, 'utf8');
    expect(argv).toMatch(/tsmpiexec\.js'? proxy/);
    expect(argv).not.toContain(secret);
  });
});
