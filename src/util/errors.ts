// Expected failures carry a stable code, one line naming the culprit, and a hint (pnpm's PnpmError model).
// Anything that is not a TsmpiError is a bug: main prints its stack and asks for a report.

/** Stable error codes, documented in the man page (EXIT STATUS / ERRORS). */
export const ERROR_CODES = {
  USAGE: 'usage',
  BAD_VALUE: 'bad-value',
  HOSTFILE: 'hostfile',
  CONFIGFILE: 'configfile',
  PROGRAM: 'program',
  LAUNCH: 'launch',
  ALLOCATION: 'allocation',
  ISOLATION: 'isolation',
  IO: 'io',
} as const;
export type ErrorCode = (typeof ERROR_CODES)[keyof typeof ERROR_CODES];

export class TsmpiError extends Error {
  readonly code: ErrorCode;
  readonly culprit: string | undefined;
  readonly hint: string | undefined;
  /** The process exit status this error maps to (see run/exit-status.ts). */
  readonly exitStatus: number;
  constructor(code: ErrorCode, message: string, opts: { culprit?: string; hint?: string; exitStatus?: number } = {}) {
    super(message);
    this.name = 'TsmpiError';
    this.code = code;
    this.culprit = opts.culprit;
    this.hint = opts.hint;
    this.exitStatus = opts.exitStatus ?? 2;
  }
}

export function usageError(message: string, culprit?: string, hint?: string): TsmpiError {
  return new TsmpiError(ERROR_CODES.USAGE, message, { culprit, hint, exitStatus: 2 });
}

export function isTsmpiError(e: unknown): e is TsmpiError {
  return e instanceof TsmpiError;
}

/**
 * Control characters from user input (a value with a newline, an ANSI escape in a host file) shown as escapes,
 * so an error stays one line and cannot drive the user's terminal.
 */
export function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => {
    if (c === '\n') return '\\n';
    if (c === '\t') return '\\t';
    if (c === '\r') return '\\r';
    return `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
  });
}

/** `tsmpiexec: <what> (<culprit>)` plus an optional `hint:` line. No stack. */
export function formatError(e: TsmpiError): string {
  const head = `tsmpiexec: ${printable(e.message)}${e.culprit !== undefined ? ` (${e.culprit === '' ? "''" : printable(e.culprit)})` : ''} [${e.code}]`;
  return e.hint ? `${head}\nhint: ${printable(e.hint)}` : head;
}
