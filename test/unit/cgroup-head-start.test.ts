// bin/cgroup-head-start.js: the shim's no-op move into its own cgroup (a head start on the kernel's wait for the
// first migration). These cases use a fake cgroup tree of plain files; the real move, on real cgroups, is in
// test/integration/isolate-root.test.ts. What matters most: it never writes a cgroup.procs that does not list us.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

interface HeadStartModule {
  candidates(selfCgroup: string, root?: string): string[];
  startCgroupHeadStart(argv: string[], env: Record<string, string | undefined>, io?: { pid?: number; selfCgroup?: string; root?: string }): string | undefined;
}
const { candidates, startCgroupHeadStart } = createRequire(import.meta.url)('../../bin/cgroup-head-start.js') as HeadStartModule;

const HYBRID = '9:name=systemd:/\n8:pids:/user/7\n4:memory:/job/3\n1:cpu,cpuacct:/\n0::/\n';

let root: string;
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'tsmpi-headstart-'));
});
afterEach(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

function procsFile(rel: string, content: string): string {
  fs.mkdirSync(path.join(root, rel), { recursive: true });
  const f = path.join(root, rel, 'cgroup.procs');
  fs.writeFileSync(f, content);
  return f;
}

/** The async write lands in the thread pool: wait for it (or for nothing to happen). */
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 50));

describe('the shim cgroup head start', () => {
  it('derives one directory per controller hierarchy, skipping named ones, and both cgroup2 mount points', () => {
    expect(candidates(HYBRID, '/cg')).toEqual(['/cg/pids/user/7', '/cg/memory/job/3', '/cg/cpu', '/cg/cpuacct', '/cg/unified', '/cg']);
    expect(candidates('0::/user.slice/u.service\n', '/cg')).toEqual(['/cg/unified/user.slice/u.service', '/cg/user.slice/u.service']);
    expect(candidates('garbage\n\n', '/cg')).toEqual([]);
  });

  it('writes our pid into the first cgroup.procs that lists us, and names it', async () => {
    const notUs = procsFile('pids/user/7', '1\n2\n');
    const us = procsFile('memory/job/3', '5\n4242\n');
    const file = startCgroupHeadStart(['-n', '2', './app'], {}, { pid: 4242, selfCgroup: HYBRID, root });
    expect(file).toBe(us);
    await settle();
    expect(fs.readFileSync(us, 'utf8')).toBe('424242\n'); // "4242" written over the start of "5\n4242\n"
    expect(fs.readFileSync(notUs, 'utf8')).toBe('1\n2\n');
  });

  it('never writes a cgroup.procs that does not list us (a guessed path could be another cgroup)', async () => {
    const a = procsFile('pids/user/7', '42420\n'); // our pid as a prefix of another is not us
    const b = procsFile('unified', '1\n');
    expect(startCgroupHeadStart(['-n', '2', './app'], {}, { pid: 4242, selfCgroup: HYBRID, root })).toBeUndefined();
    await settle();
    expect(fs.readFileSync(a, 'utf8')).toBe('42420\n');
    expect(fs.readFileSync(b, 'utf8')).toBe('1\n');
  });

  it('does nothing for invocations that make no cgroup, or when switched off', async () => {
    const us = procsFile('pids/user/7', '4242\n');
    const io = { pid: 4242, selfCgroup: HYBRID, root };
    for (const argv of [[], ['--help'], ['-V'], ['pmi-check'], ['--isolate', 'off', '-n', '1', 'x'], ['--isolate=off', 'x']]) {
      expect(startCgroupHeadStart(argv, {}, io)).toBeUndefined();
    }
    expect(startCgroupHeadStart(['-n', '1', 'x'], { TSMPIEXEC_HEAD_START: '0' }, io)).toBeUndefined();
    await settle();
    expect(fs.readFileSync(us, 'utf8')).toBe('4242\n');
    expect(startCgroupHeadStart(['-n', '1', 'x'], {}, io)).toBe(us);
  });

  it('does nothing where no hierarchy is mounted', () => {
    expect(startCgroupHeadStart(['-n', '1', 'x'], {}, { pid: 1, selfCgroup: HYBRID, root: path.join(root, 'none') })).toBeUndefined();
  });
});
