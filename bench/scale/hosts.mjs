// The simulated hosts of the scale model, all in this one Node process (started by controller.mjs with the mux
// socket at fd 3). Every host runs the real proxy (src/proxy/main.ts, proxyMain) with an in-memory outside
// world: its control channel is a mux channel (first level: the controller's ssh session) or an in-memory pipe
// from its parent proxy (tree: the parent's Subtree starts it through an in-memory launcher instead of ssh), and
// its host side is a SimHost (sim-host.mjs) whose ranks speak PMI to the real PmiServer.
//
// It also classifies, at the controller's boundary only (the first-level channels), the JSON messages crossing
// it (barrier requests up, replies down), so the controller process spends no CPU on counting.
import net from 'node:net';
import { proxyMain } from '../../dist/proxy/main.js';
import { FRAME, FrameDecoder } from '../../dist/control/frame.js';
import { FakeChild, MODEL_CHANNEL, MUX, muxReader, muxSend, Wire } from './wires.mjs';
import { SimHost } from './sim-host.mjs';

const params = JSON.parse(process.env.SCALE_PARAMS ?? '{}');
const sock = new net.Socket({ fd: 3, readable: true, writable: true });

const model = {
  pmiRequests: 0,
  barrier1: 0,
  errors: [],
  maxDepth: 0,
  proxies: 0,
  bad(msg) {
    if (this.errors.length < 5) this.errors.push(msg);
  },
  firstBarrierOut() {
    if (++this.barrier1 === params.ranks) {
      muxSend(sock, MODEL_CHANNEL, MUX.MODEL, { t: 'barrier1', cpuUs: cpuUs() - cpuAtReady, rssMiB: rssMiB(), at: this.boundary() });
    }
  },
  /** JSON messages across the controller's boundary, by type: up (to the controller) and down */
  up: new Map(),
  down: new Map(),
  boundary() {
    return { up: Object.fromEntries(this.up), down: Object.fromEntries(this.down) };
  },
};

function cpuUs() {
  const u = process.cpuUsage();
  return u.user + u.system;
}
function rssMiB() {
  return Math.round((process.resourceUsage().maxRSS / 1024) * 10) / 10;
}

/**
 * Count one whole frame crossing the controller's boundary, by its message type (routed frames: the inner one).
 * Only the head of a frame is read: every message starts with its type ({"t":"reply",...}, a request with its op),
 * and a chunk of a tree barrier message that is not the last says "more" before its puts.
 */
function classify(map, whole) {
  let f = whole;
  if (f.readUInt8(4) === FRAME.ROUTED) f = f.subarray(9);
  const kind = f.readUInt8(4);
  let key;
  if (kind === FRAME.JSON || kind === FRAME.TREE) {
    const head = f.subarray(5, 5 + 400).toString('latin1');
    const t = /^\{"t":"([a-z-]+)"/.exec(head)?.[1] ?? '?';
    if (kind === FRAME.TREE) {
      // a barrier message of the launch tree (gathered entry up, result down), maybe cut into chunks: count it once
      if (/"more":true,"puts":\[/.test(head)) return;
      key = `tree:${t}`;
    } else key = t === 'request' ? `request:${/"op":"([a-z]+)"/.exec(head)?.[1] ?? '?'}` : t;
  } else key = kind === FRAME.OUTPUT ? 'output' : kind === FRAME.STDIN ? 'stdin' : `kind${kind}`;
  map.set(key, (map.get(key) ?? 0) + 1);
}

let nextPid = 2;
let cpuAtReady = 0;

/**
 * Start one proxy: `toProxy` is the Readable it reads its channel from, `fromProxy(buf)` gets what it writes,
 * `exited(code)` is told when it exits. Returns nothing: the proxy lives until it exits.
 */
function startProxy(host, depth, toProxy, fromProxy, exited) {
  model.proxies++;
  model.maxDepth = Math.max(model.maxDepth, depth);
  let gone = false;
  const world = {
    input: toProxy,
    output: () => ({
      write: (data) => {
        if (!gone) fromProxy(data);
        return true;
      },
      onDrain: (fn) => setImmediate(fn),
      finish: () => Promise.resolve(),
      failed: undefined,
      isTTY: false,
    }),
    exit: (code) => {
      if (gone) return;
      gone = true;
      exited(code);
    },
    onSignal: () => {},
    env: {},
    hostname: host,
    pid: nextPid++,
    log: (line) => model.bad(line.trim()),
    makeHost: (o, c) => new SimHost(o, c, params, model),
    subtreeLauncher: { name: 'memory', start: (childHost) => launchChild(childHost, depth + 1) },
  };
  void proxyMain(world);
}

/** The Subtree's launcher: a child proxy in this process, connected by in-memory pipes. */
function launchChild(host, depth) {
  const down = new Wire();
  let child;
  child = new FakeChild(nextPid, {
    toChild: (buf) => down.write(buf),
    closeChild: () => down.end(),
    killChild: (signal) => {
      down.end();
      setImmediate(() => child.exited(null, signal));
    },
  });
  const up = new Wire();
  up.readonly.on('data', (b) => child.fromChild(b));
  startProxy(host, depth, down.readonly, (b) => up.write(b), (code) => setImmediate(() => child.exited(code, null)));
  return { child, stderrTail: () => [] };
}

/** First-level proxies: one per mux channel. */
const channels = new Map();

const read = muxReader((ch, type, payload) => {
  if (ch === MODEL_CHANNEL) {
    // the job is over: our statistics, then we are done
    muxSend(sock, MODEL_CHANNEL, MUX.MODEL, { t: 'stats', cpuUs: cpuUs() - cpuAtReady, rssMiB: rssMiB(), proxies: model.proxies, maxDepth: model.maxDepth, pmiRequests: model.pmiRequests, barrier1: model.barrier1, errors: model.errors, at: model.boundary() });
    sock.end();
    return;
  }
  if (type === MUX.OPEN) {
    const { host } = JSON.parse(payload.toString());
    const input = new Wire();
    const upDecoder = new FrameDecoder();
    const c = { input, downDecoder: new FrameDecoder() };
    channels.set(ch, c);
    startProxy(
      host,
      1,
      input.readonly,
      (buf) => {
        for (const w of upDecoder.pushRaw(buf)) classify(model.up, w);
        muxSend(sock, ch, MUX.DATA, buf);
      },
      (code) => muxSend(sock, ch, MUX.EXIT, { code }),
    );
    return;
  }
  const c = channels.get(ch);
  if (!c) return;
  if (type === MUX.DATA) {
    // a copy: the mux reader's buffer is reused by later messages of the same chunk only as a view, but the
    // proxy keeps frames (decodeFrame does not copy), so keep it independent of the socket's chunk
    const buf = Buffer.from(payload);
    for (const w of c.downDecoder.pushRaw(buf)) classify(model.down, w);
    c.input.write(buf);
  } else if (type === MUX.EOF) c.input.end();
  else if (type === MUX.KILL) {
    c.input.end();
    muxSend(sock, ch, MUX.EXIT, { signal: 'SIGKILL' });
  }
});

sock.on('data', read);
sock.on('end', () => process.exit(0));
cpuAtReady = cpuUs();
muxSend(sock, MODEL_CHANNEL, MUX.MODEL, { t: 'ready' });
