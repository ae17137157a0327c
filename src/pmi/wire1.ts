// PMI-1 ("simple PMI") line codec: parse `cmd=x k=v ...` lines, format replies, and gather the
// multi-line `mcmd=spawn ... endcmd` segments (pmi-wire.md §1.2, §4, §4.1). Pure: strings in, values out.

/** One parsed PMI-1 line. `fields` excludes the leading `cmd=`/`mcmd=` token; the first duplicate key wins. */
export interface V1Message {
  cmd: string;
  /** true for `mcmd=` (only `mcmd=spawn` exists). */
  multi: boolean;
  fields: Map<string, string>;
}

/**
 * Parse one PMI-1 line (with or without its trailing newline). Tokens are split on spaces and each token at
 * its FIRST `=`, so values may contain `=`; backslashes pass through untouched. A token without `=` becomes a
 * key with an empty value. Returns undefined when the first token is not a non-empty `cmd=` or `mcmd=`.
 */
export function parseV1Line(line: string): V1Message | undefined {
  let end = line.length;
  if (end > 0 && line.charCodeAt(end - 1) === 10) end--;
  if (end > 0 && line.charCodeAt(end - 1) === 13) end--;
  const tokens = line.slice(0, end).split(' ');
  let cmd: string | undefined;
  let multi = false;
  const fields = new Map<string, string>();
  for (const tok of tokens) {
    if (tok === '') continue;
    const eq = tok.indexOf('=');
    const key = eq < 0 ? tok : tok.slice(0, eq);
    const value = eq < 0 ? '' : tok.slice(eq + 1);
    if (cmd === undefined) {
      if (eq < 0 || value === '' || (key !== 'cmd' && key !== 'mcmd')) return undefined;
      cmd = value;
      multi = key === 'mcmd';
      continue;
    }
    if (!fields.has(key)) fields.set(key, value);
  }
  if (cmd === undefined) return undefined;
  return { cmd, multi, fields };
}

/**
 * Whether the `value=` of a PMI-1 put line arrived whole: it must be the last token, with nothing (not even a
 * second space) after it. A value holding a space would otherwise be cut at the space by the tokenizer, and the
 * rest would turn into bogus fields. MPICH and flux both write `kvsname= key= value=` in that order.
 */
export function isV1PutValueWhole(line: string): boolean {
  let end = line.length;
  if (end > 0 && line.charCodeAt(end - 1) === 10) end--;
  if (end > 0 && line.charCodeAt(end - 1) === 13) end--;
  const tokens = line.slice(0, end).split(' ');
  const at = tokens.findIndex((t) => t.startsWith('value='));
  return at < 0 || at === tokens.length - 1;
}

/** Whether a value can travel in a PMI-1 reply (the client splits on spaces and newlines). */
export function isV1Safe(value: string): boolean {
  return !/[ \n\r]/.test(value);
}

/**
 * Format a PMI-1 reply line `cmd=<cmd> k=v ...\n`. Throws if a key or value cannot be represented
 * (space, newline, or `=` in a key): callers check with isV1Safe first; the throw is a last line of defence
 * against injecting a second line into the stream.
 */
export function formatV1(cmd: string, pairs: ReadonlyArray<readonly [string, string | number]> = []): string {
  let out = `cmd=${cmd}`;
  for (const [k, v] of pairs) {
    const value = String(v);
    if (k === '' || !isV1Safe(k) || k.includes('=') || !isV1Safe(value)) {
      throw new TypeError(`PMI-1 reply field ${JSON.stringify(k)} cannot carry ${JSON.stringify(value)}`);
    }
    out += ` ${k}=${value}`;
  }
  return out + '\n';
}

/** Limits on one spawn request gathered over several segments. */
export const SPAWN_LIMITS = { maxSegments: 4096, maxLinesPerSegment: 65536, maxBytes: 1 << 20 } as const;

export type SpawnPush =
  | { kind: 'more' }
  | { kind: 'done'; segments: Array<Map<string, string>> }
  | { kind: 'error'; message: string };

/**
 * Gathers the lines of a PMI-1 `mcmd=spawn` request. Each segment runs from a `mcmd=spawn` line to `endcmd`;
 * every other line is one `key=value` split at the first `=` (the value runs to the end of the line and may hold
 * spaces). The request is complete at the `endcmd` of the segment whose spawnssofar equals totspawns.
 */
export class SpawnAccumulator {
  private segments: Array<Map<string, string>> = [];
  private current: Map<string, string> | undefined;
  private lines = 0;
  private bytes = 0;
  private failed = false;

  /** Whether a segment is open or more segments are expected (i.e. the request is not finished). */
  get active(): boolean {
    return !this.failed && (this.current !== undefined || this.segments.length > 0);
  }

  push(rawLine: string): SpawnPush {
    if (this.failed) return { kind: 'error', message: 'spawn request already failed' };
    const line = rawLine.endsWith('\n') ? rawLine.slice(0, -1) : rawLine;
    this.bytes += line.length + 1;
    if (this.bytes > SPAWN_LIMITS.maxBytes) return this.fail('spawn request larger than 1 MiB');
    if (this.current === undefined) {
      const head = parseV1Line(line);
      if (!head || !head.multi || head.cmd !== 'spawn') return this.fail(`expected mcmd=spawn, got ${clip(line)}`);
      if (this.segments.length >= SPAWN_LIMITS.maxSegments) return this.fail('too many spawn segments');
      this.current = new Map();
      this.lines = 0;
      return { kind: 'more' };
    }
    if (line === 'endcmd') return this.endSegment();
    if (++this.lines > SPAWN_LIMITS.maxLinesPerSegment) return this.fail('too many lines in a spawn segment');
    const eq = line.indexOf('=');
    if (eq <= 0) return this.fail(`bad spawn line ${clip(line)}`);
    const key = line.slice(0, eq);
    if (!this.current.has(key)) this.current.set(key, line.slice(eq + 1));
    return { kind: 'more' };
  }

  private endSegment(): SpawnPush {
    const seg = this.current;
    this.current = undefined;
    if (!seg) return this.fail('endcmd outside a spawn segment');
    this.segments.push(seg);
    const total = Number(seg.get('totspawns'));
    const sofar = Number(seg.get('spawnssofar'));
    if (!Number.isInteger(total) || !Number.isInteger(sofar) || total < 1 || sofar < 1 || sofar > total) {
      return this.fail('spawn segment without valid totspawns/spawnssofar');
    }
    if (sofar < total) return { kind: 'more' };
    const segments = this.segments;
    this.segments = [];
    this.bytes = 0;
    return { kind: 'done', segments };
  }

  private fail(message: string): SpawnPush {
    this.failed = true;
    this.segments = [];
    this.current = undefined;
    return { kind: 'error', message };
  }
}

function clip(s: string): string {
  return JSON.stringify(s.length > 60 ? s.slice(0, 60) + '…' : s);
}
