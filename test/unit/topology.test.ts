// Topology readers on fixture texts: CPU lists, hwloc cpusets, hwloc XML (synthetic shapes made by lstopo -i) and
// sysfs trees, and the usable CPUs from /proc/self/status.
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { formatCpuList, parseCpuList, parseHwlocCpuset } from '../../src/topology/cpulist.js';
import { parseHwlocXml } from '../../src/topology/hwloc-xml.js';
import { allowedCpus, readSysfsTopology } from '../../src/topology/sysfs.js';

const FIX = path.join(import.meta.dirname, '..', 'fixtures', 'topology');
const xml = (name: string): string => fs.readFileSync(path.join(FIX, name), 'utf8');

describe('CPU lists', () => {
  it('parses and formats Linux lists', () => {
    expect(parseCpuList('0-3,8,10-11\n')).toEqual([0, 1, 2, 3, 8, 10, 11]);
    expect(parseCpuList('')).toEqual([]);
    expect(parseCpuList('3-1')).toBeUndefined();
    expect(parseCpuList('a')).toBeUndefined();
    expect(formatCpuList([11, 0, 1, 2, 3, 8, 10, 2])).toBe('0-3,8,10-11');
    expect(formatCpuList([5])).toBe('5');
  });
  it('parses hwloc cpusets, one word or several', () => {
    expect(parseHwlocCpuset('0x0000000c')).toEqual([2, 3]);
    expect(parseHwlocCpuset('0x00000001,0x80000000')).toEqual([31, 32]);
    expect(parseHwlocCpuset('0x0')).toEqual([]);
  });
  it('reads Cpus_allowed_list', () => {
    expect(allowedCpus('Name:\tcat\nCpus_allowed:\t3\nCpus_allowed_list:\t0-1\n')).toEqual([0, 1]);
    expect(allowedCpus('Name:\tcat\n')).toBeUndefined();
  });
});

describe('hwloc XML', () => {
  it('2 packages x 2 NUMA nodes x 2 cores x 2 threads', () => {
    const t = parseHwlocXml(xml('pack2-numa2-core2-pu2.xml'));
    expect(t?.pus.length).toBe(16);
    const pu = (c: number) => t?.pus.find((p) => p.cpu === c);
    expect(pu(0)?.core).toBe(pu(1)?.core);
    expect(pu(1)?.core).not.toBe(pu(2)?.core);
    expect([pu(0)?.package, pu(7)?.package, pu(8)?.package, pu(15)?.package]).toEqual([0, 0, 1, 1]);
    expect([pu(0)?.numa, pu(4)?.numa, pu(8)?.numa, pu(12)?.numa]).toEqual([0, 1, 2, 3]);
    expect(new Set(t?.pus.map((p) => p.core)).size).toBe(8);
  });
  it('4 cores, one thread each', () => {
    const t = parseHwlocXml(xml('core4.xml'));
    expect(t?.pus.map((p) => p.cpu)).toEqual([0, 1, 2, 3]);
    expect(new Set(t?.pus.map((p) => p.core)).size).toBe(4);
  });
  it('is not fooled by text that is no topology', () => {
    expect(parseHwlocXml('<html></html>')).toBeUndefined();
  });
});

describe('sysfs', () => {
  const tree: Record<string, string> = {
    '/s/cpu/online': '0-3\n',
    '/s/node/node0/cpulist': '0-1\n',
    '/s/node/node1/cpulist': '2-3\n',
  };
  // two cores with two threads each, siblings numbered apart (0,2) and (1,3) as many Intel hosts do
  const core = [0, 1, 0, 1];
  core.forEach((c, cpu) => {
    tree[`/s/cpu/cpu${cpu}/topology/core_id`] = `${c}\n`;
    tree[`/s/cpu/cpu${cpu}/topology/physical_package_id`] = '0\n';
  });
  const dirs: Record<string, string[]> = { '/s/node': ['node0', 'node1', 'possible'], '/s/cpu': ['cpu0', 'cpu1', 'cpu2', 'cpu3', 'online'] };
  it('reads cores, packages and NUMA nodes', () => {
    const t = readSysfsTopology((p) => tree[p], (p) => dirs[p] ?? [], '/s');
    expect(t?.pus.map((p) => [p.cpu, p.core, p.numa])).toEqual([
      [0, '0:0', 0],
      [1, '0:1', 0],
      [2, '0:0', 1],
      [3, '0:1', 1],
    ]);
  });
  it('says nothing where there is no sysfs', () => {
    expect(readSysfsTopology(() => undefined, () => [], '/s')).toBeUndefined();
  });
});
