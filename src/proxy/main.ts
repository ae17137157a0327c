// `tsmpiexec proxy`: the per-host proxy process started over ssh (or srun). It talks to the controller over
// its own stdin/stdout only (framed messages: no port anyone could connect to), runs a HostProxy for this
// host's ranks, and kills them all when the channel closes (controller killed, ssh dropped): no orphans.
import type { Readable, Writable } from 'node:stream';
import os from 'node:os';
import { FrameDecoder, encodeJson, outputHeader, type Frame } from '../control/frame.js';
import { packageVersion } from '../util/package-root.js';
import { PROTOCOL_VERSION, type FromProxy, type ToProxy, type UpstreamReply, type UpstreamRequest } from '../control/messages.js';
import { IsolatedProxy, type ContainmentOptions } from './isolated.js';
import type { HostProxyOptions } from './host-proxy.js';
import { Subtree } from './subtree.js';
import type { Launcher } from '../launch/launcher.js';
import { BarrierGather } from './gather.js';
import { ChunkJoiner, TreeMessageError, treeFrames } from '../control/barrier-chunks.js';
import { decodeLaunches } from '../run/assign.js';
import type { PmiUpstream } from '../pmi/types.js';
import { fdSource } from '../io/stdin.js';
import { fdSink, type Sink } from '../io/sink.js';
import { growPipe } from '../io/pipe-size.js';

/** Unacknowledged output bytes in flight before the proxy pauses its ranks. */
const OUTPUT_WINDOW = 8 << 20;

/** The shape checks a decoded message must pass before it is acted on (the channel may be forged or corrupt). */
function wellFormed(m: unknown): m is ToProxy {
  if (typeof m !== 'object' || m === null) return false;
  const o = m as Record<string, unknown>;
  if (typeof o.t !== 'string') return false;
  if (o.t === 'assign') {
    return (
      typeof o.host === 'string' && typeof o.jobId === 'string' && typeof o.group === 'object' && o.group !== null &&
      typeof o.containment === 'object' && o.containment !== null && Array.isArray(o.envs) && Array.isArray(o.launches) &&
      typeof o.appnums === 'object' && o.appnums !== null && Number.isInteger(o.index)
    );
  }
  if (o.t === 'barrier-plan') {
    return typeof o.kvsname === 'string' && typeof o.self === 'boolean' && Array.isArray(o.children) && o.children.every((c) => Number.isInteger(c));
  }
  if (o.t === 'spawn-ranks') {
    return typeof o.id === 'number' && typeof o.group === 'object' && o.group !== null && Array.isArray(o.envs) && Array.isArray(o.launches);
  }
  return true;
}

/** What a proxy uses of its host's proxy (IsolatedProxy's surface): the seam bench/scale-model.mjs fills in. */
export type HostSide = Pick<IsolatedProxy, 'start' | 'ready' | 'stdinOf' | 'addRanks' | 'signal' | 'killAll' | 'resumeOutput' | 'destroyStreams' | 'close' | 'usage'>;

/**
 * The outside world of a proxy process. The real one (processWorld) is fds 0/1, process.exit, signals and an
 * IsolatedProxy that starts processes; the scale model (bench/scale-model.mjs) runs many proxies in one Node
 * process over in-memory channels, with simulated ranks behind the real PMI server.
 */
export interface ProxyWorld {
  input: Readable | undefined;
  /** our channel to the parent; onFail ends the proxy (status 1) */
  output(onFail: () => void): Sink;
  exit(code: number): void;
  onSignal(sig: 'SIGTERM' | 'SIGHUP' | 'SIGINT' | 'SIGPIPE', fn: () => void): void;
  env: Record<string, string | undefined>;
  hostname: string;
  pid: number;
  log(line: string): void;
  makeHost(o: HostProxyOptions, c: ContainmentOptions): HostSide;
  /** how this proxy starts its children in a tree (default: ssh, as Subtree does) */
  subtreeLauncher?: Launcher;
}

export function processWorld(): ProxyWorld {
  return {
    input: fdSource(0),
    output: (onFail) => fdSink(1, onFail, growPipe),
    exit: (code) => process.exit(code),
    onSignal: (sig, fn) => process.on(sig, fn),
    env: process.env,
    hostname: os.hostname(),
    pid: process.pid,
    log: (line) => process.stderr.write(line),
    makeHost: (o, c) => new IsolatedProxy(o, c),
  };
}

