// Reads an hwloc XML topology (lstopo --of xml, or the file HWLOC_XMLFILE names) into a Topology. Pure: only the
// object nesting and each object's type, os_index and cpuset are used, so a tag scan is enough (no XML library).
import { parseHwlocCpuset } from './cpulist.js';
import type { Pu, Topology } from './types.js';

interface Frame {
  type: string;
  osIndex: number;
  id: number;
}

const TAG = /<(\/?)object\b([^>]*?)(\/?)>/g;

function attr(attrs: string, name: string): string | undefined {
  return new RegExp(`\\b${name}="([^"]*)"`).exec(attrs)?.[1];
}

/** Returns undefined when the text holds no PU objects (not an hwloc topology). */
export function parseHwlocXml(xml: string): Topology | undefined {
  const stack: Frame[] = [];
  const pus: Pu[] = [];
  const numaSets: Array<{ node: number; cpus: Set<number> }> = [];
  let nextId = 0;
  for (const m of xml.matchAll(TAG)) {
    const closing = m[1] === '/';
    const attrs = m[2] ?? '';
    const selfClosing = m[3] === '/';
    if (closing) {
      stack.pop();
      continue;
    }
    const type = attr(attrs, 'type') ?? '';
    const osIndex = Number(attr(attrs, 'os_index') ?? '-1');
    const frame: Frame = { type, osIndex, id: nextId++ };
    if (type === 'NUMANode') {
      numaSets.push({ node: osIndex, cpus: new Set(parseHwlocCpuset(attr(attrs, 'cpuset') ?? '0x0')) });
    } else if (type === 'PU') {
      const core = [...stack].reverse().find((f) => f.type === 'Core');
      const pkg = [...stack].reverse().find((f) => f.type === 'Package');
      pus.push({ cpu: osIndex, core: core ? `c${String(core.id)}` : `pu${String(osIndex)}`, package: pkg ? pkg.osIndex : 0, numa: -1 });
    }
    if (!selfClosing) stack.push(frame);
  }
  if (pus.length === 0) return undefined;
  for (const p of pus) p.numa = numaSets.find((n) => n.cpus.has(p.cpu))?.node ?? -1;
  pus.sort((a, b) => a.cpu - b.cpu);
  return { pus, source: 'hwloc-xml' };
}
