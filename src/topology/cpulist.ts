// CPU lists as Linux writes them ("0-3,8,10-11") and as hwloc writes cpusets ("0x000000ff,0x00000001"). Pure.

/** "0-3,8" → [0,1,2,3,8]; '' → []. Returns undefined for text that is not a CPU list. */
export function parseCpuList(text: string): number[] | undefined {
  const t = text.trim();
  if (t === '') return [];
  const out = new Set<number>();
  for (const part of t.split(',')) {
    const m = /^([0-9]{1,6})(?:-([0-9]{1,6}))?$/.exec(part.trim());
    if (!m) return undefined;
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a) return undefined;
    for (let c = a; c <= b; c++) out.add(c);
  }
  return [...out].sort((x, y) => x - y);
}

/** [0,1,2,3,8] → "0-3,8" (sorted, duplicates dropped). */
export function formatCpuList(cpus: readonly number[]): string {
  const s = [...new Set(cpus)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < s.length; ) {
    let j = i;
    while (j + 1 < s.length && (s[j + 1] as number) === (s[j] as number) + 1) j++;
    parts.push(i === j ? String(s[i]) : `${String(s[i])}-${String(s[j])}`);
    i = j + 1;
  }
  return parts.join(',');
}

/** An hwloc cpuset ("0x0000ffff", or 32-bit words "0x00000001,0xffffffff" most significant first) → CPU numbers. */
export function parseHwlocCpuset(text: string): number[] {
  const words = text.split(',').map((w) => w.trim().replace(/^0x/i, ''));
  const out: number[] = [];
  let base = 0;
  for (let k = words.length - 1; k >= 0; k--) {
    const w = words[k] ?? '';
    // a word may be longer than 8 digits when it is the only one
    for (let d = w.length - 1, bit = base; d >= 0; d--, bit += 4) {
      const nib = parseInt(w[d] ?? '0', 16);
      for (let b = 0; b < 4; b++) if (nib & (1 << b)) out.push(bit + b);
    }
    base += Math.max(32, w.length * 4);
  }
  return out.sort((a, b) => a - b);
}
