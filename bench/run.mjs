#!/usr/bin/env node
// `make bench`: tsmpiexec side by side with Hydra (`mpiexec.hydra`) on this host, as ratios.
//
//   node bench/run.mjs [--quick] [--only NAME[,NAME...]] [--reps N] [--timeout SEC] [--list]
//
// Every scenario runs tsmpiexec (A) and Hydra (B) alternately, A B A B ..., after one warm-up of each,
// and keeps the median wall time of each side and the ratio A/B. A run counts only when it succeeded
// (exit 0 and the expected output, checked per scenario) and left no process behind: a fast failure is
// never a win. Output: a markdown table on stdout and in bench/results/latest.md, everything (machine
// facts, every sample, every failure) in bench/results/latest.json. Each invocation also keeps its own
// bench/results/run-<time>.{md,json} (not committed). See bench/README.md.
//
// Plain Node ESM, node: builtins only, no build step; it compiles its C programs into build/bench/.
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BENCH = path.join(ROOT, 'bench');
const OUTDIR = path.join(ROOT, 'build', 'bench');
const RESULTS = path.join(BENCH, 'results');
const SNAPSHOT = path.join(OUTDIR, 'tsmpiexec');
const HYDRA = 'mpiexec.hydra';
const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

// A token every process of this bench carries in its environment (both launchers pass the environment
// on to ranks), so leftovers are found by pid and only ours are ever killed. Not a TSMPIEXEC_/PMI_ name:
// tsmpiexec strips those.
const MARKER_VAR = 'MPIBENCH_MARKER';
const MARKER = `mpibench-${process.pid}-${randomBytes(6).toString('hex')}`;

// ---------------------------------------------------------------------------------------------- options
function parseCli(argv) {
  const o = { quick: false, only: undefined, reps: undefined, timeoutSec: 120, list: false, help: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      const v = argv[++i];
      if (v === undefined) die(`${a} needs a value`);
      return v;
    };
    if (a === '--quick') o.quick = true;
    else if (a === '--only') o.only = val().split(',').map((s) => s.trim()).filter(Boolean);
    else if (a.startsWith('--only=')) o.only = a.slice(7).split(',').map((s) => s.trim()).filter(Boolean);
    else if (a === '--reps') o.reps = Number(val());
    else if (a === '--timeout') o.timeoutSec = Number(val());
    else if (a === '--list') o.list = true;
    else if (a === '-h' || a === '--help') o.help = true;
    else die(`unknown argument ${a} (try --help)`);
  }
  if (o.reps !== undefined && !(Number.isInteger(o.reps) && o.reps >= 1)) die('--reps needs a positive integer');
  if (!(o.timeoutSec > 0)) die('--timeout needs a positive number of seconds');
  o.reps ??= o.quick ? 3 : 11;
  return o;
}

function die(msg) {
  process.stderr.write(`bench: ${msg}\n`);
  process.exit(2);
}

// ---------------------------------------------------------------------------------------------- build
/** Compile one C program into build/bench/ unless the binary is newer than its source. */
function compile(name, src, compiler) {
  fs.mkdirSync(OUTDIR, { recursive: true });
  const out = path.join(OUTDIR, name);
  const srcPath = path.join(ROOT, src);
  if (fs.existsSync(out) && fs.statSync(out).mtimeMs >= fs.statSync(srcPath).mtimeMs) return out;
  const r = spawnSync(compiler, ['-O2', '-Wall', '-o', out, srcPath], { encoding: 'utf8' });
  if (r.error || r.status !== 0) die(`cannot compile ${src} with ${compiler}: ${r.error?.message ?? r.stderr}`);
  return out;
}

function have(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

// ---------------------------------------------------------------------------------------------- snapshot
/** sha256 over the relative paths and contents of every file under dir. */
function treeHash(dir) {
  const h = createHash('sha256');
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) h.update(path.relative(dir, p)).update('\0').update(fs.readFileSync(p)).update('\0');
    }
  };
  walk(dir);
  return h.digest('hex').slice(0, 16);
}

/**
 * Other people rebuild dist/ while a bench runs (a 10-minute run would otherwise measure two versions).
 * So the bench copies bin/, dist/ and package.json into build/bench/tsmpiexec/ once and runs that copy
 * throughout. The copy is retried until dist/ did not change while it was being taken.
 */
function snapshotTsmpiexec() {
  for (let attempt = 0; attempt < 10; attempt++) {
    const before = treeHash(path.join(ROOT, 'dist'));
    fs.rmSync(SNAPSHOT, { recursive: true, force: true });
    fs.mkdirSync(SNAPSHOT, { recursive: true });
    for (const f of ['bin', 'dist', 'package.json']) fs.cpSync(path.join(ROOT, f), path.join(SNAPSHOT, f), { recursive: true });
    const after = treeHash(path.join(ROOT, 'dist'));
    if (before === after && treeHash(path.join(SNAPSHOT, 'dist')) === after) {
      const built = fs.statSync(path.join(ROOT, 'dist', 'main.js')).mtime.toISOString();
      return { bin: path.join(SNAPSHOT, 'bin', 'tsmpiexec.js'), distHash: after, distBuilt: built };
    }
    spawnSync('sleep', ['2']);
  }
  die('dist/ kept changing while the bench tried to copy it (someone is rebuilding): try again');
}

// ---------------------------------------------------------------------------------------------- /proc
function readText(p) {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    return undefined;
  }
}

/** VmHWM (peak resident set) of a live process, in KiB, or undefined once it is gone. */
function vmHwmKiB(pid) {
  const s = readText(`/proc/${pid}/status`);
  const m = s && /^VmHWM:\s+(\d+) kB/m.exec(s);
  return m ? Number(m[1]) : undefined;
}

function commOf(pid) {
  return readText(`/proc/${pid}/comm`)?.trim();
}