export async function proxyMain(world: ProxyWorld = processWorld()): Promise<number> {
  const input = world.input;
  const out = world.output(() => shutdown(1));
  if (!input) return 1;
  let proxy: HostSide | undefined;
  let unacked = 0;
  let pausedForWindow = false;
  let outBlocked = false;
  const maybeResume = (): void => {
    if (!outBlocked && !pausedForWindow) proxy?.resumeOutput();
  };
  let nextId = 1;
  const pending = new Map<number, (r: { ok: boolean; value?: unknown }) => void>();
  const decoder = new FrameDecoder();
  let exiting = false;
  /** the proxies this one launches in a tree (--tree-width) */
  let subtree: Subtree | undefined;
  /** our part in the job's barriers: gathered with our children's entries, sent up as one (gather.ts) */
  let gather: BarrierGather | undefined;
  /** joins barrier results that come from the controller (or our parent proxy) in several chunks */
  const joiner = new ChunkJoiner();

  /** Set by the controller's 'shutdown': the orderly close (usage, bye, exit 0) is under way. */
  let orderly = false;
  /** Set once the channel carried bad data: from then on we only kill and leave, and report nothing more. */
  let silenced = false;
  const send = (m: FromProxy): boolean => (silenced ? false : out.write(encodeJson(m)));
  const log = (message: string): void => {
    world.log(`tsmpiexec proxy on ${world.hostname}: ${message}\n`);
  };

  function shutdown(code: number): void {
    if (exiting) return;
    exiting = true;
    if (code !== 0) subtree?.kill();
    proxy?.killAll();
    proxy?.destroyStreams();
    // Bounded: the cgroup kill and cleanup get a moment, the exit is never held hostage.
    void Promise.race([proxy?.close(), new Promise((r) => setTimeout(r, 1500))])
      .then(() => out.finish())
      .then(() => world.exit(code));
    setTimeout(() => world.exit(code), 3000).unref();
  }

  /**
   * Bad data on the channel: the controller can no longer be trusted to hear us right, nor we it. One line on
   * stderr, then kill the ranks and exit without another event: the controller sees the channel end (125,
   * naming this host), not the exits of ranks we killed ourselves (137) or that a torn-down start left (126).
   */
  function badData(why: string): void {
    log(`bad control channel data (${why}); killing my ranks`);
    silenced = true;
    shutdown(1);
  }

  const request = (req: UpstreamRequest): Promise<UpstreamReply> =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      pending.set(id, (r) => (r.ok ? resolve(r.value as UpstreamReply) : reject(new Error(String(r.value)))));
      send({ t: 'request', id, req });
    });

  const upstream: PmiUpstream = {
    barrier: (kvsname, puts) => (gather ? gather.enterOwn(kvsname, puts) : Promise.reject(new Error('no ranks were assigned to this proxy'))),
    publish: async (service, port) => (await request({ op: 'publish', service, port })) as boolean,
    unpublish: async (service) => (await request({ op: 'unpublish', service })) as boolean,
    lookup: async (service) => (await request({ op: 'lookup', service })) as string | undefined,
    spawn: async (req) => (await request({ op: 'spawn', req })) as Awaited<ReturnType<PmiUpstream['spawn']>>,
  };

  const stdinOf = new Map<number, Writable>();
  /** stdin frames that arrive while the ranks are still being set up */
  let earlyStdin: Frame[] = [];
  let ready = false;

  function handle(m: ToProxy): void {
    switch (m.t) {
      case 'assign': {
        gather = new BarrierGather(m.index, !m.tree || m.tree.children.length === 0, {
          up: (kvsname, proxies, puts) => {
            if (silenced) return;
            for (const f of treeFrames({ t: 'gather', kvsname, proxies, puts })) out.write(f);
          },
          down: (children, kvsname, puts, error) => {
            // serialized once, written to each child
            const frames = treeFrames({ t: 'result', kvsname, puts, ...(error !== undefined ? { error } : {}) });
            for (const c of children) subtree?.toChild(c, frames);
          },
        });
        if (m.tree) {
          const g = gather;
          subtree = new Subtree(
            m.tree,
            {
              up: (frame) => out.write(frame),
              failed: (index, message, started) => send({ t: 'child-failed', index, message, started }),
              tree: (index, tm) => {
                if (tm.t !== 'gather') throw new TreeMessageError('a barrier result sent upward');
                g.enterChild(index, tm.kvsname, tm.proxies, tm.puts);
              },
            },
            world.env,
            world.subtreeLauncher,
          );
          subtree.start();
        }
        proxy = world.makeHost({
          host: m.host,
          group: m.group,
          pmiTransport: m.pmiTransport,
          appnum: (r) => m.appnums[r] ?? 0,
          launches: decodeLaunches(m.envs, m.launches),
          upstream,
          debug: m.debug ? log : undefined,
          events: {
            output: (rank, stream, data) => {
              out.write(outputHeader(rank, stream, data.length));
              const ok = out.write(data);
              unacked += data.length;
              if (unacked > OUTPUT_WINDOW) pausedForWindow = true;
              if (!ok && !outBlocked) {
                outBlocked = true;
                out.onDrain(() => {
                  outBlocked = false;
                  maybeResume();
                });
              }
              return !outBlocked && !pausedForWindow;
            },
            outputEnd: (rank, stream) => send({ t: 'output-end', rank, stream }),
            started: (rank, pid) => send({ t: 'started', rank, pid }),
            exited: (rank, outcome) => send({ t: 'exited', rank, outcome }),
            settled: (rank, outcome, pmi) => send({ t: 'settled', rank, outcome, pmi }),
            aborted: (rank, code, message) => send({ t: 'aborted', rank, code, message }),
            pmiError: (rank, message) => send({ t: 'pmi-error', rank, message }),
            pmiLimit: (rank, over) => send({ t: 'pmi-limit', rank, limit: over.limit, max: over.max }),
            notice: (message) => send({ t: 'notice', message }),
          },
        }, {
          ...m.containment,
          jobId: m.jobId,
          notice: (message) => send({ t: 'notice', message }),
          failed: (message) => send({ t: 'failed', message }),
        });
        const p = proxy;
        p.start();
        void p.ready().then(() => {
          ready = true;
          for (const l of m.launches) {
            const w = l.stdin ? p.stdinOf(l.rank) : undefined;
            if (w) stdinOf.set(l.rank, w);
          }
          const queued = earlyStdin;
          earlyStdin = [];
          for (const f of queued) onFrame(f);
        });
        return;
      }
      case 'barrier-plan':
        gather?.plan(m.kvsname, m.self, m.children);
        return;
      case 'spawn-ranks': {
        const p = proxy;
        const launches = decodeLaunches(m.envs, m.launches);
        void (p ? p.addRanks(m.group, launches) : Promise.resolve('no ranks were assigned to this proxy')).then(
          (error) => {
            if (error === undefined) {
              for (const l of launches) {
                const w = l.stdin ? p?.stdinOf(l.rank) : undefined;
                if (w) stdinOf.set(l.rank, w);
              }
            }
            send({ t: 'ranks-added', id: m.id, ...(error !== undefined ? { error } : {}) });
          },
          (e: unknown) => send({ t: 'ranks-added', id: m.id, error: e instanceof Error ? e.message : String(e) }),
        );
        return;
      }
      case 'signal':
        proxy?.signal(m.signal);
        return;
      case 'kill':
        proxy?.killAll();
        return;
      case 'stdin-end':
        if (proxy && !ready) earlyStdin.push({ kind: 'json', value: m });
        else stdinOf.get(m.rank)?.end();
        return;
      case 'output-ack':
        unacked -= m.bytes;
        if (pausedForWindow && unacked < OUTPUT_WINDOW / 2) {
          pausedForWindow = false;
          maybeResume();
        }
        return;
      case 'reply':
        pending.get(m.id)?.({ ok: m.ok, value: m.value });
        pending.delete(m.id);
        return;
      case 'shutdown': {
        orderly = true;
        const p = proxy;
        void (async () => {
          await p?.close();
          await subtree?.close();
          const usage = p?.usage();
          if (usage) send({ t: 'usage', usage });
          send({ t: 'bye' });
          shutdown(0);
        })();
        return;
      }
    }
  }

  function onFrame(f: Frame): void {
    if (f.kind === 'routed') {
      subtree?.route(f.index, f.raw);
    } else if (f.kind === 'tree') {
      try {
        const m = joiner.push(f.value);
        if (m && m.t !== 'result') throw new TreeMessageError('a gathered barrier entry sent downward');
        if (m) {
          if (!gather) throw new TreeMessageError('a barrier result before the assignment');
          gather.result(m.kvsname, m.puts, m.error);
        }
      } catch (e) {
        badData((e as Error).message);
      }
    } else if (f.kind === 'json') {
      // A well-framed message of the wrong shape is as bad as a broken frame: one line, kill our ranks, exit 1.
      const m = f.value as ToProxy | null;
      if (!wellFormed(m)) {
        badData('a malformed message');
        return;
      }
      try {
        handle(m);
      } catch (e) {
        badData((e as Error).message);
      }
    } else if (f.kind === 'stdin') {
      if (proxy && !ready) {
        earlyStdin.push(f);
        return;
      }
      const w = stdinOf.get(f.rank);
      const n = f.data.length;
      if (!w || w.destroyed) {
        send({ t: 'stdin-ack', bytes: n });
        return;
      }
      w.write(f.data, () => send({ t: 'stdin-ack', bytes: n }));
    }
  }

  for (const s of ['SIGTERM', 'SIGHUP', 'SIGINT', 'SIGPIPE'] as const) world.onSignal(s, () => shutdown(1));
  send({ t: 'hello', version: PROTOCOL_VERSION, release: packageVersion(), host: world.hostname, pid: world.pid });
  input.on('data', (chunk: Buffer) => {
    let frames: Frame[];
    try {
      frames = decoder.push(chunk);
    } catch (e) {
      badData((e as Error).message);
      return;
    }
    for (const f of frames) onFrame(f);
  });
  // The channel closed: the controller is gone. Nothing of the job may outlive it. After its 'shutdown' the
  // controller closes the channel at once; the orderly close then ends the proxy (status 0), unless it hangs.
  input.on('end', () => {
    if (!orderly) shutdown(1);
    else setTimeout(() => shutdown(1), 3000).unref();
  });
  input.on('error', () => shutdown(1));
  return new Promise<number>(() => undefined);
}
