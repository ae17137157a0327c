// Colour for the terminal: whether a stream gets escape codes (TTY, NO_COLOR, FORCE_COLOR), and the few
// styles tsmpiexec uses (rank labels of -l, `tsmpiexec:` error and notice lines, bold table headers).
// chalk is imported only when some stream is coloured, so a run into a pipe or a batch log never loads it;
// its own detection (which turns colour on for CI variables) is not used: the level is decided here.
import type { ChalkInstance } from 'chalk';
import { importChalk } from '../util/external.js';

export type Env = Record<string, string | undefined>;

/**
 * Colour on this stream? NO_COLOR (any value, even empty) always wins; then FORCE_COLOR turns it on even
 * for a pipe or a file (FORCE_COLOR=0 or false turns it off); otherwise only a TTY whose TERM is not dumb.
 */
export function colourWanted(isTTY: boolean, env: Env): boolean {
  if (env.NO_COLOR !== undefined) return false;
  const force = env.FORCE_COLOR;
  if (force !== undefined) return !(force === '0' || force.toLowerCase() === 'false');
  return isTTY && env.TERM !== 'dumb';
}

/** The styles of one output stream; identity functions when it is not coloured. */
export interface Paint {
  readonly enabled: boolean;
  /** `[rank] ` for -l, in one of a cycle of colours (never red: red means failure). */
  label(rank: number): string;
  /** A `tsmpiexec: ...` line (no newline) about a failure. */
  error(line: string): string;
  /** A `tsmpiexec: ...` line (no newline) the user should notice, but not a failure by itself. */
  notice(line: string): string;
  /** A `hint: ...` line. */
  hint(line: string): string;
  bold(text: string): string;
}

const plainLabel = (rank: number): string => `[${rank}] `;

export const PLAIN: Paint = {
  enabled: false,
  label: plainLabel,
  error: (l) => l,
  notice: (l) => l,
  hint: (l) => l,
  bold: (t) => t,
};

/** Rank label colours: distinguishable on dark and light backgrounds; no red (failures) and no grey. */
const LABEL_COLOURS = ['cyan', 'magenta', 'green', 'yellow', 'blue', 'cyanBright', 'magentaBright', 'greenBright', 'yellowBright', 'blueBright'] as const;

const PREFIX = 'tsmpiexec:';

function coloured(c: ChalkInstance): Paint {
  const labels = new Map<number, string>();
  const prefixed = (line: string, body: (s: string) => string): string =>
    line.startsWith(PREFIX) ? c.bold(PREFIX) + body(line.slice(PREFIX.length)) : body(line);
  return {
    enabled: true,
    label: (rank) => {
      let l = labels.get(rank);
      if (l === undefined) {
        l = c[LABEL_COLOURS[rank % LABEL_COLOURS.length] ?? 'cyan'](`[${rank}]`) + ' ';
        labels.set(rank, l);
      }
      return l;
    },
    error: (line) => prefixed(line, (s) => c.red(s)),
    notice: (line) => prefixed(line, (s) => c.yellow(s)),
    hint: (line) => c.dim(line),
    bold: (t) => c.bold(t),
  };
}

/** The Paint of each stream; imports chalk only when one of them is coloured. */
export async function loadPaints(want: { stdout: boolean; stderr: boolean }): Promise<{ stdout: Paint; stderr: Paint }> {
  if (!want.stdout && !want.stderr) return { stdout: PLAIN, stderr: PLAIN };
  const { Chalk } = await importChalk();
  // Level 1 (16 colours): every colour terminal shows it; FORCE_COLOR=3 asks for nothing we draw.
  const paint = coloured(new Chalk({ level: 1 }));
  return { stdout: want.stdout ? paint : PLAIN, stderr: want.stderr ? paint : PLAIN };
}

/** Highlights a block of `tsmpiexec: ...` / `hint: ...` lines (formatError's output) as an error. */
export function paintError(p: Paint, text: string): string {
  if (!p.enabled) return text;
  return text
    .split('\n')
    .map((l) => (l.startsWith('hint:') ? p.hint(l) : l.length > 0 ? p.error(l) : l))
    .join('\n');
}
