// The namespace test bed (testbed.sh) does what the multi-host tests rely on: hosts with their own names
// and sshd, ssh by name between them, a stoppable sshd, and no trace in the root namespace or after down.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const SCRIPT = fileURLToPath(new URL('./testbed.sh', import.meta.url));
// A prefix of our own, so a bed someone else runs at the same time is never touched or counted.
const PREFIX = `tbt${process.pid}`;
const HOSTS = ['h1', 'h2', 'h3'];

let dir = '';
let sshConfig = '';
let rootBefore = '';
let rootAfterUp = '';
let upSeconds = 0;

/** Every child gets a deadline and SIGKILL when it passes it. */
function run(cmd: string, args: string[], timeoutMs = 30_000): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.error) throw r.error;
  return r;
}
function bed(args: string[], timeoutMs = 30_000): SpawnSyncReturns<string> {
  return run('bash', [SCRIPT, '--dir', dir, ...args], timeoutMs);
}
function bedOk(args: string[], timeoutMs = 30_000): string {
  const r = bed(args, timeoutMs);
  expect(r.status, `testbed.sh ${args.join(' ')} failed:\n${r.stdout}${r.stderr}`).toBe(0);
  return r.stdout;
}
/** ssh from the login host h0, through the bed's client config. */
function sshFromLogin(host: string, command: string, timeoutMs = 20_000): SpawnSyncReturns<string> {
  return bed(['exec', 'h0', '--', 'ssh', '-F', sshConfig, host, command], timeoutMs);
}
function rootNetState(): string {
  const show = (...a: string[]) => {
    const r = run('ip', ['-o', ...a], 10_000);
    expect(r.status).toBe(0);
    return r.stdout;
  };
  return [show('addr'), show('link'), show('route')].join('\n--\n');
}
function bedNamespaces(): string[] {
  const r = run('ip', ['netns', 'list'], 10_000);
  return r.stdout
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(`${PREFIX}-`));
}
/** Live (non-zombie) processes whose command line mentions the run dir: sshds and holders. */
function bedProcesses(): string[] {
  const found: string[] = [];
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      const state = /^State:\s+(\S)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
      if (state !== 'Z' && dir !== '' && cmdline.includes(dir)) found.push(`${pid} ${cmdline}`);
    } catch {
      /* the process exited while we looked */
    }
  }
  return found;
}
function bedMounts(): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.includes(`/${PREFIX}-`) || (dir !== '' && l.includes(dir)));
}
function expectNothingLeft(): void {
  expect(bedNamespaces()).toEqual([]);
  expect(bedProcesses()).toEqual([]);
  expect(bedMounts()).toEqual([]);
  expect(fs.existsSync(dir)).toBe(false);
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsmpi-testbed-test-'));
  sshConfig = path.join(dir, 'ssh_config');
  rootBefore = rootNetState();
  const t0 = performance.now();
  const out = bedOk(['up', String(HOSTS.length), '--prefix', PREFIX], 55_000);
  upSeconds = (performance.now() - t0) / 1000;
  expect(out).toContain(`TESTBED_DIR=${dir}`);
  rootAfterUp = rootNetState();
}, 60_000);

afterAll(() => {
  if (dir === '') return;
  // Idempotent: the last test already ran down; this one must succeed and leave nothing either.
  bedOk(['down'], 30_000);
  expectNothingLeft();
}, 60_000);

