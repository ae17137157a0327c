// The controller's handle on a proxy on another host: starts it through a Launcher (ssh), speaks the framed
// control protocol over the launcher's stdin/stdout, answers the proxy's PMI barrier and name-service
// requests from the KvsService, and turns the proxy's messages back into the same events an in-process
// HostProxy emits. Flow control both ways uses byte windows acknowledged by the other side, so a slow reader
// or a slow rank never blocks the control messages sharing the channel. Barriers come as gathered entries
// (frame kind 5): a first-level proxy of a launch tree enters for its whole subtree, and gets the result once.
import { Writable } from 'node:stream';
import { FrameDecoder, decodeFrame, encodeJson, routedFrame, stdinHeader, type Frame } from '../control/frame.js';
import { ChunkJoiner, TreeMessageError, treeFrames, type TreeMessage } from '../control/barrier-chunks.js';
import { packageVersion } from '../util/package-root.js';
import { PROTOCOL_VERSION, type FromProxy, type ToProxy, type UpstreamRequest } from '../control/messages.js';
import type { Launcher, LaunchedProxy } from '../launch/launcher.js';
import type { KvsService } from '../pmi/kvs-service.js';
import type { PmiGroupInfo, SpawnRequest, SpawnResult } from '../pmi/types.js';
import type { RankLaunch } from '../proxy/rank-process.js';
import { encodeLaunches } from './assign.js';
import type { ProxyEvents, ProxyHandle } from './proxy-handle.js';
import type { HostUsage } from '../model/types.js';

/** The one line for a proxy of another protocol version: both tsmpiexec versions, and what to do. */
export function protocolMismatch(version: number, release: string | undefined): string {
  const theirs = release === undefined ? '' : ` (tsmpiexec ${release})`;
  return `proxy speaks protocol ${version}${theirs}, expected ${PROTOCOL_VERSION} (tsmpiexec ${packageVersion()}): install the same tsmpiexec on every host`;
}

const STDIN_WINDOW = 4 << 20;

/** Bounded launch concurrency (sshd's MaxStartups throttles at 10 unauthenticated connections). */
export class Gate {
  private active = 0;
  private queue: Array<() => void> = [];
  constructor(private readonly limit: number) {}
  acquire(): Promise<() => void> {
    return new Promise((resolve) => {
      const grant = (): void => {
        this.active++;
        let released = false;
        resolve(() => {
          if (released) return;
          released = true;
          this.active--;
          this.queue.shift()?.();
        });
      };
      if (this.active < this.limit) grant();
      else this.queue.push(grant);
    });
  }
}

/** A proxy started by another proxy of the tree: frames to and from it travel routed through `top`. */
export interface Routed {
  /** the first-level proxy (started by us) whose subtree holds this one */
  top: RemoteProxy;
  /** how deep in the tree (1 = a child of a first-level proxy); scales the launch deadline */
  depth: number;
}

/** Every remote proxy of a job by index, so routed frames find their handle. */
export type ProxyRegistry = Map<number, RemoteProxy>;

/**
 * A completed barrier's pairs, serialized once for all the proxies that get them: KvsService hands every
 * proxy of an epoch the same array, so its frames are kept by that array (and go with it).
 */
const resultFrames = new WeakMap<Array<[string, string]>, Buffer[]>();

/** Bytes the controller wrote to and read from the channels of its proxies (--verbose, --timing, bench). */
export interface ChannelTraffic {
  written: number;
  read: number;
}

export interface RemoteProxyOptions {
  index: number;
  host: string;
  launcher: Launcher;
  /** set for a proxy that another proxy launches (tree launch); `launcher` is then unused */
  routed?: Routed;
  registry?: ProxyRegistry;
  proxyArgv: string[];
  env: Record<string, string | undefined>;
  assign: Extract<ToProxy, { t: 'assign' }>;
  events: ProxyEvents;
  kvs: KvsService;
  spawn(req: SpawnRequest): Promise<SpawnResult>;
  launchTimeoutMs: number;
  gate: Gate;
  /** counts the bytes of this proxy's own channel (a routed proxy's go through its first-level proxy's) */
  traffic?: ChannelTraffic;
}

