// --timing: phases are differences of the job's clock marks; a phase not reached is "-", not 0.
import { describe, expect, it } from 'vitest';
import { timingRows, timingText } from '../../src/report/timing.js';

const base = { startupMs: 40, parseMs: 2.5, planMs: 1.25, hosts: 2, ranks: 4 };

describe('timing', () => {
  it('turns the job clock marks into phase durations', () => {
    const rows = timingRows({ ...base, phases: { ranksStartedMs: 30, firstBarrierMs: 45, lastRankEndedMs: 545, doneMs: 560 } });
    expect(rows.map((r) => [r.phase, r.ms])).toEqual([
      ['start-up', 40],
      ['parse', 2.5],
      ['plan', 1.25],
      ['ranks started', 30],
      ['PMI init barrier', 15],
      ['run', 500],
      ['teardown', 15],
    ]);
    expect(rows[3]?.what).toContain('2 hosts, 4 ranks');
  });

  it('shows a phase that never happened as "-" and measures the next from the last one reached', () => {
    const rows = timingRows({ ...base, phases: { ranksStartedMs: 30, lastRankEndedMs: 130, doneMs: 140 } });
    const barrier = rows.find((r) => r.phase === 'PMI init barrier');
    expect(barrier?.ms).toBeNull();
    expect(rows.find((r) => r.phase === 'run')?.ms).toBe(100);
    const text = timingText({ ...base, phases: { ranksStartedMs: 30, lastRankEndedMs: 130, doneMs: 140 } });
    expect(text).toMatch(/^  PMI init barrier\s+-\s+no PMI barrier/m);
    expect(text).not.toMatch(/- ms/);
  });

  it('prints one aligned line per phase and a total', () => {
    const text = timingText({ ...base, phases: { ranksStartedMs: 30, firstBarrierMs: 45, lastRankEndedMs: 545, doneMs: 560 } });
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toBe('tsmpiexec: timing (wall clock)');
    expect(lines).toHaveLength(9);
    expect(text).toMatch(/^  run\s+500 ms  until the last rank ended$/m);
    expect(text).toMatch(/^  parse\s+2\.5 ms/m);
    expect(text).toMatch(/^  total\s+604 ms/m); // 40 + 2.5 + 1.25 + 560
    const msColumn = new Set(lines.slice(1).map((l) => l.indexOf(' ms ')));
    expect(msColumn.size).toBe(1);
  });

  it('for --dry-run: only start-up, parse and plan', () => {
    const text = timingText(base);
    expect(text).toContain('plan');
    expect(text).not.toContain('ranks started');
    expect(text).toMatch(/total\s+44 ms\s+process start to plan/);
  });
});
