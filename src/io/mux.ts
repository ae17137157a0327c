// The controller's output multiplexer: rank output arrives as chunks tagged (rank, stream); whole lines go to
// the right sink (our stdout/stderr, or per-rank files from -outfile-pattern/-errfile-pattern), labelled with
// `[rank]` under -l. Back-pressure: write() returns false while any sink is over its high-water mark, and the
// caller pauses its sources until onDrain fires.
import { LineAssembler, labelLines } from './lines.js';
import { expandPattern, type PatternFields } from './patterns.js';
import type { Sink } from './sink.js';

export type StreamName = 'stdout' | 'stderr';

export interface MuxOptions {
  stdout: Sink;
  stderr: Sink;
  prependRank: boolean;
  /** -prepend-pattern: each line's prefix (wins over prependRank) */
  prependPattern?: string;
  /** --timestamp-output: the time stamp every line starts with (before the label), taken as the line arrives */
  timestamp?(): string;
  outfilePattern?: string;
  errfilePattern?: string;
  /** what the patterns name of a rank */
  rankInfo(rank: number): PatternFields;
  openFile(path: string): Sink;
  /** label colouring hook (report/ decides; identity when not a TTY) */
  label?(rank: number, stream: StreamName): string;
}

export class OutputMux {
  private readonly assemblers = new Map<string, LineAssembler>();
  private readonly files = new Map<string, Sink>();
  private readonly sinkOf = new Map<string, Sink>();
  private blocked = new Set<Sink>();
  private drainWaiters: Array<() => void> = [];

  constructor(private readonly o: MuxOptions) {}

  private sink(rank: number, stream: StreamName): Sink {
    const key = `${rank}/${stream}`;
    let s = this.sinkOf.get(key);
    if (s) return s;
    const pattern = stream === 'stdout' ? this.o.outfilePattern : this.o.errfilePattern;
    if (pattern === undefined) {
      s = stream === 'stdout' ? this.o.stdout : this.o.stderr;
    } else {
      const path = expandPattern(pattern, this.o.rankInfo(rank));
      s = this.files.get(path);
      if (!s) {
        s = this.o.openFile(path);
        this.files.set(path, s);
      }
    }
    this.sinkOf.set(key, s);
    return s;
  }

  private assembler(rank: number, stream: StreamName): LineAssembler {
    const key = `${rank}/${stream}`;
    let a = this.assemblers.get(key);
    if (!a) {
      a = new LineAssembler();
      this.assemblers.set(key, a);
    }
    return a;
  }

  private readonly patternPrefix = new Map<number, string>();

  /** The line prefix of a rank's output: a time stamp, then -prepend-pattern's expansion, -l's label, or none. */
  private prefix(rank: number, stream: StreamName): string | undefined {
    const label = this.label(rank, stream);
    if (this.o.timestamp === undefined) return label;
    return `[${this.o.timestamp()}] ${label ?? ''}`;
  }

  private label(rank: number, stream: StreamName): string | undefined {
    const pattern = this.o.prependPattern;
    if (pattern !== undefined) {
      let p = this.patternPrefix.get(rank);
      if (p === undefined) {
        p = expandPattern(pattern, this.o.rankInfo(rank));
        this.patternPrefix.set(rank, p);
      }
      return p;
    }
    return this.o.prependRank ? (this.o.label?.(rank, stream) ?? `[${rank}] `) : undefined;
  }

  private emit(rank: number, stream: StreamName, data: Buffer, terminate: boolean): void {
    const sink = this.sink(rank, stream);
    const prefix = this.prefix(rank, stream);
    const out = prefix !== undefined ? labelLines(data, prefix, terminate) : data;
    if (!sink.write(out) && !this.blocked.has(sink)) {
      this.blocked.add(sink);
      sink.onDrain(() => {
        this.blocked.delete(sink);
        if (this.blocked.size === 0) {
          const ws = this.drainWaiters;
          this.drainWaiters = [];
          for (const w of ws) w();
        }
      });
    }
  }

  /** Feed a chunk; returns false when the caller should pause until onDrain. */
  write(rank: number, stream: StreamName, chunk: Buffer): boolean {
    const ready = this.assembler(rank, stream).push(chunk);
    if (ready) this.emit(rank, stream, ready, false);
    return this.blocked.size === 0;
  }

  /** End of one rank stream: the unterminated last line is written, never lost. */
  end(rank: number, stream: StreamName): void {
    const a = this.assemblers.get(`${rank}/${stream}`);
    const tail = a?.flush();
    if (tail) this.emit(rank, stream, tail, true);
  }

  onDrain(fn: () => void): void {
    if (this.blocked.size === 0) fn();
    else this.drainWaiters.push(fn);
  }

  get isBlocked(): boolean {
    return this.blocked.size > 0;
  }

  /** Flush every sink; closes the output files. */
  async finish(): Promise<void> {
    for (const [key, a] of this.assemblers) {
      const tail = a.flush();
      if (tail) {
        const [r, s] = key.split('/');
        this.emit(Number(r), s as StreamName, tail, true);
      }
    }
    await Promise.all([...this.files.values()].map((f) => f.finish()));
  }

  /** Errors of output files (e.g. ENOSPC), by path. */
  fileFailures(): Array<{ path: string; error: Error }> {
    const out: Array<{ path: string; error: Error }> = [];
    for (const [path, s] of this.files) if (s.failed) out.push({ path, error: s.failed });
    return out;
  }
}
