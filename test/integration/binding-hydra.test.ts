// Our binding placement against MPICH Hydra's on the same synthetic topology: Hydra prints its bindings with
// HYDRA_TOPO_DEBUG=1 when HWLOC_XMLFILE names an hwloc XML file. Skipped where mpiexec.hydra is not installed.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { localBinding } from '../../src/binding/cpus.js';
import { parseBindTo, parseMapBy } from '../../src/binding/policy.js';
import { parseHwlocXml } from '../../src/topology/hwloc-xml.js';

const XML = path.join(import.meta.dirname, '..', 'fixtures', 'topology', 'pack2-numa2-core2-pu2.xml');
const hydra = spawnSync('sh', ['-c', 'command -v mpiexec.hydra'], { encoding: 'utf8' }).stdout.trim();

/** Hydra's "process 2 binding: 0011000000000000" lines → CPU lists by rank. */
function hydraBindings(args: string[], n: number): number[][] {
  const r = spawnSync(hydra, [...args, '-n', String(n), 'true'], {
    env: { ...process.env, HWLOC_XMLFILE: XML, HYDRA_TOPO_DEBUG: '1' },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 30_000,
  });
  // Hydra's own failure, in full: its status or signal and what it said
  if (r.status !== 0) throw new Error(`mpiexec.hydra ${args.join(' ')} failed (status ${String(r.status)}, signal ${String(r.signal)}, ${r.error?.message ?? 'no spawn error'}): ${r.stderr}${r.stdout.slice(-2000)}`);
  const out = r.stdout;
  const by: number[][] = [];
  for (const m of out.matchAll(/^process ([0-9]+) binding: ([01]+)$/gm)) {
    by[Number(m[1])] = [...(m[2] ?? '')].flatMap((b, i) => (b === '1' ? [i] : []));
  }
  return by;
}

describe.skipIf(hydra === '')('binding placement matches Hydra', () => {
  const topology = parseHwlocXml(fs.readFileSync(XML, 'utf8'));
  const cases: Array<[string, string | undefined, number]> = [
    ['core', undefined, 4],
    ['core', 'socket', 4],
    ['core', 'numa', 4],
    ['hwthread', undefined, 4],
    ['hwthread', 'socket', 4],
    ['socket', undefined, 3],
    ['numa', undefined, 4],
    ['core:2', undefined, 2],
    ['core', undefined, 10],
    ['user:3,1', undefined, 2],
  ];
  for (const [bind, map, n] of cases) {
    it(`-bind-to ${bind}${map ? ` -map-by ${map}` : ''} -n ${n}`, () => {
      if (!topology) throw new Error('fixture');
      const ours = localBinding({ topology, usable: undefined, localRanks: n, bind: parseBindTo(bind, '-bind-to'), ...(map ? { map: parseMapBy(map, '-map-by') } : {}) });
      const theirs = hydraBindings(['-bind-to', bind, ...(map ? ['-map-by', map] : [])], n);
      expect(ours.kind === 'bound' ? ours.cpus : ours.kind).toEqual(theirs);
    });
  }
});
