// The start-up spinner: counts hosts whose ranks all started, is cleared before other output and stopped
// by rank output; never drawn when stopped before it was due. ora is replaced by a recorder.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Ora } from 'ora';
import { NO_PROGRESS, startProgress, wantProgress, type SpinnerStream, type WatchedSpec } from '../../src/report/progress.js';
import type { Sink } from '../../src/io/sink.js';

interface Rec {
  calls: string[];
  opts: Record<string, unknown>[];
  texts: string[];
}

function fakeOra(rec: Rec): () => Promise<(o: object) => Ora> {
  return async () => (o: object) => {
    rec.opts.push(o as Record<string, unknown>);
    const s = {
      set text(t: string) {
        rec.texts.push(t);
      },
      start: () => {
        rec.calls.push('start');
        return s;
      },
      stop: () => {
        rec.calls.push('stop');
        return s;
      },
      clear: () => {
        rec.calls.push('clear');
        return s;
      },
    };
    return s as unknown as Ora;
  };
}

const stream: SpinnerStream = { isTTY: true, columns: 0, write: () => true, cursorTo: () => true, moveCursor: () => true, clearLine: () => true };

function sink(log: string[]): Sink {
  return { write: (d) => (log.push(`write ${d.toString()}`), true), onDrain: (f) => f(), finish: async () => undefined, failed: undefined, isTTY: true };
}

function spec(index: number, ranks: number, log: string[]): WatchedSpec {
  return {
    index,
    launches: Array.from({ length: ranks }, () => ({})),
    events: {
      started: (r, pid) => log.push(`started ${r} ${pid}`),
      launchFailed: (m) => log.push(`failed ${m}`),
      exited: (r, o) => log.push(`exited ${r} ${o.kind}`),
      output: (r, s, d) => (log.push(`output ${r} ${s} ${d.toString()}`), true),
    },
  };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('the start-up spinner', () => {
  it('shows "starting proxies up/total", counts hosts whose ranks all started, stops when all are up', async () => {
    vi.useFakeTimers();
    const rec: Rec = { calls: [], opts: [], texts: [] };
    const log: string[] = [];
    const p = startProgress({ stream, hosts: 3, load: fakeOra(rec), delayMs: 100, colour: true });
    const make = p.watch((s: WatchedSpec) => s);
    const [a, b, c] = [make(spec(0, 2, log)), make(spec(1, 1, log)), make(spec(2, 1, log))];
    await vi.advanceTimersByTimeAsync(100);
    expect(rec.calls).toEqual(['start']);
    expect(rec.opts[0]).toMatchObject({ text: 'starting proxies 0/3', color: 'cyan', discardStdin: false, hideCursor: false, isEnabled: true });
    // ora divides by the width: a pty with 0 columns must read as 80
    expect((rec.opts[0]?.stream as SpinnerStream).columns).toBe(80);
    a.events.started(0, 100);
    expect(rec.texts).toEqual([]);
    a.events.started(1, 101);
    expect(rec.texts).toEqual(['starting proxies 1/3']);
    b.events.exited(2, { kind: 'not-started' }); // could not start: its host counts as done
    expect(rec.texts).toEqual(['starting proxies 1/3', 'starting proxies 2/3']);
    c.events.started(3, 103);
    expect(rec.calls).toEqual(['start', 'stop']);
    expect(log).toEqual(['started 0 100', 'started 1 101', 'exited 2 not-started', 'started 3 103']);
  });

  it('clears its line before each write to our streams and stops at the first rank output', async () => {
    vi.useFakeTimers();
    const rec: Rec = { calls: [], opts: [], texts: [] };
    const log: string[] = [];
    const p = startProgress({ stream, hosts: 2, load: fakeOra(rec), delayMs: 0, colour: false });
    await vi.advanceTimersByTimeAsync(0);
    expect(rec.opts[0]).toMatchObject({ color: false }); // NO_COLOR: an uncoloured frame
    const err = p.sink(sink(log));
    err.write(Buffer.from('notice'));
    expect(rec.calls).toEqual(['start', 'clear']);
    const h = p.watch((s: WatchedSpec) => s)(spec(0, 1, log));
    expect(h.events.output(0, 'stdout', Buffer.from('hi'))).toBe(true);
    expect(rec.calls).toEqual(['start', 'clear', 'stop']);
    expect(log).toEqual(['write notice', 'output 0 stdout hi']);
    p.stop();
    expect(rec.calls.filter((c) => c === 'stop')).toHaveLength(1);
  });

  it('is never drawn when stopped before it was due', async () => {
    vi.useFakeTimers();
    const rec: Rec = { calls: [], opts: [], texts: [] };
    const p = startProgress({ stream, hosts: 4, load: fakeOra(rec), delayMs: 150, colour: true });
    p.stop();
    await vi.advanceTimersByTimeAsync(1000);
    expect(rec.calls).toEqual([]);
  });

  it('a launch failure stops it before the failure is reported', async () => {
    vi.useFakeTimers();
    const rec: Rec = { calls: [], opts: [], texts: [] };
    const log: string[] = [];
    const p = startProgress({ stream, hosts: 2, load: fakeOra(rec), delayMs: 0, colour: false });
    await vi.advanceTimersByTimeAsync(0);
    p.watch((s: WatchedSpec) => s)(spec(1, 1, log)).events.launchFailed('ssh: connection refused');
    expect(rec.calls).toEqual(['start', 'stop']);
    expect(log).toEqual(['failed ssh: connection refused']);
  });

  it('is wanted only on a TTY stderr, for several hosts', () => {
    expect(wantProgress(true, 3, {})).toBe(true);
    expect(wantProgress(false, 3, {})).toBe(false);
    expect(wantProgress(true, 1, {})).toBe(false);
    expect(wantProgress(true, 3, { TERM: 'dumb' })).toBe(false);
    const log: string[] = [];
    const s = sink(log);
    expect(NO_PROGRESS.sink(s)).toBe(s);
  });
});
