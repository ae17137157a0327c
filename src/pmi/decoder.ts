// Per-connection incremental decoder: turns the bytes of one PMI connection into whole messages, in order,
// deciding per message between PMI-1 lines and PMI-2 length-prefixed frames (pmi-wire.md §1.3, hydra's
// check_pmi_cmd), and enforcing size limits so a peer cannot make us buffer without bound.
import { V2_HEADER_BYTES, parseV2Header } from './wire2.js';

export type PmiFrame =
  /** `mcmd` is true for every line of a `mcmd=spawn ... endcmd` block, including those two lines. */
  | { kind: 'v1'; line: string; mcmd: boolean }
  | { kind: 'v2'; body: string };

export interface DecodeResult {
  frames: PmiFrame[];
  /** Set once the stream is unusable; the decoder then ignores further input. */
  error?: string;
}

export interface DecoderLimits {
  /** Longest PMI-1 line in bytes, newline excluded. */
  maxLine: number;
  /** Longest PMI-2 body in bytes (the header value). */
  maxBody: number;
}

export const DEFAULT_LIMITS: DecoderLimits = { maxLine: 64 * 1024, maxBody: 64 * 1024 };

const NL = 0x0a;
const V1_PREFIXES = [Buffer.from('cmd='), Buffer.from('mcmd=')];

/** A FIFO of byte chunks that avoids re-copying on every push (a 64 KiB line may come in 1-byte pieces). */
class ByteQueue {
  private chunks: Buffer[] = [];
  private head = 0; // offset into chunks[0]
  length = 0;

  push(b: Buffer): void {
    if (b.length === 0) return;
    this.chunks.push(b);
    this.length += b.length;
  }

  /** Byte at logical offset i (i < length). */
  at(i: number): number {
    let off = i + this.head;
    for (const c of this.chunks) {
      if (off < c.length) return c[off] as number;
      off -= c.length;
    }
    return -1;
  }

  /** Index of the first `byte` at or after `from`, or -1. */
  indexOf(byte: number, from: number): number {
    let base = -this.head;
    for (const c of this.chunks) {
      const start = Math.max(0, from - base);
      if (start < c.length) {
        const j = c.indexOf(byte, start);
        if (j >= 0) return base + j;
      }
      base += c.length;
    }
    return -1;
  }

  /** Remove and return the first n bytes (n <= length). */
  take(n: number): Buffer {
    const parts: Buffer[] = [];
    let need = n;
    while (need > 0) {
      const c = this.chunks[0] as Buffer;
      const avail = c.length - this.head;
      if (avail <= need) {
        parts.push(this.head === 0 ? c : c.subarray(this.head));
        this.chunks.shift();
        this.head = 0;
        need -= avail;
      } else {
        parts.push(c.subarray(this.head, this.head + need));
        this.head += need;
        need = 0;
      }
    }
    this.length -= n;
    return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, n);
  }

  skip(n: number): void {
    this.take(n);
  }
}

export class PmiDecoder {
  private q = new ByteQueue();
  private inMcmd = false;
  /** Bytes of the current (unterminated) line already searched for a newline. */
  private scanned = 0;
  private v2Len: number | undefined;
  private dead: string | undefined;
  private readonly limits: DecoderLimits;

  constructor(limits: Partial<DecoderLimits> = {}) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
  }

  push(chunk: Buffer): DecodeResult {
    if (this.dead !== undefined) return { frames: [], error: this.dead };
    this.q.push(chunk);
    const frames: PmiFrame[] = [];
    for (;;) {
      const r = this.next();
      if (r === undefined) break;
      if (typeof r === 'string') {
        this.dead = r;
        this.q = new ByteQueue();
        return { frames, error: r };
      }
      frames.push(r);
    }
    return { frames };
  }

  /** One frame, undefined if more bytes are needed, or an error string. */
  private next(): PmiFrame | string | undefined {
    const q = this.q;
    if (this.v2Len !== undefined) return this.nextV2Body();
    if (q.length === 0) return undefined;
    if (!this.inMcmd && this.scanned === 0) {
      // Tolerate blank lines between PMI-1 messages.
      while (q.length > 0 && q.at(0) === NL) q.skip(1);
      if (q.length === 0) return undefined;
      const kind = this.classify();
      if (kind === undefined) return undefined;
      if (kind === 'v2') {
        if (q.length < V2_HEADER_BYTES) return undefined;
        const n = parseV2Header(q.take(V2_HEADER_BYTES));
        if (n === undefined) return 'garbage: neither a PMI-1 line nor a PMI-2 length header';
        if (n > this.limits.maxBody) return `PMI-2 message of ${n} bytes exceeds ${this.limits.maxBody}`;
        if (n === 0) return 'empty PMI-2 message';
        this.v2Len = n;
        return this.nextV2Body();
      }
    }
    return this.nextLine();
  }

  /** 'v1' / 'v2', or undefined while the first bytes are still a prefix of `cmd=` or `mcmd=`. */
  private classify(): 'v1' | 'v2' | undefined {
    let undecided = false;
    for (const p of V1_PREFIXES) {
      const n = Math.min(p.length, this.q.length);
      let match = true;
      for (let i = 0; i < n; i++) {
        if (this.q.at(i) !== p[i]) {
          match = false;
          break;
        }
      }
      if (!match) continue;
      if (n === p.length) return 'v1';
      undecided = true;
    }
    return undecided ? undefined : 'v2';
  }

  private nextLine(): PmiFrame | string | undefined {
    const q = this.q;
    const nl = q.indexOf(NL, this.scanned);
    if (nl < 0) {
      this.scanned = q.length;
      if (q.length > this.limits.maxLine) return `PMI-1 line longer than ${this.limits.maxLine} bytes`;
      return undefined;
    }
    if (nl > this.limits.maxLine) return `PMI-1 line longer than ${this.limits.maxLine} bytes`;
    const bytes = q.take(nl + 1);
    this.scanned = 0;
    const line = bytes.toString('utf8', 0, nl);
    const wasMcmd = this.inMcmd;
    if (!wasMcmd && line.startsWith('mcmd=')) this.inMcmd = true;
    else if (wasMcmd && line === 'endcmd') this.inMcmd = false;
    return { kind: 'v1', line, mcmd: wasMcmd || this.inMcmd };
  }

  private nextV2Body(): PmiFrame | undefined {
    const n = this.v2Len as number;
    if (this.q.length < n) return undefined;
    this.v2Len = undefined;
    return { kind: 'v2', body: this.q.take(n).toString('utf8') };
  }
}
