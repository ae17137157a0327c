// Listening PMI endpoints for ranks that find their server through PMI_PORT instead of an inherited PMI_FD
// (pmi-wire.md §1.1, isolation.md §3.3): one per proxy, serving that proxy's ranks only, feeding a PmiServer.
//
// TCP (`PMI_PORT=127.0.0.1:<port>`, what MPICH and Slurm's libpmi2 can read): bound to 127.0.0.1 only, port 0.
// Every accepted connection stays paused (pauseOnConnect: not one byte read) until the kernel's socket tables say
// the client socket belongs to our own uid (peer-uid.ts); anything else is closed with one notice line.
//
// UNIX (`PMI_PORT=unix:///path`, our own clients only: no MPICH release parses it): a socket file in a fresh
// mkdtemp directory (0700, owner and mode lstat-checked right before bind), never an abstract name (those have
// no permission check at all). Where the directory goes: the ranks may run in a private /tmp (a mount namespace
// set up by src/isolate), where a socket under the host's /tmp is invisible. So prefer $XDG_RUNTIME_DIR (per-user,
// 0700, outside /tmp, exactly what it is for), then /run/user/<uid> (the same place when the variable was not
// passed down, e.g. over ssh), and only then os.tmpdir(), which is where it must go when neither exists (root,
// containers) and which still works whenever the ranks share our /tmp (no namespace, or the proxy itself runs
// inside the job's pod). A proxy that knows its ranks' view of the file system better passes socketBase (where to
// bind) and rankSocketBase (the same directory as the ranks name it).
//
// Both: a connection must complete its handshake (initack for PMI-1, fullinit for PMI-2: the moment the
// PmiServer knows its rank) within handshakeTimeoutMs or it is dropped; each PMI id may connect once (the
// PmiServer refuses a second claim); once every expected id has connected the endpoint stops listening, since
// nobody else may connect anyway.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { checkTcpPeer, systemPeerDeps, type PeerCheckDeps, type PeerVerdict } from './peer-uid.js';
import type { PmiConnIo, PmiRankInfo } from './types.js';
import { assertPrivateDir, uidNow } from '../util/private-dir.js';

/** What the endpoint needs of the PMI engine (PmiServer has all of it). */
export interface PmiEngineForEndpoint {
  attach(connId: number, io: PmiConnIo, rank?: PmiRankInfo): void;
  data(connId: number, chunk: Buffer): void;
  detach(connId: number): void;
  identity(connId: number): PmiRankInfo | undefined;
}

export interface PmiEndpointOptions {
  kind: 'tcp' | 'unix';
  engine: PmiEngineForEndpoint;
  /** How many distinct PMI ids will connect (this proxy's ranks); listening stops once all have. */
  expected: number;
  /** One line per refused or dropped connection (already rate-limited here). */
  notice(line: string): void;
  /** Default 5000 ms. */
  handshakeTimeoutMs?: number;
  /** Connections still in their handshake at once; more are refused. Default 64. */
  maxPending?: number;
  /** First connection id handed to the engine (keep clear of ids used elsewhere). Default 1e9. */
  firstConnId?: number;
  /** unix: the directory to create the private socket directory in (default: socketBaseCandidates()). */
  socketBase?: string;
  /**
   * unix: the same directory as the ranks see it, when their view differs from ours (e.g. socketBase is
   * /proc/<pid>/root/tmp, the private /tmp of the ranks' mount namespace, which they see as /tmp).
   */
  rankSocketBase?: string;
  /** unix: environment for the XDG_RUNTIME_DIR lookup (default process.env). */
  env?: Record<string, string | undefined>;
  /** tcp: how peers are checked (tests inject /proc contents). */
  peerDeps?: PeerCheckDeps;
}

export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 5000;
const DEFAULT_MAX_PENDING = 64;
/** Refusal notices shown per endpoint before we go quiet (a port scan must not flood the user's terminal). */
const MAX_NOTICES = 10;
/** Longest sun_path Linux accepts for a path name (108 bytes with the NUL). */
const SUN_PATH_MAX = 107;

interface ConnRec {
  id: number;
  sock: net.Socket;
  peer: string;
  bound: boolean;
  timer: NodeJS.Timeout | undefined;
  closed: Promise<void>;
}


