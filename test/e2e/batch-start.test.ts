// Whole jobs whose ranks start in batches through the native helper (src/proxy/rank-batch.ts) next to the
// same jobs started rank by rank by Node (TSMPIEXEC_NATIVE=0): the same output, exit status and PMI, and which
// path each rank took (its parent: the helper, or the launcher itself). Rank 0 reads stdin, so it always
// starts through Node.
import { afterEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FIX, leftovers, runTsmpiexec, type RunResult } from '../helpers/run.js';

const built = fs.existsSync(path.resolve('dist/native/tsmpiexec-helper'));
let marker: string | undefined;

afterEach(async () => {
  if (marker !== undefined) expect(await leftovers(marker, 5000), 'processes of the job left behind').toEqual([]);
  marker = undefined;
});

async function run(args: string[], env: Record<string, string>): Promise<RunResult> {
  const r = await runTsmpiexec(args, { timeoutMs: 60_000, env });
  marker = r.marker;
  return r;
}

const MODES: Array<{ mode: string; env: Record<string, string>; parent: string }> = [
  { mode: 'batches (native helper)', env: {}, parent: 'tsmpiexec-helpe' },
  { mode: 'one by one (TSMPIEXEC_NATIVE=0)', env: { TSMPIEXEC_NATIVE: '0' }, parent: 'launcher' },
];
describe.runIf(built).each(MODES)('starting 150 ranks in $mode', ({ env, parent }) => {
  it('runs every rank once with its own output', async () => {
    const r = await run(['-l', '-n', '150', 'sh', '-c', 'echo "parent $(cat /proc/$PPID/comm)"'], env);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(150);
    const ranks = lines.map((l) => Number(/^\[(\d+)\]/.exec(l)?.[1]));
    expect(new Set(ranks).size).toBe(150);
    const parents = new Set(lines.filter((l) => !l.startsWith('[0] ')).map((l) => l.replace(/^\[\d+\] parent /, '')));
    if (parent === 'launcher') expect([...parents].some((p) => p.startsWith('tsmpiexec-helpe'))).toBe(false);
    else expect([...parents]).toEqual([parent]);
    expect(lines.find((l) => l.startsWith('[0] '))).not.toContain('tsmpiexec-helpe');
  });

  it('ends the job with the exit code of a failing rank of the third batch, stopping the others', async () => {
    const r = await run(['-n', '150', 'sh', '-c', '[ $PMI_RANK = 140 ] && exit 9; sleep 60'], env);
    expect(r.code).toBe(9);
    expect(r.stderr).toMatch(/rank 140 on \S+ exited with code 9/);
    expect(r.ms).toBeLessThan(30_000);
  });

  it('serves PMI to every rank (MPI hello, 8 ranks)', async () => {
    const r = await run(['-n', '8', path.join(FIX, 'hello')], env);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(8);
    expect(r.stdout).toContain('hello from rank 7 of 8');
  });

  it('stops every rank on Ctrl-C (SIGINT to the launcher) with 130', async () => {
    let sent = false;
    const r = await runTsmpiexec(['-n', '70', 'sh', '-c', 'echo up; sleep 60'], {
      timeoutMs: 60_000,
      env,
      onStdout: (chunk, child) => {
        if (!sent && chunk.toString().includes('up')) {
          sent = true;
          setTimeout(() => child.kill('SIGINT'), 300);
        }
      },
    });
    marker = r.marker;
    expect(sent).toBe(true);
    expect(r.code).toBe(130);
    expect(r.ms).toBeLessThan(20_000);
  });
});
