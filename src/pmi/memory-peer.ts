// An in-memory PMI connection: plays a rank against a PmiServer without sockets, so engine conversations can be
// scripted and checked byte for byte (unit tests, and any caller that wants to probe an engine in-process).
import { PmiDecoder, type PmiFrame } from './decoder.js';
import type { PmiRankInfo } from './types.js';

/** The subset of PmiServer a peer drives (keeps this module free of a dependency on server.ts). */
export interface PmiEngineLike {
  attach(connId: number, io: { send(data: string): void; close(): void }, rank?: PmiRankInfo): void;
  data(connId: number, chunk: Buffer): void;
  detach(connId: number): void;
}

export class MemoryPmiPeer {
  /** Everything the server sent, in order, not yet taken. */
  private inbox = '';
  /** True once the server closed this connection. */
  closed = false;
  private readonly decoder = new PmiDecoder({ maxLine: 1 << 24, maxBody: 999_999 });

  constructor(
    private readonly engine: PmiEngineLike,
    readonly id: number,
    rank?: PmiRankInfo,
  ) {
    engine.attach(
      id,
      {
        send: (data) => {
          this.inbox += data;
        },
        close: () => {
          this.closed = true;
        },
      },
      rank,
    );
  }

  /** Send bytes as the rank would (a string is sent as UTF-8). */
  write(data: string | Buffer): void {
    this.engine.data(this.id, typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
  }

  /** The raw text received since the last take. */
  takeRaw(): string {
    const s = this.inbox;
    this.inbox = '';
    return s;
  }

  /** Received messages split into frames (PMI-1 lines without `\n`, PMI-2 bodies without header). */
  takeFrames(): PmiFrame[] {
    const r = this.decoder.push(Buffer.from(this.takeRaw(), 'utf8'));
    if (r.error !== undefined) throw new Error(`server sent undecodable data: ${r.error}`);
    return r.frames;
  }

  /** Received PMI-1 lines (throws if a PMI-2 frame is among them). */
  takeLines(): string[] {
    return this.takeFrames().map((f) => {
      if (f.kind !== 'v1') throw new Error(`expected a PMI-1 line, got PMI-2 ${f.body}`);
      return f.line;
    });
  }

  /** Hang up (EOF) as a vanishing rank would. */
  end(): void {
    this.engine.detach(this.id);
  }
}
