// The PMI client library (native/libpmi.c, dist/native/libtsmpiexec-pmi.so) in real ranks: a C program loads
// it with dlopen, as Open MPI's flux component does, and drives the PMI-1 or the PMI-2 C API (put values with
// spaces, '=', ';', '%', newlines and an advertised-maximum value; barrier; read every rank's values back byte
// for byte; check the errors). Under tsmpiexec over PMI_FD, TCP and UNIX sockets, under MPICH's own launcher
// (mpiexec.hydra, which serves the same wire protocol: the library must work with both servers), and alone.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { envWithoutOuterPmi, FIX, hasCommand, NO_OUTER_PMI, runHydra, runTsmpiexec } from '../helpers/run.js';

const LIB = path.resolve('dist/native/libtsmpiexec-pmi.so');
const CHECK = path.join(FIX, 'pmilib-check');
const hydra = hasCommand('mpiexec.hydra');
const missing = !fs.existsSync(LIB) ? `the PMI library is not built (${LIB}: make build needs a C compiler)` : undefined;
// CI has a C compiler: there the library exists and nothing here may be skipped
const skip = missing !== undefined && process.env.CI !== 'true';

function expectRanks(stdout: string, api: 'pmi1' | 'pmi2', n: number): void {
  expect(stdout, stdout).not.toContain('FAIL');
  for (let r = 0; r < n; r++) expect(stdout).toMatch(new RegExp(`^pmilib: ${api} rank ${r} of ${n} ok`, 'm'));
}

describe.skipIf(skip)('the PMI client library in real ranks (skipped only where it is not built and CI is unset)', () => {
  it.each(['pmi1', 'pmi2'] as const)('%s alone, without a server: a singleton, rank 0 of 1', (api) => {
    if (missing) throw new Error(missing);
    const out = execFileSync(CHECK, [LIB, api], { env: envWithoutOuterPmi(), encoding: 'utf8' });
    expectRanks(out, api, 1);
  });

  for (const api of ['pmi1', 'pmi2'] as const) {
    for (const transport of [[], ['-pmi-port'], ['--pmi-transport', 'unix']]) {
      it(`${api} under tsmpiexec -n 4 ${transport.join(' ') || '(PMI_FD)'}`, async () => {
        // a runtime directory of its own: the socket directory of a unix run is not another test file's leftover
        const xdg = fs.mkdtempSync(path.join(os.tmpdir(), 'pmilib-xdg-'));
        const r = await runTsmpiexec([...transport, '-n', '4', CHECK, LIB, api], { env: { ...NO_OUTER_PMI, XDG_RUNTIME_DIR: xdg }, timeoutMs: 60_000 });
        expect(fs.readdirSync(xdg), 'left in XDG_RUNTIME_DIR').toEqual([]);
        fs.rmSync(xdg, { recursive: true, force: true });
        expect(r.stderr).toBe('');
        expect(r.code).toBe(0);
        expectRanks(r.stdout, api, 4);
        if (api === 'pmi1') expect(r.stdout).toMatch(/clique=0,1,2,3 /);
      });
    }
  }

  it('tells the ranks the universe size: the host list\'s slots by default, or -usize N, or -1 for -usize INFINITE', async () => {
    const universe = async (args: string[]): Promise<string> => {
      const r = await runTsmpiexec([...args, '-genv', 'PMILIB_SHOW_UNIVERSE', '1', CHECK, LIB, 'pmi1'], { env: NO_OUTER_PMI, timeoutMs: 60_000 });
      expect(r.code, r.stderr).toBe(0);
      return /^pmilib: rank 0 universe (-?\d+)$/m.exec(r.stdout)?.[1] ?? 'none';
    };
    expect(await universe(['-hosts', `${os.hostname()}:6`, '-n', '2'])).toBe('6');
    expect(await universe(['-n', '2', '-usize', '16'])).toBe('16');
    expect(await universe(['-n', '2', '-usize', 'INFINITE'])).toBe('-1');
    expect(await universe(['-n', '3', '-usize', '1'])).toBe('3');
    expect(await universe(['-n', '1'])).toBe(String(Math.max(1, os.availableParallelism())));
  });

  describe.skipIf(!hydra)('under mpiexec.hydra (MPICH\'s launcher serves the same wire protocol; skipped only without it)', () => {
    for (const api of ['pmi1', 'pmi2'] as const) {
      for (const extra of [[], ['-pmi-port']]) {
        it(`${api} under mpiexec.hydra -n 4 ${extra.join(' ') || '(PMI_FD)'}`, async () => {
          const res = await runHydra([...extra, '-n', '4', CHECK, LIB, api], randomUUID());
          expect(res.code, `${res.stdout}${res.stderr}`).toBe(0);
          expectRanks(res.stdout, api, 4);
        });
      }
    }
  });
});
