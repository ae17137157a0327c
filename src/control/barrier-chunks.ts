// The barrier messages of the launch tree (frame kind 5), and how a big one is cut into frames that each stay
// under the frame limit. A gathered entry (up) carries every pair a subtree put in one epoch; a result (down)
// carries the whole epoch's pairs: both grow with the job's KVS, which can pass MAX_FRAME (1024 ranks putting
// 64 KiB each). So a message is sent as one or more chunks, cut between pairs: every chunk but the last says
// `more`, the last carries the rest of the message (the proxies of a gathered entry, an error). Chunks of one
// message are written back to back, and a link carries at most one open message per kind and group, so the
// receiver joins them by (kind, kvsname) alone.
import { FRAME, MAX_FRAME, jsonFrame } from './frame.js';

export type Pair = [string, string];

export type TreeMessage =
  /** Everything below the sender (itself included) entered the barrier of `kvsname`: these proxies, these puts. */
  | { t: 'gather'; kvsname: string; proxies: number[]; puts: Pair[] }
  /** The barrier of `kvsname` completed with these pairs (or failed: `error`). */
  | { t: 'result'; kvsname: string; puts: Pair[]; error?: string };

/** One chunk on the wire: a TreeMessage whose `puts` is a slice, with `more` on all but the last. */
type Chunk = TreeMessage & { more?: true };

/** The serialized message with its puts left out, split where the puts go. */
function envelope(m: TreeMessage, last: boolean): [string, string] {
  const head =
    m.t === 'gather'
      ? `{"t":"gather","kvsname":${JSON.stringify(m.kvsname)}${last ? `,"proxies":${JSON.stringify(m.proxies)}` : ',"proxies":[]'}`
      : `{"t":"result","kvsname":${JSON.stringify(m.kvsname)}${last && m.error !== undefined ? `,"error":${JSON.stringify(m.error)}` : ''}`;
  return [`${head}${last ? '' : ',"more":true'},"puts":[`, ']}'];
}

/**
 * The frames (kind TREE) that carry `m`, each at most `limit` bytes after its 4-byte length (what FrameDecoder
 * accepts). One frame when it fits. Throws when a single pair cannot fit in a frame of its own.
 */
export function treeFrames(m: TreeMessage, limit: number = MAX_FRAME): Buffer[] {
  const parts = m.puts.map((p) => JSON.stringify(p));
  const sizes = parts.map((p) => Buffer.byteLength(p));
  const [lastHead, tail] = envelope(m, true);
  const [midHead] = envelope(m, false);
  // 1 byte of kind, the envelope, and a comma between pairs
  const room = (head: string): number => limit - 1 - Buffer.byteLength(head) - Buffer.byteLength(tail);
  const frames: Buffer[] = [];
  let start = 0;
  for (;;) {
    // does everything left fit in a last chunk?
    const lastRoom = room(lastHead);
    let used = 0;
    let end = start;
    while (end < parts.length && used + (end > start ? 1 : 0) + (sizes[end] as number) <= lastRoom) used += (end > start ? 1 : 0) + (sizes[end++] as number);
    if (end === parts.length) {
      frames.push(jsonFrame(FRAME.TREE, lastHead + parts.slice(start).join(',') + tail));
      return frames;
    }
    const midRoom = room(midHead);
    used = 0;
    end = start;
    while (end < parts.length && used + (end > start ? 1 : 0) + (sizes[end] as number) <= midRoom) used += (end > start ? 1 : 0) + (sizes[end++] as number);
    if (end === start) throw new Error(`a KVS pair of ${sizes[start] as number} bytes does not fit in a control frame of ${limit} bytes`);
    frames.push(jsonFrame(FRAME.TREE, midHead + parts.slice(start, end).join(',') + tail));
    start = end;
  }
}

function isPairs(x: unknown): x is Pair[] {
  return Array.isArray(x) && x.every((p) => Array.isArray(p) && p.length === 2 && typeof p[0] === 'string' && typeof p[1] === 'string');
}

/** A decoded kind-5 frame, checked: the chunk, or undefined when it is not one (forged or corrupt). */
function asChunk(v: unknown): Chunk | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o.kvsname !== 'string' || !isPairs(o.puts) || (o.more !== undefined && o.more !== true)) return undefined;
  const more = o.more === true ? { more: true as const } : {};
  if (o.t === 'gather') {
    if (!Array.isArray(o.proxies) || !o.proxies.every((i) => Number.isInteger(i) && (i as number) >= 0)) return undefined;
    return { t: 'gather', kvsname: o.kvsname, proxies: o.proxies as number[], puts: o.puts, ...more };
  }
  if (o.t === 'result') {
    if (o.error !== undefined && typeof o.error !== 'string') return undefined;
    return { t: 'result', kvsname: o.kvsname, puts: o.puts, ...(typeof o.error === 'string' ? { error: o.error } : {}), ...more };
  }
  return undefined;
}

export class TreeMessageError extends Error {}

/** Joins the chunks that come over one link back into whole messages. */
export class ChunkJoiner {
  private readonly open = new Map<string, Pair[]>();

  /** A decoded kind-5 frame: the whole message once its last chunk came, else undefined. Throws TreeMessageError. */
  push(value: unknown): TreeMessage | undefined {
    const c = asChunk(value);
    if (!c) throw new TreeMessageError('a malformed barrier message');
    const key = `${c.t} ${c.kvsname}`;
    const held = this.open.get(key);
    if (c.more) {
      if (held) for (const p of c.puts) held.push(p);
      else this.open.set(key, c.puts.slice());
      return undefined;
    }
    this.open.delete(key);
    const puts = held ? (c.puts.length > 0 ? held.concat(c.puts) : held) : c.puts;
    return c.t === 'gather'
      ? { t: 'gather', kvsname: c.kvsname, proxies: c.proxies, puts }
      : { t: 'result', kvsname: c.kvsname, puts, ...(c.error !== undefined ? { error: c.error } : {}) };
  }
}