/** Pids of every live (non-zombie) process whose environment carries this bench's marker. */
function markedPids() {
  const needle = `${MARKER_VAR}=${MARKER}\0`;
  const out = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    let env;
    try {
      env = fs.readFileSync(`/proc/${d}/environ`, 'latin1');
    } catch {
      continue;
    }
    if (env.includes(needle)) out.push(Number(d));
  }
  return out;
}

function killPids(pids) {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** After a run: anything of ours still alive is a leftover. Give exiting processes a moment, then kill. */
async function reapLeftovers() {
  let pids = markedPids();
  for (let i = 0; i < 10 && pids.length > 0; i++) {
    await sleep(50);
    pids = markedPids();
  }
  if (pids.length === 0) return 0;
  const comms = [...new Set(pids.map(commOf).filter(Boolean))];
  killPids(pids);
  await sleep(100);
  killPids(markedPids());
  process.stderr.write(`bench: killed ${pids.length} leftover process(es) (${comms.join(', ')})\n`);
  return pids.length;
}

/**
 * Polls the launcher's VmHWM (its own peak RSS; monotonic, so the last reading before exit is the peak up
 * to one poll interval before exit) and, separately, that of its direct children that are Hydra's
 * hydra_pmi_proxy (tsmpiexec's single-host proxy is in-process). Readings count only once
 * /proc/<pid>/cmdline shows the launcher's own argv: before exec the child is a fork of this bench, whose
 * VmHWM would pollute the peak.
 */
function memPoller(pid, argv, rankComm, intervalMs = 25) {
  const want = argv.slice(0, 2).join('\0');
  const rank15 = rankComm.slice(0, 15);
  let started = false;
  const kind = new Map(); // child pid → 'rank' | 'helper'
  const helperPeak = new Map();
  let launcherKiB = 0;
  const tick = () => {
    if (!started) {
      if (!readText(`/proc/${pid}/cmdline`)?.startsWith(want)) return;
      started = true;
    }
    const v = vmHwmKiB(pid);
    if (v !== undefined) launcherKiB = Math.max(launcherKiB, v);
    const kids = readText(`/proc/${pid}/task/${pid}/children`);
    if (!kids) return;
    for (const k of kids.trim().split(/\s+/).filter(Boolean)) {
      const c = Number(k);
      let t = kind.get(c);
      if (t === undefined) {
        // a rank, Hydra's proxy, or something on its way to becoming one (a fork of the launcher before
        // exec, tsmpiexec's `sh -c ... exec` pre-exec wrapper): decide once it is one of the first two
        const comm = commOf(c);
        if (comm === rank15) t = 'rank';
        else if (comm?.startsWith('hydra_pmi')) t = 'helper';
        else continue;
        kind.set(c, t);
      }
      if (t !== 'helper') continue;
      const h = vmHwmKiB(c);
      if (h !== undefined) helperPeak.set(c, Math.max(helperPeak.get(c) ?? 0, h));
    }
  };
  const t = setInterval(tick, intervalMs);
  return {
    stop() {
      clearInterval(t);
      let helpers = 0;
      for (const v of helperPeak.values()) helpers += v;
      return { launcherKiB: launcherKiB || undefined, helpersKiB: helpers || undefined };
    },
  };
}

// ---------------------------------------------------------------------------------------------- one run
const KEEP = 64 * 1024;

/** Keeps the first and the last KEEP bytes of a stream. */
function capture(stream) {
  const head = [];
  let headLen = 0;
  let tail = [];
  let tailLen = 0;
  let total = 0;
  stream.on('data', (d) => {
    total += d.length;
    if (headLen < KEEP) {
      head.push(d);
      headLen += d.length;
      return;
    }
    tail.push(d);
    tailLen += d.length;
    while (tailLen - (tail[0]?.length ?? 0) > KEEP) tailLen -= tail.shift().length;
  });
  return () => {
    const h = Buffer.concat(head).toString('utf8');
    if (tailLen === 0) return { text: h, total };
    return { text: `${h}\n[... ${total - headLen - tailLen} bytes ...]\n${Buffer.concat(tail).toString('utf8')}`, total };
  };
}

/**
 * Runs argv once in its own process group. stdout: 'capture' | 'null' | 'pipe-cat' | {file}. stdinCmd: a shell command
 * whose output is piped into argv (then the measured process is `sh -c 'CMD | exec argv'`). Wall time is
 * spawn → exit of the spawned process; output EOF is awaited after that (not timed).
 */
function runOnce({ argv, stdout = 'capture', stdinCmd, stdinFile, timeoutMs, rankComm, extraEnv }) {
  return new Promise((resolve) => {
    let outFd;
    let inFd;
    let cmd = argv;
    if (stdout === 'null') outFd = fs.openSync('/dev/null', 'w');
    else if (stdout?.file) outFd = fs.openSync(stdout.file, 'w', 0o600);
    if (stdinFile) inFd = fs.openSync(stdinFile, 'r');
    if (stdinCmd) cmd = ['/bin/sh', '-c', `${stdinCmd} | exec "$@"`, 'sh', ...argv];
    // a real pipe (Node's own child pipes are socketpairs); pipefail: the status is the launcher's
    else if (stdout === 'pipe-cat') cmd = ['/bin/bash', '-c', 'set -o pipefail; "$@" | cat >/dev/null', 'bash', ...argv];
    const env = { ...process.env, ...extraEnv, [MARKER_VAR]: MARKER };
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd[0], cmd.slice(1), {
      env,
      cwd: OUTDIR,
      detached: true,
      stdio: [inFd ?? 'ignore', outFd ?? (stdout === 'pipe-cat' ? 'ignore' : 'pipe'), 'pipe'],
    });
    if (outFd !== undefined) fs.closeSync(outFd);
    if (inFd !== undefined) fs.closeSync(inFd);
    const outText = child.stdout ? capture(child.stdout) : () => ({ text: '', total: 0 });
    const errText = capture(child.stderr);
    const mem = !stdinCmd && stdout !== 'pipe-cat' && child.pid ? memPoller(child.pid, argv, rankComm ?? '') : undefined;
    let ms;
    let timedOut = false;
    let exit = { code: null, signal: null };
    let spawnError;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
      killPids(markedPids());
    }, timeoutMs);
    child.on('error', (e) => {
      spawnError = e;
    });
    child.once('exit', (code, signal) => {
      ms = Number(process.hrtime.bigint() - t0) / 1e6;
      exit = { code, signal };
    });
    child.once('close', async () => {
      clearTimeout(timer);
      const m = mem?.stop();
      const leftovers = await reapLeftovers();
      resolve({
        ms: ms ?? Number(process.hrtime.bigint() - t0) / 1e6,
        code: exit.code,
        signal: exit.signal,
        timedOut,
        spawnError: spawnError?.message,
        stdout: outText(),
        stderr: errText(),
        leftovers,
        launcherRssKiB: m?.launcherKiB,
        helpersRssKiB: m?.helpersKiB,
      });
    });
  });
}