describe('testbed.sh', () => {
  it('comes up and writes a sourceable env file', () => {
    // (how long `up` takes is measured and reported in test/testbed/README.md, not asserted)
    expect(upSeconds).toBeGreaterThan(0);
    const env = fs.readFileSync(path.join(dir, 'env'), 'utf8');
    expect(env).toContain(`TESTBED_HOSTS='h1 h2 h3'`);
    expect(env).toContain(`TESTBED_SSH_CONFIG='${sshConfig}'`);
    const r = run('bash', ['-c', 'set -eu; . "$1"; echo "$TESTBED_PREFIX $TESTBED_ADDR_h2 $TESTBED_N"', 'env', path.join(dir, 'env')]);
    expect(r.stdout.trim()).toBe(`${PREFIX} 10.233.0.12 3`);
    expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
  });

  it('gives every host its own name, loopback and address', () => {
    for (const [i, host] of ['h0', ...HOSTS].entries()) {
      expect(bedOk(['exec', host, '--', 'hostname']).trim()).toBe(host);
      const addrs = bedOk(['exec', host, '--', 'ip', '-o', '-4', 'addr', 'show']);
      expect(addrs).toMatch(/\blo\s+inet 127\.0\.0\.1\/8/);
      expect(addrs).toContain(`inet 10.233.0.${10 + i}/24`);
      // the generated hosts file is what the host sees as /etc/hosts
      expect(bedOk(['exec', host, '--', 'getent', 'hosts', 'h3']).trim()).toMatch(/^10\.233\.0\.13\s+h3$/);
    }
  });

  it('reaches every host by name over ssh from the login host h0', () => {
    for (const host of HOSTS) {
      const r = sshFromLogin(host, 'hostname');
      expect(r.stderr).toBe('');
      expect(r.stdout.trim()).toBe(host);
    }
  });

  it('runs ssh sessions inside the remote host, from where ssh h2 -> h3 works', () => {
    const r = sshFromLogin('h2', `hostname; ip -o -4 addr show eth0; ssh -F ${sshConfig} h3 hostname`);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe('h2');
    expect(lines[1]).toContain('inet 10.233.0.12/24');
    expect(lines[2]).toBe('h3');
  });

  it('adds nothing to the root network namespace', () => {
    expect(rootAfterUp).toBe(rootBefore);
    expect(rootNetState()).toBe(rootBefore);
    expect(rootBefore).not.toContain('10.233.0.');
  });

  it('stop-sshd makes ssh fail fast with "Connection refused"; start-sshd brings it back', () => {
    bedOk(['stop-sshd', 'h2']);
    // "Connection refused" (not a timeout) is what makes it fail fast; speed itself is not asserted here
    const r = sshFromLogin('h2', 'hostname');
    expect(r.status).toBe(255);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^ssh: connect to host h2 port 22: Connection refused$/m);
    const st = bed(['status']);
    expect(st.status).toBe(1);
    expect(st.stdout).toMatch(/^h2\s+10\.233\.0\.12\s+\S+\s+stopped\s+refused$/m);
    expect(st.stdout).toMatch(/^h3\s+10\.233\.0\.13\s+\S+\s+running\s+answers$/m);

    bedOk(['start-sshd', 'h2']);
    expect(sshFromLogin('h2', 'hostname').stdout.trim()).toBe('h2');
    // status probes every sshd with a short timeout: on a loaded machine one probe may be late, so ask again
    let status = bed(['status']).status;
    for (let i = 0; i < 4 && status !== 0; i++) status = bed(['status']).status;
    expect(status).toBe(0);
  });

  it('vanish removes a host abruptly and leaves the others alone', () => {
    bedOk(['vanish', 'h3']);
    expect(bedNamespaces()).not.toContain(`${PREFIX}-h3`);
    expect(bedProcesses().filter((p) => /\/node\/h3[/ ]/.test(p))).toEqual([]);
    const r = bed(['exec', 'h0', '--', 'ssh', '-F', sshConfig, '-o', 'ConnectTimeout=1', 'h3', 'hostname'], 20_000);
    expect(r.status).toBe(255);
    expect(r.stderr).toMatch(/h3 port 22: (Connection timed out|No route to host)/);
    expect(bed(['exec', 'h3', '--', 'true']).status).not.toBe(0);
    expect(sshFromLogin('h1', 'hostname').stdout.trim()).toBe('h1');
  });

  it('down removes namespaces, processes, mounts and the run dir', () => {
    expect(bedProcesses().length).toBeGreaterThan(0); // the check below can see them
    bedOk(['down'], 30_000);
    expectNothingLeft();
  });
});
