// PMI-2 framing: a 6-byte ASCII length header, then `cmd=<name>;k=v;...;` with `;;` standing for a `;` inside a
// value, as MPICH 4.0.2 writes and reads it (pmi-wire.md §1.3). Pure: bytes/strings in, values out.

export const V2_HEADER_BYTES = 6;

/** One parsed PMI-2 command. `pairs` keeps order and duplicates (spawn repeats keys); `fields` is first-wins. */
export interface V2Message {
  cmd: string;
  pairs: Array<[string, string]>;
  fields: Map<string, string>;
}

/**
 * Read the 6-byte length header like a space-tolerant atoi: right-aligned (`    23`, main) or left-aligned
 * (`44    `, 4.0.2). Anything but spaces/NULs around one run of digits is rejected (undefined).
 */
export function parseV2Header(header: Uint8Array): number | undefined {
  if (header.length !== V2_HEADER_BYTES) return undefined;
  let i = 0;
  while (i < header.length && header[i] === 0x20) i++;
  let n = 0;
  let digits = 0;
  while (i < header.length) {
    const c = header[i] as number;
    if (c < 0x30 || c > 0x39) break;
    n = n * 10 + (c - 0x30);
    digits++;
    i++;
  }
  if (digits === 0) return undefined;
  for (; i < header.length; i++) if (header[i] !== 0x20 && header[i] !== 0) return undefined;
  return n;
}

/**
 * Parse a PMI-2 body. Parsing stops at the first NUL and drops a trailing incomplete pair: 4.0.2 may count
 * 6 bytes of stack junk into the length (pmi-wire.md §1.3), so only complete `k=v;` pairs count. `;;` in a
 * value is one `;`. The first pair must be `cmd=<non-empty>`; otherwise undefined.
 */
export function parseV2Body(body: string): V2Message | undefined {
  const nul = body.indexOf('\0');
  const text = nul >= 0 ? body.slice(0, nul) : body;
  const pairs: Array<[string, string]> = [];
  let pos = 0;
  while (pos < text.length) {
    const eq = text.indexOf('=', pos);
    if (eq < 0) break;
    const key = text.slice(pos, eq);
    let value = '';
    let i = eq + 1;
    let closed = false;
    let runStart = i;
    while (i < text.length) {
      if (text.charCodeAt(i) === 0x3b /* ; */) {
        if (text.charCodeAt(i + 1) === 0x3b) {
          value += text.slice(runStart, i + 1);
          i += 2;
          runStart = i;
          continue;
        }
        value += text.slice(runStart, i);
        closed = true;
        break;
      }
      i++;
    }
    if (!closed) break;
    pairs.push([key, value]);
    pos = i + 1;
  }
  const first = pairs[0];
  if (!first || first[0] !== 'cmd' || first[1] === '') return undefined;
  const rest = pairs.slice(1);
  const fields = new Map<string, string>();
  for (const [k, v] of rest) if (!fields.has(k)) fields.set(k, v);
  return { cmd: first[1], pairs: rest, fields };
}

/** Escape a value the way 4.0.2 does: every `;` doubled. */
export function escapeV2(value: string): string {
  return value.includes(';') ? value.replace(/;/g, ';;') : value;
}

/** Body text `cmd=<cmd>;k=v;...;` (values escaped). */
export function formatV2Body(cmd: string, pairs: ReadonlyArray<readonly [string, string | number]> = []): string {
  let out = `cmd=${cmd};`;
  for (const [k, v] of pairs) out += `${k}=${escapeV2(String(v))};`;
  return out;
}

/** A whole PMI-2 message: the exact UTF-8 byte length of the body, right-aligned in 6 columns (`%6u`), then it. */
export function formatV2(cmd: string, pairs: ReadonlyArray<readonly [string, string | number]> = []): string {
  return frameV2(formatV2Body(cmd, pairs));
}

/** Put the length header in front of a body. Throws if the body cannot be framed (over 999999 bytes). */
export function frameV2(body: string): string {
  const len = Buffer.byteLength(body, 'utf8');
  if (len > 999_999) throw new RangeError(`PMI-2 body of ${len} bytes does not fit a 6-digit header`);
  return String(len).padStart(V2_HEADER_BYTES, ' ') + body;
}