/** The first telling line of a failed run's stderr. */
function errorLine(stderr) {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  const hit = lines.find((l) => /too slowly|error|fail|abort|killed|not found|tsmpiexec:/i.test(l));
  return (hit ?? lines[0] ?? '').slice(0, 200);
}

/** null when the run succeeded, else why not. */
function judge(r, check) {
  if (r.spawnError) return `cannot start: ${r.spawnError}`;
  if (r.timedOut) return `timed out after ${(r.ms / 1000).toFixed(0)} s`;
  if (r.signal) return `killed by ${r.signal}${errorLine(r.stderr.text) ? `: ${errorLine(r.stderr.text)}` : ''}`;
  if (r.code !== 0) return `exit ${r.code}${errorLine(r.stderr.text) ? `: ${errorLine(r.stderr.text)}` : ''}`;
  if (r.leftovers > 0) return `left ${r.leftovers} process(es) running`;
  return check ? check(r) : null;
}

// ---------------------------------------------------------------------------------------------- scenarios
const N_HELLO = [4, 16, 64];
const N_PMI = [256, 1024];
const STDOUT_MIB = 256;
const STDOUT_RANKS = 4;
const STDIN_BYTES = GIB;

function checkHello(n) {
  return (r) => {
    const lines = r.stdout.text.split('\n').filter(Boolean);
    const seen = new Set();
    for (const l of lines) {
      const m = /^hello from rank (\d+) of (\d+) on \S+ \(allreduce sum (\d+), expected (\d+)\)$/.exec(l);
      if (!m) return `unexpected output line: ${l.slice(0, 120)}`;
      if (Number(m[2]) !== n || m[3] !== m[4]) return `wrong size or sum: ${l}`;
      seen.add(Number(m[1]));
    }
    return seen.size === n && lines.length === n ? null : `${seen.size} distinct hello lines of ${n}`;
  };
}

function checkPmi(n) {
  const want = `pmi-exchange ok size=${n} gets=64`;
  return (r) => (r.stdout.text.trim() === want ? null : `expected "${want}", got "${r.stdout.text.trim().slice(0, 120)}"`);
}

function checkBulk(n) {
  const want = `pmi-bulk ok size=${n} keys=16 bytes=1024`;
  return (r) => {
    if (r.stdout.text.trim() !== want) return `expected "${want}", got "${r.stdout.text.trim().slice(0, 120)}"`;
    return bytesWritten(r) === null ? 'no "control channels:" line on stderr (--timing)' : null;
  };
}

/** The bytes the controller wrote to its remote proxies' channels (tsmpiexec's --timing line), or null. */
function bytesWritten(r) {
  const m = /control channels: (\d+) bytes written to the remote proxies, (\d+) bytes read/.exec(r.stderr.text);
  return m ? Number(m[1]) : null;
}

function checkWriters(r) {
  const want = `wrote ${STDOUT_MIB * MIB}`;
  const ok = r.stderr.text.split('\n').filter((l) => /^writer \d+ /.test(l) && l.endsWith(want)).length;
  return ok === STDOUT_RANKS ? null : `${ok} of ${STDOUT_RANKS} writers reported "${want}"`;
}