export class RemoteProxy implements ProxyHandle {
  readonly host: string;
  private lp: LaunchedProxy | undefined;
  private helloSeen = false;
  private closing = false;
  private ended = false;
  private pendingAck = 0;
  private blocked = false;
  private stdinInflight = 0;
  private stdinWaiters: Array<() => void> = [];
  private readonly stdins = new Map<number, Writable>();
  private exitPromise: Promise<void> | undefined;
  private usageResult: HostUsage | undefined;
  /** Work waiting for the proxy to be assigned its ranks (stdin that arrives before the proxy is up). */
  private readyWaiters: Array<() => void> = [];
  /** Proxies below this one in the tree (only for a first-level proxy): they close before it does. */
  readonly below: RemoteProxy[] = [];
  private goneResolve!: () => void;
  /** Resolves when the proxy said bye, failed or was lost. */
  readonly gone = new Promise<void>((r) => (this.goneResolve = r));
  private routedTimer: NodeJS.Timeout | undefined;
  /** joins gathered barrier entries that come in several chunks */
  private readonly joiner = new ChunkJoiner();
  /** The proxies a gathered entry of this one may speak for: itself and everything below it. */
  private speaksFor: Set<number> | undefined;

  /** Ranks that read stdin (looked up for every stdinOf). */
  private readonly stdinRanks: Set<number>;

  constructor(private readonly o: RemoteProxyOptions) {
    this.host = o.host;
    this.stdinRanks = new Set(o.assign.launches.filter((l) => l.stdin).map((l) => l.rank));
    o.registry?.set(o.index, this);
    o.routed?.top.below.push(this);
  }

  /** Write whole frames (given as consecutive pieces) to the proxy, directly or routed through the tree. */
  private sendRaw(...pieces: Buffer[]): void {
    if (this.o.routed) {
      this.o.routed.top.sendRaw(routedFrame(this.o.index, pieces.length === 1 ? (pieces[0] as Buffer) : Buffer.concat(pieces)));
      return;
    }
    const w = this.lp?.child.stdin;
    if (w && !w.destroyed) {
      for (const p of pieces) {
        w.write(p);
        if (this.o.traffic) this.o.traffic.written += p.length;
      }
    }
  }

  private send(m: ToProxy): void {
    this.sendRaw(encodeJson(m));
  }

  start(): void {
    if (this.o.routed) {
      // its parent proxy launches it; we only bound how long that may take
      const ms = this.o.launchTimeoutMs * (this.o.routed.depth + 1);
      this.routedTimer = setTimeout(() => {
        if (!this.helloSeen) this.failWith(`no answer from the proxy within ${Math.round(ms / 1000)} s (started by another proxy of the tree)`);
      }, ms);
      return;
    }
    void this.o.gate.acquire().then((release) => this.launch(release));
  }

  /** A frame that reached us through the tree. */
  routedIn(f: Frame): void {
    if (this.ended) return;
    if (!this.helloSeen) {
      const m = f.kind === 'json' ? (f.value as FromProxy) : undefined;
      if (m?.t !== 'hello' || m.version !== PROTOCOL_VERSION) {
        this.failWith(m?.t === 'hello' ? protocolMismatch(m.version, m.release) : 'the proxy did not say hello');
        return;
      }
      this.helloSeen = true;
      clearTimeout(this.routedTimer);
      this.send(this.o.assign);
      this.flushReady();
      return;
    }
    this.onFrame(f);
  }

  /** Its parent proxy reports that it never came up, or went away. */
  remoteFailure(message: string, started: boolean): void {
    clearTimeout(this.routedTimer);
    if (started || this.helloSeen) this.lost(message);
    else this.failWith(message);
  }

  private failWith(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.flushReady();
    this.goneResolve();
    this.o.events.launchFailed(reason);
  }

