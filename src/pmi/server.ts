// The per-proxy PMI engine, as the rest of the tree sees it: a pure state machine that serves the PMI-1 and
// PMI-2 connections of this proxy's ranks (docs/pmi-wire.md). No sockets and no timers: the transport feeds
// bytes in with data(), replies go out through each connection's send(), and barriers, the name service and
// spawn go through PmiUpstream, so the controller may sit in this process or across the network (§6).
//
// This file only routes: each decoded message goes to the wire module that speaks it (server-v1.ts,
// server-v2.ts); the state they share (groups, KVS, ranks, barriers) is server-core.ts.
import type { PmiFrame } from './decoder.js';
import { ServerCore, errText, type Conn } from './server-core.js';
import { handleV1Line } from './server-v1.js';
import { handleV2Body } from './server-v2.js';
import type { PmiConnIo, PmiGroupInfo, PmiRankInfo, PmiRankState, PmiServerEvents, PmiUpstream } from './types.js';

export type {
  PmiConnIo,
  PmiGroupInfo,
  PmiRankInfo,
  PmiRankState,
  PmiServerEvents,
  PmiUpstream,
  SpawnCommand,
  SpawnRequest,
  SpawnResult,
} from './types.js';
export { PMI_MAXES } from './server-v1.js';

export class PmiServer {
  private readonly core: ServerCore;

  constructor(opts: { upstream: PmiUpstream; events: PmiServerEvents; debug?: (line: string) => void }) {
    this.core = new ServerCore(opts);
  }

  addGroup(info: PmiGroupInfo): void {
    this.core.addGroup(info);
  }

  /** Identity known (PMI_FD: we spawned it on this socketpair) or learned from PMI_ID via initack (PMI_PORT). */
  attach(connId: number, io: PmiConnIo, rank?: PmiRankInfo): void {
    this.core.attach(connId, io, rank);
  }

  /** resolve a PMI_ID from initack to a rank; set by the transport for PMI_PORT: */
  setIdResolver(fn: (pmiId: number) => PmiRankInfo | undefined): void {
    this.core.idResolver = fn;
  }

  data(connId: number, chunk: Buffer): void {
    const conn = this.core.connection(connId);
    if (!conn || conn.closed) return;
    const { frames, error } = conn.decoder.push(chunk);
    for (const frame of frames) {
      if (conn.closed) return;
      try {
        this.handleFrame(conn, frame);
      } catch (e) {
        this.core.fail(conn, `internal error handling PMI message: ${errText(e)}`);
      }
    }
    if (error !== undefined) this.core.fail(conn, error);
  }

  /** EOF / error on the connection. */
  detach(connId: number): void {
    const conn = this.core.connection(connId);
    if (!conn) return;
    this.core.drop(conn);
  }

  /**
   * Whether a live connection knows which rank it is: from attach (PMI_FD) or from its initack / fullinit
   * (PMI_PORT). A listening transport uses this to end its handshake deadline.
   */
  identity(connId: number): PmiRankInfo | undefined {
    const conn = this.core.connection(connId);
    return conn !== undefined && !conn.closed ? conn.rank?.info : undefined;
  }

  /** Whether the rank completed PMI finalize (used by the exit policy) and whether it ever did init. */
  state(rank: number, kvsname: string): PmiRankState {
    return this.core.state(rank, kvsname);
  }

  private handleFrame(conn: Conn, frame: PmiFrame): void {
    if (frame.kind === 'v2') {
      this.core.debug?.(`pmi[${conn.id}] <- ${frame.body}`);
      if (conn.spawn?.active) return this.core.fail(conn, 'PMI-2 message inside a PMI-1 spawn request');
      return handleV2Body(this.core, conn, frame.body);
    }
    this.core.debug?.(`pmi[${conn.id}] <- ${frame.line}`);
    handleV1Line(this.core, conn, frame.line, frame.mcmd);
  }
}