/** Scenario table. Each side's command is built by args(launcherArgv) → runOnce options. */
function scenarios(bin, tmp) {
  const ratio = (max) => ({ kind: 'ratio', max, text: `ratio ≤ ${max.toFixed(1)}` });
  const list = [];
  list.push({
    id: 'floor',
    title: '`-n 1 /bin/true` (launcher floor)',
    target: { kind: 'floor', plusMs: 30, text: 'A ≤ `node -e 0` + 30 ms' },
    run: (L) => ({ argv: [...L, '-n', '1', '/bin/true'], rankComm: 'true' }),
    extra: { name: 'node -e 0', argv: [process.execPath, '-e', '0'] },
  });
  for (const n of N_HELLO) {
    list.push({
      id: `hello-${n}`,
      title: `MPI hello \`-n ${n}\``,
      target: ratio(1.0),
      run: (L) => ({ argv: [...L, '-n', String(n), bin.hello], rankComm: 'hello' }),
      check: checkHello(n),
    });
  }
  for (const n of N_PMI) {
    list.push({
      id: `pmi-${n}`,
      title: `PMI-1 exchange (no MPI) \`-n ${n}\``,
      target: ratio(0.5),
      run: (L) => ({ argv: [...L, '-n', String(n), bin.pmi], rankComm: 'pmi_exchange' }),
      check: checkPmi(n),
      memory: n === 1024,
    });
  }
  // Open MPI's own launcher is the fair comparison for an Open MPI program (side B here is mpirun.openmpi).
  // Side A once over PMIx (--mpi pmix: the PMIx server per host, docs/pmix.md) and once over the PMI-1 route
  // (Open MPI's flux component and our PMI library: TSMPIEXEC_PMIX_SERVER empty), at -n 4 and -n 16.
  const pmixBuilt = fs.existsSync(path.join(ROOT, 'dist/native/tsmpiexec-pmix-server'));
  for (const n of [4, 16]) {
    for (const route of ['pmix', 'pmi1']) {
      const id = `ompi-hello-${n}${route === 'pmi1' ? '-pmi1' : ''}`;
      const title = `Open MPI hello \`-n ${n}\` over ${route === 'pmix' ? 'PMIx' : 'PMI-1 (flux)'} (B: \`mpirun.openmpi\`)`;
      const why = !bin.ompiHello ? 'Open MPI (mpicc.openmpi) or the PMI library is not installed' : route === 'pmix' && !pmixBuilt ? 'the PMIx server is not built (libpmix-dev)' : undefined;
      if (why !== undefined) {
        list.push({ id, title, target: ratio(1.0), pending: why });
        continue;
      }
      list.push({
        id,
        title,
        target: ratio(1.0),
        b: { name: 'mpirun.openmpi', argv: ['mpirun.openmpi', '--oversubscribe'] },
        run: (L) => {
          const ours = L[0] !== 'mpirun.openmpi';
          return {
            argv: [...L, ...(ours && route === 'pmix' ? ['--mpi', 'pmix'] : []), '-n', String(n), bin.ompiHello],
            ...(ours && route === 'pmi1' ? { extraEnv: { TSMPIEXEC_PMIX_SERVER: '' } } : {}),
            rankComm: 'ompi_hello',
          };
        },
        check: checkHello(n),
      });
    }
  }
  // What isolation (cgroups per rank, private /tmp) costs: the same exchange with and without it, and Hydra
  for (const n of N_PMI) {
    list.push({
      id: `pmi-iso-${n}`,
      title: `PMI-1 exchange \`-n ${n}\`: isolation on (A), \`--isolate off\` (C), Hydra (B)`,
      target: { kind: 'isolation', maxCost: 0.1, text: 'A ≤ 1.10 × C' },
      run: (L) => ({ argv: [...L, '-n', String(n), bin.pmi], rankComm: 'pmi_exchange' }),
      check: checkPmi(n),
      extra: { name: 'tsmpiexec --isolate off', run: (L) => ({ argv: [...L, '--isolate', 'off', '-n', String(n), bin.pmi], rankComm: 'pmi_exchange' }), check: checkPmi(n) },
    });
  }
  list.push({
    id: 'stdout-null',
    title: `stdout: ${STDOUT_RANKS} × ${STDOUT_MIB} MiB → /dev/null`,
    target: { kind: 'ratio+rate', max: 1.0, minMiBs: 1024, text: 'ratio ≤ 1.0 and ≥ 1 GiB/s' },
    bytes: STDOUT_RANKS * STDOUT_MIB * MIB,
    run: (L) => ({ argv: [...L, '-n', String(STDOUT_RANKS), bin.writer, String(STDOUT_MIB)], stdout: 'null', rankComm: 'writer' }),
    check: checkWriters,
  });
  const outFile = path.join(tmp, 'stdout.dat');
  list.push({
    id: 'stdout-file',
    title: `stdout: ${STDOUT_RANKS} × ${STDOUT_MIB} MiB → a file`,
    target: { kind: 'ratio+rate', max: 1.0, minMiBs: 1024, text: 'ratio ≤ 1.0 and ≥ 1 GiB/s' },
    bytes: STDOUT_RANKS * STDOUT_MIB * MIB,
    run: (L) => ({ argv: [...L, '-n', String(STDOUT_RANKS), bin.writer, String(STDOUT_MIB)], stdout: { file: outFile }, rankComm: 'writer' }),
    check: (r) => {
      const size = fs.statSync(outFile).size;
      fs.rmSync(outFile, { force: true });
      return checkWriters(r) ?? (size === STDOUT_RANKS * STDOUT_MIB * MIB ? null : `output file has ${size} bytes`);
    },
    cleanup: () => fs.rmSync(outFile, { force: true }),
  });
  list.push({
    id: 'stdout-pipe',
    title: `stdout: ${STDOUT_RANKS} × ${STDOUT_MIB} MiB → a pipe into cat (information)`,
    target: { kind: 'none', text: '(information)' },
    bytes: STDOUT_RANKS * STDOUT_MIB * MIB,
    run: (L) => ({ argv: [...L, '-n', String(STDOUT_RANKS), bin.writer, String(STDOUT_MIB)], stdout: 'pipe-cat', rankComm: 'writer' }),
    check: checkWriters,
  });
  const checkReader = (r) =>
    r.stdout.text.trim() === `reader read ${STDIN_BYTES}` ? null : `expected "reader read ${STDIN_BYTES}", got "${r.stdout.text.trim().slice(0, 100)}"`;
  list.push({
    id: 'stdin-pipe',
    title: 'stdin: 1 GiB through a pipe into rank 0',
    target: { kind: 'rate', minMiBs: 500, text: 'A ≥ 500 MiB/s' },
    bytes: STDIN_BYTES,
    run: (L) => ({ argv: [...L, '-n', '1', bin.reader], stdinCmd: `dd if=/dev/zero bs=1M count=${STDIN_BYTES / MIB} status=none`, rankComm: 'reader' }),
    check: checkReader,
  });
  const inFile = path.join(tmp, 'stdin.dat');
  list.push({
    id: 'stdin-file',
    title: 'stdin: 1 GiB from a file into rank 0 (information)',
    target: { kind: 'none', text: '(information)' },
    bytes: STDIN_BYTES,
    prepare: () => {
      const fd = fs.openSync(inFile, 'w', 0o600);
      const chunk = Buffer.alloc(MIB);
      for (let i = 0; i < STDIN_BYTES / MIB; i++) fs.writeSync(fd, chunk);
      fs.closeSync(fd);
    },
    run: (L) => ({ argv: [...L, '-n', '1', bin.reader], stdinFile: inFile, rankComm: 'reader' }),
    check: checkReader,
    cleanup: () => fs.rmSync(inFile, { force: true }),
  });
  list.push({
    id: 'mem-1024',
    title: 'peak RSS of the launcher, PMI exchange `-n 1024`',
    target: { kind: 'memory', maxMiB: 150, text: 'A ≤ 150 MiB' },
    derivedFrom: 'pmi-1024',
  });
  // ssh launch on the test bed (test/testbed/testbed.sh): real sshd hosts in network namespaces, both
  // launchers run on the login host h0 through the same ssh wrapper (DIR/bin/ssh).
  const bed = { dir: path.join(tmp, 'bed'), up: false, n: 0 };
  const bedScript = path.join(ROOT, 'test', 'testbed', 'testbed.sh');
  const bedUp = (n) => {
    if (bed.up && bed.n >= n) return;
    execFileSync('bash', [bedScript, 'up', String(n), '--dir', bed.dir, '--prefix', 'tsmbench'], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 120_000 });
    bed.up = true;
    bed.n = n;
  };
  const bedDown = () => {
    if (!bed.up) return;
    execFileSync('bash', [bedScript, 'down', '--dir', bed.dir], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 120_000 });
    bed.up = false;
  };
  const sshCases = [
    { hosts: 4, ppn: 4, tree: false },
    { hosts: 16, ppn: 4, tree: false },
    { hosts: 16, ppn: 4, tree: true },
  ];
  sshCases.forEach((c, i) => {
    const n = c.hosts * c.ppn;
    const hostList = Array.from({ length: c.hosts }, (_, k) => `h${k + 1}:${c.ppn}`).join(',');
    list.push({
      id: `ssh-${c.hosts}x${c.ppn}${c.tree ? '-tree' : ''}`,
      title: `ssh launch ${c.hosts} hosts × ${c.ppn} ranks of MPI hello${c.tree ? ' (tsmpiexec --tree-width 4)' : ''}`,
      target: ratio(1.0),
      prepare: () => bedUp(16),
      run: (L) => ({
        argv: [
          'bash', bedScript, 'exec', 'h0', '--dir', bed.dir, '--',
          ...L,
          ...(L[0] === HYDRA ? [] : c.tree ? ['--tree-width', '4'] : ['--no-tree']),
          '-launcher-exec', path.join(bed.dir, 'bin', 'ssh'), '-hosts', hostList, '-n', String(n), bin.hello,
        ],
        rankComm: 'hello',
      }),
      check: checkHello(n),
    });
  });
  // Barrier bytes through the launch tree: 16 hosts x 64 ranks of bench/c/pmi_bulk.c (a PMI-1 client without
  // MPI), each putting 16 KiB before one barrier, so the epoch holds 16 MiB. Both sides are tsmpiexec: A gathers
  // the barrier through a tree of width 4, B runs flat; the row compares the bytes the controller wrote to its
  // proxies (from --timing), and shows the wall times too.
  const bulkHosts = Array.from({ length: 16 }, (_, k) => `h${k + 1}:64`).join(',');
  list.push({
    id: 'tree-kvs-16x64',
    title: 'controller bytes written: 16 hosts × 64 ranks each putting 16 KiB, one barrier (A `--tree-width 4`, B `--no-tree`)',
    target: { kind: 'bytes-ratio', max: 0.5, text: 'bytes A/B ≤ 0.5' },
    maxReps: 3,
    b: { name: 'tsmpiexec --no-tree', sameLauncher: true },
    prepare: () => bedUp(16),
    run: (L, side) => ({
      argv: [
        'bash', bedScript, 'exec', 'h0', '--dir', bed.dir, '--',
        ...L, ...(side === 'b' ? ['--no-tree'] : ['--tree-width', '4']), '--timing',
        '-launcher-exec', path.join(bed.dir, 'bin', 'ssh'), '-hosts', bulkHosts, '-n', '1024', bin.bulk,
      ],
      rankComm: 'pmi_bulk',
    }),
    check: checkBulk(1024),
    sample: bytesWritten,
    cleanup: bedDown,
  });
  return list;
}