  private launch(release: () => void): void {
    const { o } = this;
    if (this.closing) return release();
    const lp = o.launcher.start(o.host, o.proxyArgv, o.env);
    this.lp = lp;
    const child = lp.child;
    const decoder = new FrameDecoder();
    const timer = setTimeout(() => {
      if (this.helloSeen) return;
      release();
      this.fail(`no answer from the proxy within ${Math.round(o.launchTimeoutMs / 1000)} s`, lp);
      child.kill('SIGKILL');
    }, o.launchTimeoutMs);
    this.exitPromise = new Promise((resolve) => child.once('close', () => resolve()));
    child.stdin?.on('error', () => undefined);
    child.once('error', (e) => {
      clearTimeout(timer);
      release();
      this.fail(`cannot run the launcher: ${e.message}`, lp);
    });
    child.stdout?.on('data', (chunk: Buffer) => {
      if (o.traffic) o.traffic.read += chunk.length;
      let frames: Frame[];
      try {
        frames = decoder.push(chunk);
      } catch (e) {
        this.lost(`garbled control channel (${(e as Error).message})`);
        child.kill('SIGKILL');
        return;
      }
      for (const f of frames) {
        if (f.kind === 'routed') {
          // from a proxy below us in the tree
          try {
            o.registry?.get(f.index)?.routedIn(decodeFrame(f.raw));
          } catch {
            o.registry?.get(f.index)?.lost('garbled routed frame');
          }
          continue;
        }
        if (!this.helloSeen) {
          const m = f.kind === 'json' ? (f.value as FromProxy) : undefined;
          if (m?.t !== 'hello' || m.version !== PROTOCOL_VERSION) {
            clearTimeout(timer);
            release();
            this.fail(m?.t === 'hello' ? protocolMismatch(m.version, m.release) : 'the proxy did not say hello', lp);
            child.kill('SIGKILL');
            return;
          }
          this.helloSeen = true;
          clearTimeout(timer);
          release();
          this.send(this.o.assign);
          this.flushReady();
          continue;
        }
        this.onFrame(f);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      release();
      if (!this.helloSeen) this.fail(signal ? `the launcher was killed by ${signal}` : `the launcher exited with code ${code}`, lp);
      else if (!this.closing) this.lost(`the connection to the proxy closed${lastLine(lp)}`);
    });
  }

  private flushReady(): void {
    const ws = this.readyWaiters;
    this.readyWaiters = [];
    for (const w of ws) w();
  }

  private fail(reason: string, lp: LaunchedProxy): void {
    if (this.ended) return;
    this.ended = true;
    this.flushReady();
    this.goneResolve();
    const tail = lp.stderrTail();
    const detail = tail.length > 0 ? tail[tail.length - 1] : undefined;
    this.o.events.launchFailed(detail ? `${reason}: ${detail}` : reason);
    for (const b of this.below) b.remoteFailure(`its parent proxy on ${this.host} did not start`, false);
  }

  lost(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.flushReady();
    this.goneResolve();
    this.o.events.lost(reason);
    for (const b of this.below) if (!this.closing) b.remoteFailure(`its parent proxy on ${this.host} was lost: ${reason}`, true);
  }

  private onFrame(f: Frame): void {
    const ev = this.o.events;
    if (f.kind === 'output') {
      const ok = ev.output(f.rank, f.stream, f.data);
      if (ok && !this.blocked) this.send({ t: 'output-ack', bytes: f.data.length });
      else {
        this.blocked = true;
        this.pendingAck += f.data.length;
      }
      return;
    }
    if (f.kind === 'tree') {
      let m: TreeMessage | undefined;
      try {
        m = this.joiner.push(f.value);
        if (m && m.t !== 'gather') throw new TreeMessageError('a barrier result sent upward');
        if (m && this.o.routed) throw new TreeMessageError('a gathered barrier entry past its parent proxy');
        if (m && !m.proxies.every((i) => this.subtreeHas(i))) throw new TreeMessageError('a barrier entry for proxies outside its subtree');
      } catch (e) {
        this.lost(`it sent ${(e as Error).message}`);
        this.lp?.child.kill('SIGKILL');
        return;
      }
      if (m?.t === 'gather') void this.gathered(m.kvsname, m.proxies, m.puts);
      return;
    }
    if (f.kind !== 'json') return;
    const m = f.value as FromProxy;
    if (typeof m !== 'object' || m === null || typeof (m as { t?: unknown }).t !== 'string') {
      this.lost('it sent a malformed message');
      this.lp?.child.kill('SIGKILL');
      return;
    }
    switch (m.t) {
      case 'started':
        ev.started(m.rank, m.pid);
        return;
      case 'output-end':
        ev.outputEnd(m.rank, m.stream);
        return;
      case 'exited':
        ev.exited(m.rank, m.outcome);
        return;
      case 'settled':
        ev.settled(m.rank, m.outcome, m.pmi);
        return;
      case 'aborted':
        ev.aborted(m.rank, m.code, m.message);
        return;
      case 'pmi-error':
        ev.pmiError(m.rank, m.message);
        return;
      case 'pmi-limit':
        ev.pmiLimit(m.rank, { limit: m.limit, max: m.max });
        return;
      case 'stdin-ack':
        this.stdinInflight -= m.bytes;
        if (this.stdinInflight < STDIN_WINDOW) {
          const ws = this.stdinWaiters;
          this.stdinWaiters = [];
          for (const w of ws) w();
        }
        return;
      case 'request':
        void this.answer(m.id, m.req);
        return;
      case 'notice':
        ev.notice(m.message);
        return;
      case 'failed':
        if (!this.ended) {
          this.ended = true;
          ev.launchFailed(m.message);
        }
        return;
      case 'usage':
        this.usageResult = m.usage;
        return;
      case 'ranks-added': {
        const w = this.addWaiters.get(m.id);
        this.addWaiters.delete(m.id);
        w?.(typeof m.error === 'string' ? m.error : undefined);
        return;
      }
      case 'child-failed':
        this.o.registry?.get(m.index)?.remoteFailure(m.message, m.started);
        return;
      case 'bye':
        this.goneResolve();
        return;
      case 'hello':
        return;
    }
  }

  private subtreeHas(index: number): boolean {
    if (!this.speaksFor) {
      const below = this.o.assign.tree?.children.flatMap((c) => [c.index, ...c.subtree]) ?? [];
      this.speaksFor = new Set([this.o.index, ...below]);
    }
    return this.speaksFor.has(index);
  }

  /** A gathered barrier entry: these proxies (this one's subtree) entered; the result goes back once. */
  private async gathered(kvsname: string, proxies: number[], puts: Array<[string, string]>): Promise<void> {
    let frames: Buffer[];
    try {
      const pairs = await this.o.kvs.enterMany(kvsname, proxies, puts);
      frames = resultFrames.get(pairs) ?? treeFrames({ t: 'result', kvsname, puts: pairs });
      resultFrames.set(pairs, frames);
    } catch (e) {
      frames = treeFrames({ t: 'result', kvsname, puts: [], error: (e as Error).message });
    }
    if (this.ended) return;
    this.sendRaw(...frames);
  }

  /**
   * The barriers of group `kvsname` are entered by the proxies in `participants`. A proxy that launched others
   * is told which of its children (and whether itself) take part, before any of the group's ranks start; the
   * others need not know. Sent after the assignment (queued until the proxy is up).
   */
  barrierGroup(kvsname: string, participants: ReadonlySet<number>): void {
    const kids = this.o.assign.tree?.children;
    if (!kids || kids.length === 0) return;
    const children = kids.filter((c) => participants.has(c.index) || c.subtree.some((i) => participants.has(i))).map((c) => c.index);
    const self = participants.has(this.o.index);
    if (!self && children.length === 0) return;
    const go = (): void => {
      if (!this.ended) this.send({ t: 'barrier-plan', kvsname, self, children });
    };
    if (this.helloSeen || this.ended) go();
    else this.readyWaiters.push(go);
  }

  private async answer(id: number, req: UpstreamRequest): Promise<void> {
    const { kvs } = this.o;
    try {
      let value: unknown;
      switch (req.op) {
        case 'publish':
          value = kvs.publish(req.service, req.port);
          break;
        case 'unpublish':
          value = kvs.unpublish(req.service);
          break;
        case 'lookup':
          value = kvs.lookup(req.service);
          break;
        case 'spawn':
          value = await this.o.spawn(req.req);
          break;
      }
      this.send({ t: 'reply', id, ok: true, value });
    } catch (e) {
      this.send({ t: 'reply', id, ok: false, value: (e as Error).message });
    }
  }

  signal(sig: NodeJS.Signals): void {
    this.send({ t: 'signal', signal: sig });
  }

  private nextAddId = 1;
  private readonly addWaiters = new Map<number, (error: string | undefined) => void>();

  addRanks(group: PmiGroupInfo, launches: RankLaunch[]): Promise<string | undefined> {
    if (this.ended || this.closing) return Promise.resolve(`the proxy on ${this.host} is not running`);
    const id = this.nextAddId++;
    const { envs, launches: wire } = encodeLaunches(launches);
    for (const l of launches) if (l.stdin) this.stdinRanks.add(l.rank);
    return new Promise((resolve) => {
      this.addWaiters.set(id, resolve);
      void this.gone.then(() => {
        if (this.addWaiters.delete(id)) resolve(`the proxy on ${this.host} went away`);
      });
      // A spawn may come before this proxy is up (a rank elsewhere spawns during a tree launch): after assign.
      const go = (): void => {
        if (!this.ended) this.send({ t: 'spawn-ranks', id, group, envs, launches: wire });
      };
      if (this.helloSeen || this.ended) go();
      else this.readyWaiters.push(go);
    });
  }

  killAll(): void {
    this.send({ t: 'kill' });
  }

  resumeOutput(): void {
    if (!this.blocked) return;
    this.blocked = false;
    if (this.pendingAck > 0) this.send({ t: 'output-ack', bytes: this.pendingAck });
    this.pendingAck = 0;
  }

  stdinOf(rank: number): Writable | undefined {
    if (!this.stdinRanks.has(rank)) return undefined;
    let w = this.stdins.get(rank);
    if (w) return w;
    w = new Writable({
      highWaterMark: 1 << 20,
      write: (chunk: Buffer, _enc, cb) => {
        const go = (): void => {
          if (this.ended) return cb();
          this.sendRaw(stdinHeader(rank, chunk.length), chunk);
          this.stdinInflight += chunk.length;
          if (this.stdinInflight < STDIN_WINDOW) cb();
          else this.stdinWaiters.push(() => cb());
        };
        if (this.helloSeen || this.ended) go();
        else this.readyWaiters.push(go);
      },
      final: (cb) => {
        const go = (): void => {
          this.send({ t: 'stdin-end', rank });
          cb();
        };
        if (this.helloSeen || this.ended) go();
        else this.readyWaiters.push(go);
      },
    });
    this.stdins.set(rank, w);
    return w;
  }

  destroyStreams(): void {
    for (const w of this.stdins.values()) w.destroy();
  }

  usage(): HostUsage | undefined {
    return this.usageResult;
  }

  /** The job is over: ask the proxy to clean up and exit, then make sure the launcher is gone. */
  async close(): Promise<void> {
    this.closing = true;
    if (this.o.routed) {
      if (this.ended) return;
      this.send({ t: 'shutdown' });
      let t: NodeJS.Timeout | undefined;
      await Promise.race([this.gone, new Promise((r) => (t = setTimeout(r, 3000)))]);
      clearTimeout(t);
      return;
    }
    // the proxies below go first: they report through us
    if (this.below.length > 0) {
      let t: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all(this.below.map((b) => b.gone)), new Promise((r) => (t = setTimeout(r, 5000)))]);
      clearTimeout(t);
    }
    const child = this.lp?.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    this.send({ t: 'shutdown' });
    child.stdin?.end();
    const t = setTimeout(() => child.kill('SIGKILL'), 3000);
    await this.exitPromise;
    clearTimeout(t);
  }
}

function lastLine(lp: LaunchedProxy): string {
  const t = lp.stderrTail();
  return t.length > 0 ? `: ${t[t.length - 1]}` : '';
}
