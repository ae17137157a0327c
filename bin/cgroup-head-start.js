// The first cgroup migration after a quiet spell waits for an RCU grace period (6-15 ms on the 2-CPU test host:
// the kernel's cgroup_threadgroup_rwsem leaves its fast mode), and it waits holding the cgroup mutex, so every
// mkdir of a cgroup waits with it. Migrations within about 20 ms of the last one do not wait. Isolation migrates
// the /tmp holder and every rank; so this shim, before it loads the bundle (about 15 ms of work that touches no
// cgroup), moves the process into the cgroup it is already in: a migration that changes nothing, done in the
// thread pool, whose wait then runs alongside the load instead of in front of the first rank.
// The directory is taken from /proc/self/cgroup and used only if its cgroup.procs lists this very process, so the
// move can never take it anywhere else (out of a batch system's tracking, say). Any failure just means no head start.
'use strict';
const fs = require('node:fs');

// Invocations that never create a cgroup: no head start (the thread pool would only delay their exit).
const NO_JOB = new Set(['-h', '--help', '-V', '--version', 'pmi-check']);

/** Candidate directories of our own cgroup, from /proc/self/cgroup, for the usual mount points under root. */
function candidates(selfCgroup, root = '/sys/fs/cgroup') {
  const out = [];
  for (const line of selfCgroup.split('\n')) {
    const m = /^(\d+):([^:]*):(\/.*)$/.exec(line);
    if (m === null) continue;
    const rel = m[3] === '/' ? '' : m[3];
    if (m[1] === '0') out.push(`${root}/unified${rel}`, `${root}${rel}`);
    else for (const c of m[2].split(',')) if (c !== '' && !c.startsWith('name=')) out.push(`${root}/${c}${rel}`);
  }
  return out;
}

/**
 * Starts the no-op migration and returns the cgroup.procs file it writes (setupIsolation writes it again, to keep
 * the fast mode on), or undefined when there was nothing to do. `io` is for tests.
 */
function startCgroupHeadStart(argv, env, io = {}) {
  if (argv.length === 0 || NO_JOB.has(argv[0]) || env.TSMPIEXEC_HEAD_START === '0') return undefined;
  const isolate = argv.indexOf('--isolate');
  if (argv.includes('--isolate=off') || (isolate >= 0 && argv[isolate + 1] === 'off')) return undefined;
  const pid = String(io.pid ?? process.pid);
  let self;
  try {
    self = io.selfCgroup ?? fs.readFileSync('/proc/self/cgroup', 'utf8');
  } catch {
    return undefined;
  }
  for (const dir of candidates(self, io.root)) {
    const file = `${dir}/cgroup.procs`;
    let fd;
    try {
      fs.accessSync(file, fs.constants.W_OK); // first: a root cgroup's list can be long, and others' are not ours
      if (!fs.readFileSync(file, 'latin1').split('\n').includes(pid)) continue;
      fd = fs.openSync(file, 'r+');
    } catch {
      continue;
    }
    fs.write(fd, pid, () => fs.close(fd, () => undefined));
    return file;
  }
  return undefined;
}

module.exports = { startCgroupHeadStart, candidates };