function selected(list, only) {
  if (!only) return list;
  const want = (id) => only.some((o) => id === o || id.startsWith(`${o}-`) || (o === 'mem' && id.startsWith('mem-')));
  const chosen = list.filter((s) => want(s.id));
  if (chosen.length === 0) die(`--only ${only.join(',')} matches no scenario (ids: ${list.map((s) => s.id).join(', ')})`);
  // the memory row is measured by the pmi-1024 runs
  for (const s of chosen) {
    if (s.derivedFrom && !chosen.some((c) => c.id === s.derivedFrom)) chosen.push(list.find((c) => c.id === s.derivedFrom));
  }
  return list.filter((s) => chosen.includes(s));
}

// ---------------------------------------------------------------------------------------------- stats
function median(xs) {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const round = (x, d = 1) => (x === undefined || x === null || Number.isNaN(x) ? null : Math.round(x * 10 ** d) / 10 ** d);

// ---------------------------------------------------------------------------------------------- measuring
async function measure(sc, sides, reps, timeoutMs) {
  const res = sides.map((s) => ({ name: s.name, samplesMs: [], failures: [], launcherRssKiB: [], helpersRssKiB: [], ...(sc.sample ? { values: [] } : {}) }));
  const once = async (i, warm) => {
    const side = sides[i];
    const opts = side.opts;
    const r = await runOnce({ ...opts, timeoutMs });
    const why = judge(r, side.check);
    const tag = warm ? 'warm-up' : 'run';
    if (why) {
      res[i].failures.push({ warmup: warm, ms: round(r.ms), why });
      process.stderr.write(`bench:   ${sc.id} ${side.name} ${tag}: FAILED after ${r.ms.toFixed(0)} ms: ${why}\n`);
      return;
    }
    if (warm) return;
    res[i].samplesMs.push(round(r.ms, 2));
    if (sc.sample) res[i].values.push(sc.sample(r));
    if (r.launcherRssKiB) res[i].launcherRssKiB.push(r.launcherRssKiB);
    if (r.helpersRssKiB) res[i].helpersRssKiB.push(r.helpersRssKiB);
  };
  for (let i = 0; i < sides.length; i++) await once(i, true);
  for (let k = 0; k < reps; k++) {
    for (let i = 0; i < sides.length; i++) await once(i, false);
    process.stderr.write(`bench:   ${sc.id} ${k + 1}/${reps}: ${res.map((r) => `${r.name} ${r.samplesMs.at(-1) ?? '-'} ms`).join(', ')}\n`);
  }
  for (const r of res) {
    r.medianMs = round(median(r.samplesMs), 2);
    r.ok = r.samplesMs.length;
    r.failed = r.failures.filter((f) => !f.warmup).length;
    r.peakLauncherRssMiB = r.launcherRssKiB.length ? round(Math.max(...r.launcherRssKiB) / 1024) : null;
    r.peakHelpersRssMiB = r.helpersRssKiB.length ? round(Math.max(...r.helpersRssKiB) / 1024) : null;
  }
  return res;
}

/** Scenario verdict from the measured sides (A = tsmpiexec, B = Hydra, C = an extra reference). */
function verdict(sc, sides) {
  const [a, b, c] = sides;
  const out = { ratio: null, met: null, note: '' };
  const aOk = a && a.failed === 0 && a.medianMs != null;
  const bOk = b && b.failed === 0 && b.medianMs != null;
  if (aOk && bOk) out.ratio = round(a.medianMs / b.medianMs, 3);
  const rate = (s) => (sc.bytes && s?.medianMs ? sc.bytes / MIB / (s.medianMs / 1000) : null);
  if (sc.bytes) {
    out.rateMiBs = { a: round(rate(a), 0), b: bOk ? round(rate(b), 0) : null };
  }
  const t = sc.target;
  if (!aOk) {
    out.met = false;
    out.note = `tsmpiexec failed ${a?.failed ?? '?'}×: ${a?.failures.at(-1)?.why ?? ''}`;
    return out;
  }
  switch (t.kind) {
    case 'ratio':
      out.met = out.ratio !== null ? out.ratio <= t.max : null;
      break;
    case 'ratio+rate':
      out.met = out.ratio !== null ? out.ratio <= t.max && rate(a) >= t.minMiBs : null;
      break;
    case 'rate':
      out.met = rate(a) >= t.minMiBs;
      break;
    case 'isolation':
      if (c?.medianMs != null && c.failed === 0) {
        out.isoRatio = round(a.medianMs / c.medianMs, 3);
        out.met = out.isoRatio <= 1 + t.maxCost;
      }
      break;
    case 'bytes-ratio': {
      const va = median(a.values ?? []);
      const vb = bOk ? median(b.values ?? []) : undefined;
      out.values = { a: va ?? null, b: vb ?? null };
      out.timeRatio = out.ratio;
      out.ratio = va !== undefined && vb ? round(va / vb, 3) : null;
      out.met = out.ratio !== null ? out.ratio <= t.max : null;
      break;
    }
    case 'floor':
      if (c?.medianMs != null) {
        out.overNodeMs = round(a.medianMs - c.medianMs, 1);
        out.met = a.medianMs <= c.medianMs + t.plusMs;
      }
      break;
    default:
      out.met = null;
  }
  if (b && !bOk) {
    const f = b.failures.at(-1);
    out.note = `Hydra failed ${b.failed} of ${b.failed + b.ok} runs (${f ? `after ${f.ms} ms: ${f.why}` : ''})`;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------- report
function fmtMs(ms) {
  if (ms === null || ms === undefined) return '—';
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 100 ? 1 : 0)} ms`;
}

function markdown(report) {
  const L = [];
  const m = report.machine;
  L.push(`# tsmpiexec vs Hydra (\`mpiexec.hydra\`)`);
  L.push('');
  L.push(`${report.date} · ${report.mode.quick ? '**--quick**, ' : ''}${report.mode.reps} runs per side (median, after 1 warm-up each, A B alternating)${report.mode.only ? ` · only ${report.mode.only.join(',')}` : ''}`);
  L.push(`${m.nproc} CPUs (${m.cpuModel}), ${m.memTotalGiB} GiB, Linux ${m.kernel}, Node ${m.node}, Hydra ${m.hydraVersion}, tsmpiexec ${report.tsmpiexec.commit}${report.tsmpiexec.dirty ? ' + uncommitted src changes' : ''} (dist ${report.tsmpiexec.distHash}), load ${m.loadStart.join(' ')} at start`);
  L.push('');
  L.push('| scenario | tsmpiexec | Hydra | ratio | target | met | notes |');
  L.push('| --- | ---: | ---: | ---: | --- | :---: | --- |');
  for (const s of report.scenarios) {
    if (s.status === 'pending') {
      L.push(`| ${s.title} | — | — | — | ${s.target.text} | — | ${s.pending} |`);
      continue;
    }
    if (s.id.startsWith('mem-')) {
      L.push(`| ${s.title} | ${s.a ?? '—'} MiB | ${s.b ?? '—'} MiB | ${s.ratio ?? '—'} | ${s.target.text} | ${metMark(s.met)} | ${s.note} |`);
      continue;
    }
    const [a, b, c] = s.sides;
    const notes = [];
    if (c && s.target.kind === 'isolation') notes.push(`\`--isolate off\` ${fmtMs(c.medianMs)}; isolation on / off = ${s.isoRatio ?? '—'}; off / Hydra = ${b.medianMs ? round(c.medianMs / b.medianMs, 3) : '—'}`);
    else if (c) notes.push(`\`node -e 0\` ${fmtMs(c.medianMs)}; tsmpiexec − node = ${s.overNodeMs ?? '—'} ms`);
    if (s.rateMiBs) notes.push(`${s.rateMiBs.a ?? '—'} vs ${s.rateMiBs.b ?? '—'} MiB/s`);
    if (s.values) notes.push(`bytes written by the controller: A ${s.values.a ?? '—'}, B ${s.values.b ?? '—'} (ratio column); wall-time ratio ${s.timeRatio ?? '—'}`);
    if (s.note) notes.push(s.note);
    L.push(`| ${s.title} | ${fmtMs(a.medianMs)} | ${b.failed > 0 ? `failed ${b.failed}/${b.failed + b.ok}` : fmtMs(b.medianMs)} | ${s.ratio ?? '—'} | ${s.target.text} | ${metMark(s.met)} | ${notes.join('; ')} |`);
  }
  L.push('');
  L.push('ratio = median(tsmpiexec) / median(Hydra): below 1 means tsmpiexec is faster. Wall time is from spawn to the launcher\'s exit;');
  L.push('a run counts only if it exited 0 with the expected output and left no process behind. Memory: VmHWM of the launcher');
  L.push('process itself, polled every 25 ms from /proc (Hydra: `mpiexec.hydra`; its `hydra_pmi_proxy` is listed in notes). See bench/README.md.');
  return L.join('\n') + '\n';
}

function metMark(met) {
  return met === true ? '✅' : met === false ? '❌' : '—';
}

// ---------------------------------------------------------------------------------------------- facts
function machineFacts() {
  let hydraVersion = '?';
  try {
    const v = execFileSync(HYDRA, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    hydraVersion = /Version:\s+(\S+)/.exec(v)?.[1] ?? '?';
  } catch {
    /* reported as ? */
  }
  const nofile = readText('/proc/self/limits')?.match(/Max open files\s+(\S+)\s+(\S+)/);
  return {
    nproc: os.availableParallelism?.() ?? os.cpus().length,
    cpuModel: os.cpus()[0]?.model?.trim() ?? '?',
    memTotalGiB: round(os.totalmem() / GIB, 1),
    node: process.version,
    kernel: os.release(),
    os: readText('/etc/os-release')?.match(/^PRETTY_NAME="?([^"\n]*)/m)?.[1] ?? os.platform(),
    hydraVersion,
    nofile: nofile ? { soft: nofile[1], hard: nofile[2] } : null,
    loadStart: os.loadavg().map((x) => round(x, 2)),
  };
}

