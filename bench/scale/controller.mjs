// One run of the scale model: this process is the launcher. It builds the job from a real command line
// (parseArgs, resolveHosts, place), runs the real controller (Job, remoteProxyFactory, RemoteProxy, KvsService),
// and gives remoteProxyFactory a launcher whose "ssh sessions" are channels of one socket to hosts.mjs, where
// the simulated hosts run the real proxy code. Everything the controller writes to or reads from a session is
// counted here, at the controller's boundary. Prints one JSON line with the run's figures.
//
//   node bench/scale/controller.mjs --hosts 256 --ppn 4 [--flat] [--tree-width 32] [--value-bytes 360] [--gets 8]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from '../../dist/cli/parse.js';
import { resolveHosts, defaultRankCount, universeSize } from '../../dist/hosts/resolve.js';
import { place } from '../../dist/placement/place.js';
import { localNames } from '../../dist/hosts/local.js';
import { Job } from '../../dist/run/job.js';
import { remoteProxyFactory } from '../../dist/run/proxies.js';
import { Gate } from '../../dist/run/remote-proxy.js';
import { exitStatus } from '../../dist/run/exit-status.js';
import { FakeChild, FrameCounter, MODEL_CHANNEL, MUX, muxReader, muxSend } from './wires.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

function opt(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
}
const H = Number(opt('hosts', '16'));
const R = Number(opt('ppn', '1'));
const flat = process.argv.includes('--flat');
const treeWidth = Number(opt('tree-width', '32'));
const valueBytes = Number(opt('value-bytes', '360'));
const gets = Number(opt('gets', '8'));
const hostsHeapMiB = Number(opt('hosts-heap', '8192'));
const ranks = H * R;

const hostsProc = spawn(process.execPath, [`--max-old-space-size=${hostsHeapMiB}`, path.join(here, 'hosts.mjs')], {
  stdio: ['ignore', 'inherit', 'inherit', 'pipe'],
  env: { ...process.env, SCALE_PARAMS: JSON.stringify({ ranks, valueBytes, gets }) },
});
const sock = hostsProc.stdio[3];

/** per first-level session: the stand-in child, and frame counters for each direction */
const sessions = new Map();
let nextChannel = 0;
const modelWaiters = new Map();
const waitModel = (t) => new Promise((resolve) => modelWaiters.set(t, resolve));

sock.on(
  'data',
  muxReader((ch, type, payload) => {
    if (ch === MODEL_CHANNEL) {
      const m = JSON.parse(payload.toString());
      onModel(m);
      modelWaiters.get(m.t)?.(m);
      return;
    }
    const s = sessions.get(ch);
    if (!s) return;
    if (type === MUX.DATA) {
      const buf = Buffer.from(payload);
      s.up.push(buf);
      s.child.fromChild(buf);
    } else if (type === MUX.EXIT) {
      const { code, signal } = JSON.parse(payload.toString());
      s.child.exited(code ?? null, signal);
    }
  }),
);

const launcher = {
  name: 'ssh',
  start(host) {
    const ch = nextChannel++;
    const down = new FrameCounter();
    const child = new FakeChild(1000 + ch, {
      toChild: (buf) => {
        down.push(buf);
        muxSend(sock, ch, MUX.DATA, buf);
      },
      closeChild: () => muxSend(sock, ch, MUX.EOF),
      killChild: () => muxSend(sock, ch, MUX.KILL),
    });
    sessions.set(ch, { child, up: new FrameCounter(), down });
    muxSend(sock, ch, MUX.OPEN, { host });
    return { child, stderrTail: () => [] };
  },
};

function boundary() {
  const t = { sessions: sessions.size, upBytes: 0, upFrames: 0, downBytes: 0, downFrames: 0 };
  for (const s of sessions.values()) {
    t.upBytes += s.up.bytes;
    t.upFrames += s.up.frames;
    t.downBytes += s.down.bytes;
    t.downFrames += s.down.frames;
  }
  return t;
}
const cpuUs = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
const maxRssMiB = () => Math.round((process.resourceUsage().maxRSS / 1024) * 10) / 10;