/** Whether `dir` is a real directory we own that nobody else can write to (a per-user runtime dir). */
function privateDirUsable(dir: string, uid: number): boolean {
  if (!path.isAbsolute(dir)) return false;
  try {
    const st = fs.lstatSync(dir);
    if (!st.isDirectory() || st.isSymbolicLink() || st.uid !== uid || (st.mode & 0o022) !== 0) return false;
    fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function rootOnlyDir(dir: string): boolean {
  try {
    const st = fs.lstatSync(dir);
    return st.isDirectory() && st.uid === 0 && (st.mode & 0o022) === 0;
  } catch {
    return false;
  }
}

/** Where the UNIX socket's private directory goes, best first (see the module header for why). */
/** Where ranks with a private /tmp and /dev/shm (src/isolate) see their own directories, not the host's. */
const HIDDEN_FROM_RANKS = ['/tmp', '/dev/shm'];

export function socketBaseCandidates(env: Record<string, string | undefined>, uid: number = uidNow()): string[] {
  const out: string[] = [];
  const xdg = env.XDG_RUNTIME_DIR;
  // a runtime directory under /tmp or /dev/shm is hidden from ranks that have a private /tmp and /dev/shm
  const hidden = xdg !== undefined && HIDDEN_FROM_RANKS.some((r) => xdg === r || xdg.startsWith(`${r}/`));
  if (xdg !== undefined && xdg !== '' && !hidden && privateDirUsable(xdg, uid)) out.push(xdg);
  const runUser = `/run/user/${uid}`;
  if (!out.includes(runUser) && privateDirUsable(runUser, uid)) out.push(runUser);
  // root without a runtime dir: /run (root-owned, not world-writable) is outside the private /tmp too
  if (uid === 0 && rootOnlyDir('/run')) out.push('/run');
  out.push(os.tmpdir());
  return out;
}

/** mkdtemp a 0700 directory in `base`, then insist (lstat) that it is ours, a directory, and 0700. */
export function makePrivateDir(base: string, uid: number = uidNow()): string {
  const dir = fs.mkdtempSync(path.join(base, 'tsmpi-pmi-'));
  try {
    fs.chmodSync(dir, 0o700);
    assertPrivateDir(dir, uid);
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return dir;
}


function listen(server: net.Server, opts: net.ListenOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error): void => reject(e);
    server.once('error', onError);
    server.listen(opts, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

export class PmiEndpoint {
  /** The PMI_PORT value ranks get. */
  readonly port: string;
  /** unix: the private directory holding the socket (removed by close()). */
  readonly socketDir: string | undefined;
  readonly socketPath: string | undefined;
  private readonly conns = new Map<number, ConnRec>();
  private nextId: number;
  private pending = 0;
  private boundCount = 0;
  private notices = 0;
  private listening = true;
  private closing = false;

  private constructor(
    private readonly o: PmiEndpointOptions,
    private readonly server: net.Server,
    port: string,
    socketDir: string | undefined,
    socketPath: string | undefined,
    private readonly peerDeps: PeerCheckDeps | undefined,
  ) {
    this.port = port;
    this.socketDir = socketDir;
    this.socketPath = socketPath;
    this.nextId = o.firstConnId ?? 1_000_000_000;
    server.on('connection', (s: net.Socket) => this.onConnection(s));
    // After a successful listen an error here means the listening socket broke; ranks not yet connected will
    // fail their connect and the job reports them.
    server.on('error', (e: Error) => this.say(`PMI endpoint ${this.port} failed: ${e.message}`));
  }

  static async open(o: PmiEndpointOptions): Promise<PmiEndpoint> {
    if (o.kind === 'tcp') {
      const peerDeps = o.peerDeps ?? systemPeerDeps();
      const server = net.createServer({ pauseOnConnect: true });
      await listen(server, { host: '127.0.0.1', port: 0, exclusive: true });
      const addr = server.address();
      if (addr === null || typeof addr === 'string') {
        server.close();
        throw new Error('the PMI TCP socket has no port');
      }
      return new PmiEndpoint(o, server, `${addr.address}:${addr.port}`, undefined, undefined, peerDeps);
    }
    const uid = uidNow();
    const bases = o.socketBase !== undefined ? [o.socketBase] : socketBaseCandidates(o.env ?? process.env, uid);
    const problems: string[] = [];
    for (const base of bases) {
      let dir: string | undefined;
      try {
        dir = makePrivateDir(base, uid);
        const sockPath = path.join(dir, 'pmi.sock');
        if (Buffer.byteLength(sockPath) > SUN_PATH_MAX) throw new Error(`socket path ${sockPath} is longer than ${SUN_PATH_MAX} bytes`);
        const server = net.createServer({ pauseOnConnect: true });
        assertPrivateDir(dir, uid); // again, right before bind
        await listen(server, { path: sockPath, exclusive: true });
        // The directory is the protection; a 0600 socket is defence in depth should its mode ever be loosened.
        fs.chmodSync(sockPath, 0o600);
        const seen = o.rankSocketBase !== undefined && o.socketBase !== undefined ? path.join(o.rankSocketBase, path.relative(o.socketBase, sockPath)) : sockPath;
        return new PmiEndpoint(o, server, `unix://${seen}`, dir, sockPath, undefined);
      } catch (e) {
        problems.push(`${base}: ${(e as Error).message}`);
        if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
      }
    }
    throw new Error(`cannot create the PMI UNIX socket (${problems.join('; ')})`);
  }

  private say(line: string): void {
    if (this.notices > MAX_NOTICES) return;
    this.notices++;
    this.o.notice(this.notices > MAX_NOTICES ? `further refused PMI connections on ${this.port} are not reported` : line);
  }

  /** Who a connection is, for messages: the TCP peer address, or the UNIX socket. */
  describe(connId: number): string | undefined {
    return this.conns.get(connId)?.peer;
  }

  /** Resolves when the connection the rank made is closed, or undefined if it has none open. */
  closedConnectionOf(rank: number, kvsname: string): Promise<void> | undefined {
    for (const c of this.conns.values()) {
      const who = this.o.engine.identity(c.id);
      if (who !== undefined && who.rank === rank && who.kvsname === kvsname) return c.closed;
    }
    return undefined;
  }

  private onConnection(sock: net.Socket): void {
    sock.on('error', () => {
      /* 'close' follows */
    });
    const peer = this.o.kind === 'tcp' ? `${sock.remoteAddress ?? '?'}:${sock.remotePort ?? '?'}` : `the PMI socket ${this.socketPath ?? ''}`;
    if (this.closing || !this.listening) {
      sock.destroy();
      return;
    }
    if (this.pending >= (this.o.maxPending ?? DEFAULT_MAX_PENDING)) {
      this.say(`refused a PMI connection from ${peer} on ${this.port}: too many connections are still in their handshake`);
      sock.destroy();
      return;
    }
    const id = this.nextId++;
    let resolveClosed!: () => void;
    const closed = new Promise<void>((r) => (resolveClosed = r));
    const rec: ConnRec = { id, sock, peer, bound: false, timer: undefined, closed };
    this.conns.set(id, rec);
    this.pending++;
    const ms = this.o.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    rec.timer = setTimeout(() => {
      rec.timer = undefined;
      if (rec.bound || sock.destroyed) return;
      this.say(`dropped a PMI connection from ${peer} on ${this.port}: no PMI handshake within ${ms / 1000} s`);
      sock.destroy();
    }, ms);
    let attached = false;
    sock.once('close', () => {
      if (rec.timer) clearTimeout(rec.timer);
      rec.timer = undefined;
      if (!rec.bound) this.pending--;
      this.conns.delete(id);
      if (attached) this.o.engine.detach(id);
      resolveClosed();
    });
    void this.verify(sock).then((v) => {
      if (sock.destroyed) return;
      if (!v.ok) {
        this.say(`refused a PMI connection from ${peer} on ${this.port}${v.uid !== undefined ? ` (uid ${v.uid})` : ''}: ${v.reason}`);
        sock.destroy();
        return;
      }
      attached = true;
      this.o.engine.attach(id, {
        send: (data) => {
          if (!sock.destroyed) sock.write(data);
        },
        close: () => sock.destroy(),
      });
      sock.on('data', (d: Buffer) => {
        this.o.engine.data(id, d);
        if (!rec.bound && this.o.engine.identity(id) !== undefined) this.markBound(rec);
      });
      sock.resume();
    });
  }

  private verify(sock: net.Socket): Promise<PeerVerdict> {
    if (this.o.kind === 'unix') return Promise.resolve({ ok: true, uid: uidNow() });
    const deps = this.peerDeps as PeerCheckDeps;
    const peer = { address: sock.remoteAddress ?? '', port: sock.remotePort ?? 0 };
    const us = { address: sock.localAddress ?? '', port: sock.localPort ?? 0 };
    if (peer.address === '' || us.address === '') return Promise.resolve({ ok: false, reason: 'connection has no address (already closed)' });
    return checkTcpPeer(peer, us, deps).catch((e: unknown) => ({ ok: false, reason: `peer check failed: ${(e as Error).message}` }));
  }

  private markBound(rec: ConnRec): void {
    rec.bound = true;
    this.pending--;
    if (rec.timer) clearTimeout(rec.timer);
    rec.timer = undefined;
    this.boundCount++;
    if (this.boundCount >= this.o.expected) this.stopListening();
  }

  /** No new connections (those open stay). */
  private stopListening(): void {
    if (!this.listening) return;
    this.listening = false;
    this.server.close();
  }

  /** Stop listening, hang up every connection, remove the socket and its directory. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const closedServer = new Promise<void>((resolve) => {
      if (!this.server.listening) return resolve();
      this.server.close(() => resolve());
    });
    this.listening = false;
    for (const c of this.conns.values()) c.sock.destroy();
    // Synchronously, before the first await: a remote proxy may exit right after starting close().
    if (this.socketDir !== undefined) fs.rmSync(this.socketDir, { recursive: true, force: true });
    await closedServer;
  }
}