function gitFacts() {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'bin'], { cwd: ROOT, encoding: 'utf8' }).trim() !== '';
    return { commit, dirty };
  } catch {
    return { commit: '?', dirty: false };
  }
}

/**
 * 1024 ranks need ~4 fds each in a launcher (stdout, stderr, PMI socket, ...): raise our own soft limit
 * towards the hard one (and the hard one when permitted); both launchers inherit it. No per-run shell.
 */
function raiseNofile(need = 8192, want = 65536) {
  const m = readText('/proc/self/limits')?.match(/Max open files\s+(\S+)\s+(\S+)/);
  const soft = m ? Number(m[1]) : 0;
  const hard = m ? (m[2] === 'unlimited' ? Infinity : Number(m[2])) : 0;
  if (soft >= need) return `open-files limit ${soft} (enough for 1024 ranks, left as it is)`;
  for (const lim of [`${want}:${want}`, `${Math.min(want, hard)}:${hard === Infinity ? 'unlimited' : hard}`]) {
    const r = spawnSync('prlimit', ['--pid', String(process.pid), `--nofile=${lim}`], { stdio: 'ignore' });
    if (r.status === 0) return `raised the open-files limit from ${soft} to ${lim.split(':')[0]} (prlimit on the bench process; both launchers inherit it)`;
  }
  return `open-files limit ${soft} (could not raise it; the 1024-rank runs may fail)`;
}

