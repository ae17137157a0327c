// The one pure function from a job's causes to the process exit status (first cause wins).
// Documented in man/tsmpiexec.1 under EXIT STATUS; tested by a table in test/unit/exit-status.test.ts.
import { constants } from 'node:os';
import type { Cause } from '../model/types.js';

export const EXIT = {
  OK: 0,
  /** Bad command line or input file; nothing was launched. */
  USAGE: 2,
  /** A rank ended without calling PMI finalize after initializing PMI. */
  NO_FINALIZE: 1,
  /** A rank of an MPI program ended without ever speaking PMI (it ran as a one-rank job of its own). */
  NO_PMI: 1,
  /** -timeout / MPIEXEC_TIMEOUT expired. */
  TIMEOUT: 124,
  /** A proxy or rank could not be started (program missing, host unreachable, ...), or a proxy was lost. */
  LAUNCH_FAILED: 125,
  /** Rank output could not be written (EX_IOERR). */
  OUTPUT_FAILED: 74,
  /** A rank broke the PMI protocol or went over the job's KVS limits (sysexits' EX_PROTOCOL). */
  PMI: 76,
  /** An internal error: a bug in tsmpiexec. */
  INTERNAL: 70,
} as const;

export function signalNumber(signal: string): number {
  const n = (constants.signals as Record<string, number | undefined>)[signal];
  return n ?? 0;
}

/** Exit status for one cause. */
export function statusOfCause(cause: Cause): number {
  switch (cause.kind) {
    case 'rank-failed': {
      const o = cause.outcome;
      if (o.kind === 'exited') return o.code & 0xff;
      if (o.kind === 'signaled') return 128 + signalNumber(o.signal);
      return EXIT.LAUNCH_FAILED;
    }
    case 'no-finalize':
      return EXIT.NO_FINALIZE;
    case 'no-pmi':
      return EXIT.NO_PMI;
    case 'aborted':
      return cause.code & 0xff;
    case 'pmi-error':
      return EXIT.PMI;
    case 'timeout':
      return EXIT.TIMEOUT;
    case 'signal':
      return 128 + signalNumber(cause.signal);
    case 'launch-failed':
    case 'proxy-lost':
      return EXIT.LAUNCH_FAILED;
    case 'output-failed':
      return EXIT.OUTPUT_FAILED;
  }
}

/** First cause wins; no cause means success. */
export function exitStatus(causes: readonly Cause[]): number {
  const first = causes[0];
  return first === undefined ? EXIT.OK : statusOfCause(first);
}
