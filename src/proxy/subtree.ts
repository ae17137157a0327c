// A proxy's launch duties in a tree (--tree-width): it starts its child proxies over ssh from its own host,
// so a large host list does not serialize on the login node, and relays frames: everything a child (or one
// of its descendants) sends goes up wrapped with that proxy's index; frames routed to a descendant go down to
// the child whose subtree holds it. It never parses what it forwards. Barrier messages (frame kind 5) are the
// exception: they are for this proxy, which gathers them (gather.ts), and never relayed.
import { FRAME, FrameDecoder, FrameError, decodeFrame, routedFrame } from '../control/frame.js';
import { ChunkJoiner, TreeMessageError, type TreeMessage } from '../control/barrier-chunks.js';
import type { TreeDuty } from '../control/messages.js';
import type { LaunchedProxy, Launcher } from '../launch/launcher.js';
import { SshLauncher } from '../launch/ssh.js';
import { Gate } from '../run/remote-proxy.js';

interface Child {
  index: number;
  host: string;
  subtree: Set<number>;
  lp?: LaunchedProxy;
  up: boolean;
  done: boolean;
  exited: Promise<void>;
}

export interface SubtreeEvents {
  /** bytes for our parent (already routed) */
  up(frame: Buffer): void;
  failed(index: number, message: string, started: boolean): void;
  /** a barrier message from child `index` (its subtree's gathered entry); throws TreeMessageError if it cannot be */
  tree(index: number, m: TreeMessage): void;
}

export class Subtree {
  private readonly children: Child[];
  private readonly gate = new Gate(8);

  constructor(
    private readonly duty: TreeDuty,
    private readonly ev: SubtreeEvents,
    private readonly env: Record<string, string | undefined>,
    /** default: ssh with the duty's launcherExec (the scale model passes an in-memory one) */
    private readonly launcher?: Launcher,
  ) {
    this.children = duty.children.map((c) => ({ index: c.index, host: c.host, subtree: new Set([c.index, ...c.subtree]), up: false, done: false, exited: Promise.resolve() }));
  }

  start(): void {
    const launcher = this.launcher ?? new SshLauncher(this.duty.launcherExec);
    for (const c of this.children) {
      void this.gate.acquire().then((release) => this.launch(c, launcher, release));
    }
  }

  private launch(c: Child, launcher: Launcher, release: () => void): void {
    const lp = launcher.start(c.host, this.duty.proxyArgv, this.env);
    c.lp = lp;
    const child = lp.child;
    c.exited = new Promise((resolve) => child.once('close', () => resolve()));
    const decoder = new FrameDecoder();
    const joiner = new ChunkJoiner();
    const timer = setTimeout(() => {
      if (!c.up) {
        this.fail(c, `no answer from the proxy within ${Math.round(this.duty.launchTimeoutMs / 1000)} s`, false);
        child.kill('SIGKILL');
      }
    }, this.duty.launchTimeoutMs);
    child.stdin?.on('error', () => undefined);
    child.once('error', (e) => this.fail(c, `cannot run the launcher: ${e.message}`, false));
    child.stdout?.on('data', (chunk: Buffer) => {
      let frames: Buffer[];
      try {
        frames = decoder.pushRaw(chunk);
      } catch (e) {
        this.fail(c, `garbled control channel (${(e as FrameError).message})`, c.up);
        child.kill('SIGKILL');
        return;
      }
      for (const f of frames) {
        if (!c.up) {
          c.up = true;
          clearTimeout(timer);
          release();
        }
        const kind = f.readUInt8(4);
        if (kind === FRAME.TREE) {
          try {
            const d = decodeFrame(f);
            const m = d.kind === 'tree' ? joiner.push(d.value) : undefined;
            if (m) this.ev.tree(c.index, m);
          } catch (e) {
            if (!(e instanceof FrameError || e instanceof TreeMessageError)) throw e;
            this.fail(c, `garbled control channel (${e.message})`, true);
            child.kill('SIGKILL');
            return;
          }
          continue;
        }
        // a descendant's frame is already routed; the child's own gets its index
        this.ev.up(kind === FRAME.ROUTED ? f : routedFrame(c.index, f));
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      release();
      const tail = lp.stderrTail();
      const detail = tail.length > 0 ? `: ${tail[tail.length - 1]}` : '';
      if (!c.up) this.fail(c, `${signal ? `the launcher was killed by ${signal}` : `the launcher exited with code ${code}`}${detail}`, false);
      else if (!c.done) this.fail(c, `the connection to the proxy closed${detail}`, true);
    });
  }

  private fail(c: Child, message: string, started: boolean): void {
    if (c.done) return;
    c.done = true;
    // the child and every proxy below it are gone with it
    for (const i of c.subtree) this.ev.failed(i, i === c.index ? message : `its parent proxy on ${c.host} failed: ${message}`, started);
  }

  /** A frame from our parent for proxy `index`, somewhere below us. */
  route(index: number, raw: Buffer): void {
    const c = this.children.find((x) => x.subtree.has(index));
    const w = c?.lp?.child.stdin;
    if (!c || !w || w.destroyed) return;
    w.write(index === c.index ? raw : routedFrame(index, raw));
  }

  /** Frames (barrier results) for child `index` itself, not routed. */
  toChild(index: number, frames: Buffer[]): void {
    const w = this.children.find((x) => x.index === index)?.lp?.child.stdin;
    if (!w || w.destroyed) return;
    for (const f of frames) w.write(f);
  }

  /** The job is over: the children got their own shutdown; wait (bounded) for them to go. */
  async close(): Promise<void> {
    for (const c of this.children) c.done = true;
    await Promise.race([Promise.all(this.children.map((c) => c.exited)), new Promise((r) => setTimeout(r, 3000))]);
    for (const c of this.children) c.lp?.child.kill('SIGKILL');
  }

  /** Our own channel is gone: take everything below us down now. */
  kill(): void {
    for (const c of this.children) {
      c.done = true;
      c.lp?.child.stdin?.destroy();
      c.lp?.child.kill('SIGTERM');
    }
  }
}