// ---------------------------------------------------------------------------------------------- main
async function main() {
  const o = parseCli(process.argv.slice(2));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsmpibench-'));
  const stub = { hello: '', pmi: '', bulk: '', writer: '', reader: '' };
  if (o.help || o.list) {
    const list = scenarios(stub, tmp);
    fs.rmSync(tmp, { recursive: true, force: true });
    if (o.help) process.stdout.write('usage: node bench/run.mjs [--quick] [--only NAME[,NAME...]] [--reps N] [--timeout SEC] [--list]\n');
    process.stdout.write(list.map((s) => `${s.id.padEnd(12)} ${s.title.replace(/`/g, '')}  [${s.target.text}]${s.pending ? ` ${s.pending}` : ''}`).join('\n') + '\n');
    return;
  }
  if (!fs.existsSync(path.join(ROOT, 'dist', 'main.js'))) die('dist/main.js is missing: run `make build` first');
  for (const c of [HYDRA, 'mpicc.mpich', 'cc']) if (!have(c)) die(`${c} not found (make system-deps installs MPICH)`);

  const bin = {
    hello: compile('hello', 'examples/hello.c', 'mpicc.mpich'),
    pmi: compile('pmi_exchange', 'bench/c/pmi_exchange.c', 'cc'),
    bulk: compile('pmi_bulk', 'bench/c/pmi_bulk.c', 'cc'),
    writer: compile('writer', 'bench/c/writer.c', 'cc'),
    reader: compile('reader', 'bench/c/reader.c', 'cc'),
    ompiHello: have('mpicc.openmpi') && have('mpirun.openmpi') && fs.existsSync(path.join(ROOT, 'dist/native/libtsmpiexec-pmi.so')) ? compile('ompi_hello', 'examples/hello.c', 'mpicc.openmpi') : undefined,
  };
  // Open MPI refuses root unless told (the bench may run as root, as CI does); nothing else changes
  process.env.OMPI_ALLOW_RUN_AS_ROOT = '1';
  process.env.OMPI_ALLOW_RUN_AS_ROOT_CONFIRM = '1';
  const limits = raiseNofile();
  process.stderr.write(`bench: ${limits}\n`);
  const machine = machineFacts();
  machine.limits = limits;
  if (machine.loadStart[0] > machine.nproc * 0.5) {
    process.stderr.write(`bench: warning: load average ${machine.loadStart[0]} on ${machine.nproc} CPUs: something else is running, timings will be noisy\n`);
  }
  const snap = snapshotTsmpiexec();
  process.stderr.write(`bench: running a private copy of tsmpiexec (dist ${snap.distHash}, built ${snap.distBuilt}) from ${path.relative(ROOT, SNAPSHOT)}/\n`);
  const A = { name: 'tsmpiexec', argv: [process.execPath, snap.bin] };
  const B = { name: 'hydra', argv: [HYDRA] };
  const list = selected(scenarios(bin, tmp), o.only);
  const report = {
    schema: 1,
    date: new Date().toISOString(),
    mode: { quick: o.quick, reps: o.reps, only: o.only ?? null, timeoutSec: o.timeoutSec },
    machine,
    tsmpiexec: { ...gitFacts(), distHash: snap.distHash, distBuilt: snap.distBuilt },
    scenarios: [],
  };
  const byId = new Map();
  let interrupted = false;
  const onSig = () => {
    interrupted = true;
    killPids(markedPids());
    fs.rmSync(tmp, { recursive: true, force: true });
    process.exit(130);
  };
  process.on('SIGINT', onSig);
  process.on('SIGTERM', onSig);
  try {
    for (const sc of list) {
      if (interrupted) break;
      const base = { id: sc.id, title: sc.title, target: sc.target };
      if (sc.pending) {
        report.scenarios.push({ ...base, status: 'pending', pending: sc.pending, met: null });
        continue;
      }
      if (sc.derivedFrom) {
        const src = byId.get(sc.derivedFrom);
        const a = src?.sides[0]?.peakLauncherRssMiB ?? null;
        const b = src?.sides[1]?.peakLauncherRssMiB ?? null;
        const proxy = src?.sides[1]?.peakHelpersRssMiB;
        report.scenarios.push({
          ...base,
          status: 'measured',
          a,
          b,
          ratio: a && b ? round(a / b, 2) : null,
          met: a === null ? null : a <= sc.target.maxMiB,
          note: `max over the ${sc.derivedFrom} runs${proxy ? `; Hydra's hydra_pmi_proxy ${proxy} MiB more` : ''}`,
        });
        continue;
      }
      process.stderr.write(`bench: ${sc.id}: ${sc.title.replace(/`/g, '')}\n`);
      sc.prepare?.();
      const other = sc.b?.sameLauncher ? { name: sc.b.name, argv: A.argv } : sc.b ?? B;
      const sides = [A, other].map((L, i) => ({ name: L.name, opts: sc.run(L.argv, i === 0 ? 'a' : 'b'), check: sc.check }));
      if (sc.extra) sides.push({ name: sc.extra.name, opts: sc.extra.run ? sc.extra.run(A.argv) : { argv: sc.extra.argv }, check: sc.extra.check ?? null });
      let res;
      try {
        res = await measure(sc, sides, Math.min(o.reps, sc.maxReps ?? o.reps), o.timeoutSec * 1000);
      } finally {
        sc.cleanup?.();
      }
      const v = verdict(sc, res);
      const entry = { ...base, status: 'measured', sides: res, ...v };
      byId.set(sc.id, entry);
      report.scenarios.push(entry);
    }
  } finally {
    killPids(markedPids());
    // a test bed the ssh scenarios brought up (whichever of them ran last)
    if (fs.existsSync(path.join(tmp, 'bed'))) {
      spawnSync('bash', [path.join(ROOT, 'test', 'testbed', 'testbed.sh'), 'down', '--dir', path.join(tmp, 'bed')], { stdio: 'ignore', timeout: 120_000 });
    }
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  report.machine.loadEnd = os.loadavg().map((x) => round(x, 2));
  // the RSS samples in KiB are summarised in MiB; keep the JSON readable
  for (const s of report.scenarios) for (const side of s.sides ?? []) {
    side.launcherRssMiB = side.launcherRssKiB.map((k) => round(k / 1024));
    delete side.launcherRssKiB;
    side.helpersRssMiB = side.helpersRssKiB.map((k) => round(k / 1024));
    delete side.helpersRssKiB;
  }
  const md = markdown(report);
  process.stdout.write(md);
  fs.mkdirSync(RESULTS, { recursive: true });
  const stamp = report.date.replace(/[:.]/g, '-');
  const json = JSON.stringify(report, null, 2) + '\n';
  fs.writeFileSync(path.join(RESULTS, `run-${stamp}.md`), md);
  fs.writeFileSync(path.join(RESULTS, `run-${stamp}.json`), json);
  if (!o.only) {
    fs.writeFileSync(path.join(RESULTS, 'latest.md'), md);
    fs.writeFileSync(path.join(RESULTS, 'latest.json'), json);
    process.stderr.write(`bench: wrote bench/results/latest.md and latest.json\n`);
  } else {
    process.stderr.write(`bench: --only: wrote bench/results/run-${stamp}.{md,json} (latest.* is kept for full runs)\n`);
  }
}

main().catch((e) => {
  killPids(markedPids());
  process.stderr.write(`bench: ${e?.stack ?? e}\n`);
  process.exit(1);
});