let t0 = 0n;
let cpu0 = 0;
const result = { hosts: H, ppn: R, ranks, design: flat ? 'flat' : 'tree', treeWidth, valueBytes, gets };
function onModel(m) {
  if (m.t === 'barrier1') {
    result.barrier1 = {
      wallMs: Number(process.hrtime.bigint() - t0) / 1e6,
      launcherCpuMs: (cpuUs() - cpu0) / 1000,
      hostsCpuMs: m.cpuUs / 1000,
      launcherRssMiB: maxRssMiB(),
      controller: boundary(),
      messages: m.at,
    };
  }
}

const sink = () => {
  let bytes = 0;
  return {
    write: (d) => {
      bytes += d.length;
      return true;
    },
    onDrain: (fn) => setImmediate(fn),
    finish: () => Promise.resolve(),
    failed: undefined,
    isTTY: false,
    get bytes() {
      return bytes;
    },
  };
};

await waitModel('ready');
const hostList = Array.from({ length: H }, (_, i) => `sim${String(i + 1).padStart(4, '0')}:${R}`).join(',');
const argv = ['-hosts', hostList, '-n', String(ranks), '--mpi', 'none', '--stdin', 'none', '--isolate', 'off', '--launch-timeout', '900', '--tree-width', String(treeWidth), ...(flat ? ['--no-tree'] : []), '/bin/true'];
const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
const parsed = parseArgs(argv, env, (p) => fs.readFileSync(p, 'utf8'));
if (parsed.kind !== 'run') throw new Error('the model command line did not parse as a job');
const req = parsed.request;
const resolved = resolveHosts(req, { readFile: (p) => fs.readFileSync(p, 'utf8'), env });
const placed = place({ request: req, hosts: resolved.hosts, hostSource: resolved.source, kvsname: `kvs_scale_${process.pid}`, defaultNp: defaultRankCount(resolved.hosts, req.ppn) });
const plan = { ...placed, universeSize: universeSize(req.usize, resolved.hosts, req.ppn, resolved.source.kind === 'default', placed.size, 2) };
const notices = [];
const traffic = { written: 0, read: 0 };
const stdout = sink();
const stderr = sink();
const job = new Job(req, plan, {
  // the 6th argument counts the controller's channel bytes where the factory takes it (the tree-barrier change):
  // a second count to check ours against
  makeProxy: remoteProxyFactory(req, localNames(), env, { kind: 'ssh', launcher, gate: new Gate(8) }, plan.proxies.map((p) => p.host), traffic),
  env,
  cwd: process.cwd(),
  stdout,
  stderr,
  notice: (line) => {
    if (notices.length < 5) notices.push(line);
  },
  openFile: () => sink(),
  stdinSource: () => undefined,
});
result.baseRssMiB = maxRssMiB();
t0 = process.hrtime.bigint();
cpu0 = cpuUs();
const outcome = await job.run();
result.end = {
  wallMs: Number(process.hrtime.bigint() - t0) / 1e6,
  launcherCpuMs: (cpuUs() - cpu0) / 1000,
  launcherRssMiB: maxRssMiB(),
  controller: boundary(),
};
result.exitStatus = exitStatus(outcome.causes);
result.end.launcherTraffic = traffic;
result.causes = outcome.causes.slice(0, 3);
result.notices = notices;
result.stderrBytes = stderr.bytes;
muxSend(sock, MODEL_CHANNEL, MUX.MODEL, { t: 'finish' });
const stats = await waitModel('stats');
result.hostsSide = stats;
result.ok = result.exitStatus === 0 && stats.errors.length === 0 && stats.barrier1 === ranks && result.barrier1 !== undefined;
process.stdout.write(`${JSON.stringify(result)}\n`);
sock.destroy();
hostsProc.kill('SIGKILL');
process.exit(0);
