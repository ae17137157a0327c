import { describe, expect, it } from 'vitest';
import { OutputMux } from '../../src/io/mux.js';
import type { Sink } from '../../src/io/sink.js';

class FakeSink implements Sink {
  chunks: Buffer[] = [];
  failed: Error | undefined;
  isTTY = false;
  full = false;
  private waiters: Array<() => void> = [];
  write(d: Buffer): boolean {
    this.chunks.push(Buffer.from(d));
    return !this.full;
  }
  onDrain(fn: () => void): void {
    if (!this.full) fn();
    else this.waiters.push(fn);
  }
  drain(): void {
    this.full = false;
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
  async finish(): Promise<void> {}
  text(): string {
    return Buffer.concat(this.chunks).toString();
  }
}

const mk = (o: Partial<ConstructorParameters<typeof OutputMux>[0]> = {}) => {
  const stdout = new FakeSink();
  const stderr = new FakeSink();
  const files = new Map<string, FakeSink>();
  const mux = new OutputMux({
    stdout,
    stderr,
    prependRank: false,
    rankInfo: (r) => ({ host: `h${r % 2}`, segment: 0 }),
    openFile: (p) => {
      const s = new FakeSink();
      files.set(p, s);
      return s;
    },
    ...o,
  });
  return { mux, stdout, stderr, files };
};

describe('OutputMux', () => {
  it('never interleaves partial lines of two ranks', () => {
    const { mux, stdout } = mk();
    mux.write(0, 'stdout', Buffer.from('rank0 begins '));
    mux.write(1, 'stdout', Buffer.from('rank1 line\nrank1 again '));
    mux.write(0, 'stdout', Buffer.from('and ends\n'));
    mux.end(1, 'stdout');
    mux.end(0, 'stdout');
    expect(stdout.chunks.map(String)).toEqual(['rank1 line\n', 'rank0 begins and ends\n', 'rank1 again ']);
  });
  it('labels lines with -l and terminates a labelled last line', () => {
    const { mux, stdout, stderr } = mk({ prependRank: true });
    mux.write(3, 'stdout', Buffer.from('a\nb'));
    mux.write(3, 'stderr', Buffer.from('oops\n'));
    mux.end(3, 'stdout');
    expect(stdout.text()).toBe('[3] a\n[3] b\n');
    expect(stderr.text()).toBe('[3] oops\n');
  });
  it('routes to per-rank files by pattern, sharing a file when the pattern lacks %r', () => {
    const { mux, files } = mk({ outfilePattern: 'out.%h' });
    mux.write(0, 'stdout', Buffer.from('zero\n'));
    mux.write(1, 'stdout', Buffer.from('one\n'));
    mux.write(2, 'stdout', Buffer.from('two\n'));
    expect([...files.keys()].sort()).toEqual(['out.h0', 'out.h1']);
    expect(files.get('out.h0')?.text()).toBe('zero\ntwo\n');
  });
  it('reports back-pressure and calls onDrain when the sink drains', () => {
    const { mux, stdout } = mk();
    stdout.full = true;
    expect(mux.write(0, 'stdout', Buffer.from('x\n'))).toBe(false);
    let drained = false;
    mux.onDrain(() => (drained = true));
    expect(drained).toBe(false);
    stdout.drain();
    expect(drained).toBe(true);
    expect(mux.write(0, 'stdout', Buffer.from('y\n'))).toBe(true);
  });
});
