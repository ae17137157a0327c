// The shim's no-op cgroup move (bin/cgroup-head-start.js) on the real kernel: a process inside a job's cgroup (as
// under Slurm or HTCondor) does the move and is still in exactly the cgroups it was in. The rules (which file it
// may write, when it does nothing) are in test/unit/cgroup-head-start.test.ts.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { isRoot } from '../fixtures/isolate/harness.js';

const MODULE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/cgroup-head-start.js');
const PIDS = '/sys/fs/cgroup/pids';
const canRun = isRoot && fs.existsSync(`${PIDS}/cgroup.procs`);

const CHILD = `
const fs = require('node:fs');
const before = fs.readFileSync('/proc/self/cgroup', 'utf8');
const file = require(${JSON.stringify(MODULE)}).startCgroupHeadStart(['-n', '1', 'x'], {});
setTimeout(() => {
  const procs = file === undefined ? '' : fs.readFileSync(file, 'utf8');
  console.log(JSON.stringify({ before, after: fs.readFileSync('/proc/self/cgroup', 'utf8'), file, listed: procs.split('\\n').includes(String(process.pid)) }));
}, 200);`;

let dir: string | undefined;
afterEach(() => {
  if (dir !== undefined) fs.rmdirSync(dir);
  dir = undefined;
});

describe.skipIf(!canRun)('the shim head start on real cgroups (needs root and a cgroup v1 pids hierarchy)', () => {
  it('moves a process in a job cgroup into that same cgroup: nothing about its cgroups changes', () => {
    dir = `${PIDS}/tsmpiexec-headstart-test-${process.pid}`;
    fs.mkdirSync(dir);
    const out = execFileSync('/bin/sh', ['-c', `echo $$ > ${dir}/cgroup.procs && exec "$0" -e "$1"`, process.execPath, CHILD], { encoding: 'utf8' });
    const r = JSON.parse(out) as { before: string; after: string; file?: string; listed: boolean };
    expect(r.before).toContain(`:pids:/tsmpiexec-headstart-test-${process.pid}\n`);
    expect(r.file).toBeDefined();
    expect(r.listed).toBe(true);
    expect(r.after).toBe(r.before);
  });
});
