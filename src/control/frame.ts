// Binary framing of the control channel (the ssh session's stdin/stdout, or srun's): each frame is
// [u32 length of the rest][u8 kind][body]. Kind 1: a JSON message; kind 2: rank output
// ([u32 rank][u8 stream][bytes]); kind 3: stdin for a rank ([u32 rank][bytes]); kind 4: a whole frame routed
// through a tree of proxies ([u32 proxy index][inner frame]), downward to that proxy or upward from it;
// kind 5: a JSON barrier message for the next hop only (a gathered barrier entry going up, a barrier result
// going down: see barrier-chunks.ts), which a proxy of the tree consumes instead of relaying.
// No base64, no per-line JSON.
export const FRAME = { JSON: 1, OUTPUT: 2, STDIN: 3, ROUTED: 4, TREE: 5 } as const;
/** A frame larger than this is a protocol error (a forged or corrupted stream), not an allocation. */
export const MAX_FRAME = 64 * 1024 * 1024;

export type Frame =
  | { kind: 'json'; value: unknown }
  | { kind: 'output'; rank: number; stream: 'stdout' | 'stderr'; data: Buffer }
  | { kind: 'stdin'; rank: number; data: Buffer }
  /** `raw` is the inner frame, header included, ready to forward or decode with decodeFrame. */
  | { kind: 'routed'; index: number; raw: Buffer }
  /** a barrier message of the launch tree (barrier-chunks.ts checks its shape) */
  | { kind: 'tree'; value: unknown };

export function encodeJson(value: unknown): Buffer {
  return jsonFrame(FRAME.JSON, JSON.stringify(value));
}

/** A frame of kind `kind` (JSON or TREE) around JSON text that is already serialized. */
export function jsonFrame(kind: typeof FRAME.JSON | typeof FRAME.TREE, json: string): Buffer {
  const n = Buffer.byteLength(json);
  const f = Buffer.allocUnsafe(5 + n);
  f.writeUInt32BE(n + 1, 0);
  f.writeUInt8(kind, 4);
  f.write(json, 5);
  return f;
}

/** Header for an output frame; send it followed by `data` (no copy of the payload). */
export function outputHeader(rank: number, stream: 'stdout' | 'stderr', length: number): Buffer {
  const h = Buffer.allocUnsafe(10);
  h.writeUInt32BE(length + 6, 0);
  h.writeUInt8(FRAME.OUTPUT, 4);
  h.writeUInt32BE(rank, 5);
  h.writeUInt8(stream === 'stdout' ? 1 : 2, 9);
  return h;
}

export function stdinHeader(rank: number, length: number): Buffer {
  const h = Buffer.allocUnsafe(9);
  h.writeUInt32BE(length + 5, 0);
  h.writeUInt8(FRAME.STDIN, 4);
  h.writeUInt32BE(rank, 5);
  return h;
}

/** Wrap a whole frame (header included) for proxy `index` of the tree. */
export function routedFrame(index: number, inner: Buffer): Buffer {
  const h = Buffer.allocUnsafe(9);
  h.writeUInt32BE(inner.length + 5, 0);
  h.writeUInt8(FRAME.ROUTED, 4);
  h.writeUInt32BE(index, 5);
  return Buffer.concat([h, inner]);
}

/** Decode one whole frame (header included), as pushRaw returns them. */
export function decodeFrame(whole: Buffer): Frame {
  if (whole.length < 5 || whole.readUInt32BE(0) !== whole.length - 4) throw new FrameError('bad frame');
  return decodeBody(whole.subarray(4));
}

export class FrameError extends Error {}

/** Incremental decoder: push bytes, get whole frames. Throws FrameError on a malformed stream. */
export class FrameDecoder {
  private bufs: Buffer[] = [];
  private len = 0;

  push(chunk: Buffer): Frame[] {
    return this.pushRaw(chunk).map((whole) => decodeBody(whole.subarray(4)));
  }

  /** Whole frames, header included, undecoded (for forwarding through a tree without parsing). */
  pushRaw(chunk: Buffer): Buffer[] {
    this.bufs.push(chunk);
    this.len += chunk.length;
    const out: Buffer[] = [];
    for (;;) {
      if (this.len < 4) break;
      const head = this.peek(4);
      const n = head.readUInt32BE(0);
      if (n < 1 || n > MAX_FRAME) throw new FrameError(`bad frame length ${n}`);
      if (this.len < 4 + n) break;
      out.push(this.take(4 + n));
    }
    return out;
  }

  /** The first buffer, made at least n bytes long by joining only the chunks that n spans. */
  private peek(n: number): Buffer {
    if ((this.bufs[0]?.length ?? 0) >= n) return this.bufs[0] as Buffer;
    let k = 0;
    let have = 0;
    while (have < n) have += (this.bufs[k++] as Buffer).length;
    const joined = Buffer.concat(this.bufs.slice(0, k), have);
    this.bufs.splice(0, k, joined);
    return joined;
  }

  private take(n: number): Buffer {
    const first = this.peek(n);
    const out = first.subarray(0, n);
    const rest = first.subarray(n);
    this.bufs[0] = rest;
    if (rest.length === 0) this.bufs.shift();
    this.len -= n;
    return out;
  }
}

function decodeBody(b: Buffer): Frame {
  const kind = b.readUInt8(0);
  if (kind === FRAME.JSON || kind === FRAME.TREE) {
    let value: unknown;
    try {
      value = JSON.parse(b.subarray(1).toString('utf8')) as unknown;
    } catch {
      throw new FrameError('bad JSON in control frame');
    }
    return kind === FRAME.JSON ? { kind: 'json', value } : { kind: 'tree', value };
  }
  if (kind === FRAME.OUTPUT) {
    if (b.length < 6) throw new FrameError('short output frame');
    const s = b.readUInt8(5);
    if (s !== 1 && s !== 2) throw new FrameError(`bad stream ${s}`);
    // no copy: the chunks a decoder is given are never written again (Node hands out a fresh buffer per read)
    return { kind: 'output', rank: b.readUInt32BE(1), stream: s === 1 ? 'stdout' : 'stderr', data: b.subarray(6) };
  }
  if (kind === FRAME.STDIN) {
    if (b.length < 5) throw new FrameError('short stdin frame');
    return { kind: 'stdin', rank: b.readUInt32BE(1), data: b.subarray(5) };
  }
  if (kind === FRAME.ROUTED) {
    if (b.length < 10) throw new FrameError('short routed frame');
    const raw = b.subarray(5);
    if (raw.readUInt32BE(0) !== raw.length - 4) throw new FrameError('bad routed frame');
    return { kind: 'routed', index: b.readUInt32BE(1), raw };
  }
  throw new FrameError(`unknown frame kind ${kind}`);
}
