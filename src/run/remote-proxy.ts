// The controller's handle on a proxy on another host: starts it through a Launcher (ssh), speaks the framed
// control protocol over the launcher's stdin/stdout, answers the proxy's PMI barrier and name-service
// requests from the KvsService, and turns the proxy's messages back into the same events an in-process
// HostProxy emits. Flow control both ways uses byte windows acknowledged by the other side, so a slow reader
// or a slow rank never blocks the control messages sharing the channel.
import { Writable } from 'node:stream';
import { FrameDecoder, encodeJson, stdinHeader, type Frame } from '../control/frame.js';
import { PROTOCOL_VERSION, type FromProxy, type ToProxy, type UpstreamRequest } from '../control/messages.js';
import type { Launcher, LaunchedProxy } from '../launch/launcher.js';
import type { KvsService } from '../pmi/kvs-service.js';
import type { SpawnRequest, SpawnResult } from '../pmi/types.js';
import type { ProxyEvents, ProxyHandle } from './proxy-handle.js';
import type { HostUsage } from '../model/types.js';

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

export interface RemoteProxyOptions {
  index: number;
  host: string;
  launcher: Launcher;
  proxyArgv: string[];
  env: Record<string, string | undefined>;
  assign: Extract<ToProxy, { t: 'assign' }>;
  events: ProxyEvents;
  kvs: KvsService;
  spawn(req: SpawnRequest): Promise<SpawnResult>;
  launchTimeoutMs: number;
  gate: Gate;
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

  constructor(private readonly o: RemoteProxyOptions) {
    this.host = o.host;
  }

  private send(m: ToProxy): void {
    const w = this.lp?.child.stdin;
    if (w && !w.destroyed) w.write(encodeJson(m));
  }

  start(): void {
    void this.o.gate.acquire().then((release) => this.launch(release));
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
      let frames: Frame[];
      try {
        frames = decoder.push(chunk);
      } catch (e) {
        this.lost(`garbled control channel (${(e as Error).message})`);
        child.kill('SIGKILL');
        return;
      }
      for (const f of frames) {
        if (!this.helloSeen) {
          const m = f.kind === 'json' ? (f.value as FromProxy) : undefined;
          if (m?.t !== 'hello' || m.version !== PROTOCOL_VERSION) {
            clearTimeout(timer);
            release();
            this.fail(m?.t === 'hello' ? `proxy speaks protocol ${m.version}, expected ${PROTOCOL_VERSION} (different tsmpiexec versions?)` : 'the proxy did not say hello', lp);
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
    const tail = lp.stderrTail();
    const detail = tail.length > 0 ? tail[tail.length - 1] : undefined;
    this.o.events.launchFailed(detail ? `${reason}: ${detail}` : reason);
  }

  private lost(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.flushReady();
    this.o.events.lost(reason);
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
    if (f.kind !== 'json') return;
    const m = f.value as FromProxy;
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
      case 'hello':
      case 'bye':
        return;
    }
  }

  private async answer(id: number, req: UpstreamRequest): Promise<void> {
    const { kvs } = this.o;
    try {
      let value: unknown;
      switch (req.op) {
        case 'barrier':
          value = await kvs.enter(req.kvsname, this.o.index, req.puts);
          break;
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
    if (!this.o.assign.launches.some((l) => l.rank === rank && l.stdin)) return undefined;
    let w = this.stdins.get(rank);
    if (w) return w;
    w = new Writable({
      highWaterMark: 1 << 20,
      write: (chunk: Buffer, _enc, cb) => {
        const go = (): void => {
          const ch = this.lp?.child.stdin;
          if (!ch || ch.destroyed || this.ended) return cb();
          ch.write(stdinHeader(rank, chunk.length));
          ch.write(chunk);
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
