// Colour decisions (TTY, NO_COLOR, FORCE_COLOR, TERM=dumb) and the styles themselves.
import { describe, expect, it } from 'vitest';
import { colourWanted, loadPaints, paintError, PLAIN } from '../../src/report/style.js';

const ESC = '\x1b';

describe('colourWanted', () => {
  const cases: Array<[string, boolean, Record<string, string>, boolean]> = [
    ['a TTY', true, {}, true],
    ['a pipe', false, {}, false],
    ['a TTY with TERM=dumb', true, { TERM: 'dumb' }, false],
    ['a TTY with NO_COLOR=1', true, { NO_COLOR: '1' }, false],
    ['a TTY with an empty NO_COLOR (any value disables)', true, { NO_COLOR: '' }, false],
    ['a pipe with FORCE_COLOR=1', false, { FORCE_COLOR: '1' }, true],
    ['a pipe with an empty FORCE_COLOR', false, { FORCE_COLOR: '' }, true],
    ['a pipe with FORCE_COLOR=3', false, { FORCE_COLOR: '3' }, true],
    ['a TTY with FORCE_COLOR=0', true, { FORCE_COLOR: '0' }, false],
    ['a TTY with FORCE_COLOR=false', true, { FORCE_COLOR: 'false' }, false],
    ['NO_COLOR wins over FORCE_COLOR', false, { FORCE_COLOR: '1', NO_COLOR: '1' }, false],
    ['CI alone does not colour a pipe (a batch log)', false, { CI: 'true', GITHUB_ACTIONS: 'true' }, false],
    ['FORCE_COLOR with TERM=dumb', false, { FORCE_COLOR: '1', TERM: 'dumb' }, true],
  ];
  it.each(cases)('%s', (_name, tty, env, want) => {
    expect(colourWanted(tty, env)).toBe(want);
  });
});

describe('paints', () => {
  it('plain paints are the identity and label as [rank] ', async () => {
    const p = await loadPaints({ stdout: false, stderr: false });
    expect(p.stdout).toBe(PLAIN);
    expect(p.stderr).toBe(PLAIN);
    expect(PLAIN.label(7)).toBe('[7] ');
    expect(PLAIN.error('tsmpiexec: x')).toBe('tsmpiexec: x');
    expect(paintError(PLAIN, 'tsmpiexec: bad\nhint: try')).toBe('tsmpiexec: bad\nhint: try');
  });

  it('colours only the stream asked for', async () => {
    const p = await loadPaints({ stdout: true, stderr: false });
    expect(p.stdout.enabled).toBe(true);
    expect(p.stderr).toBe(PLAIN);
  });

  it('labels ranks in colours that cycle, never red, and keep the visible text', async () => {
    const { stdout: p } = await loadPaints({ stdout: true, stderr: true });
    const strip = (s: string): string => s.replace(/\x1b\[[0-9;]*m/g, '');
    const labels = Array.from({ length: 12 }, (_, r) => p.label(r));
    labels.forEach((l, r) => {
      expect(l).toContain(ESC);
      expect(strip(l)).toBe(`[${r}] `);
      expect(l).not.toContain(`${ESC}[31m`); // red means failure
    });
    const colour = (l: string | undefined): string => /^\x1b\[[0-9;]*m/.exec(l ?? '')?.[0] ?? '';
    expect(colour(labels[0])).not.toBe(colour(labels[1]));
    expect(colour(labels[10])).toBe(colour(labels[0]));
  });

  it('highlights tsmpiexec: error lines, notices and hints differently', async () => {
    const { stderr: p } = await loadPaints({ stdout: false, stderr: true });
    const e = p.error('tsmpiexec: rank 1 failed');
    const n = p.notice('tsmpiexec: no cgroups');
    expect(e).toContain(`${ESC}[1mtsmpiexec:`);
    expect(e).toContain(`${ESC}[31m`);
    expect(n).toContain(`${ESC}[33m`);
    expect(e.replace(/\x1b\[[0-9;]*m/g, '')).toBe('tsmpiexec: rank 1 failed');
    const block = paintError(p, 'tsmpiexec: bad value (-n) [bad-value]\nhint: give a number');
    const [head, hint] = block.split('\n');
    expect(head).toContain(`${ESC}[31m`);
    expect(hint).toContain(`${ESC}[2m`);
    expect(hint).not.toContain(`${ESC}[31m`);
  });
});
