// Slurm's compressed host lists (`n[01-04,07],gpu[1-2]`, `rack[1-2]-n[1-3]`) and counts (`2(x3),1`).
// Pure; errors are `BadPart`s the caller turns into an allocation error naming its variable.

/** Hosts a single expression may expand to: more is a mistake (or an attack on our memory), not a cluster. */
export const MAX_HOSTS = 100_000;

export class BadPart extends Error {}

/** Splits on commas outside brackets. */
function topLevelItems(expr: string): string[] {
  const items: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < expr.length; i++) {
    const c = expr[i];
    if (c === '[') {
      if (depth > 0) throw new BadPart(`nested '[' at position ${i + 1}`);
      depth++;
    } else if (c === ']') {
      if (depth === 0) throw new BadPart(`']' without '[' at position ${i + 1}`);
      depth--;
    } else if (c === ',' && depth === 0) {
      items.push(expr.slice(start, i));
      start = i + 1;
    }
  }
  if (depth > 0) throw new BadPart(`unclosed '[' in '${expr}'`);
  items.push(expr.slice(start));
  return items;
}

/** `01-04,07` → ['01','02','03','04','07']: zero padding follows the width of the lower bound. */
function expandRanges(body: string, item: string): string[] {
  const out: string[] = [];
  for (const part of body.split(',')) {
    const m = /^([0-9]+)(?:-([0-9]+))?$/.exec(part);
    if (!m) throw new BadPart(`bad range '${part}' in '${item}'`);
    const loText = m[1] as string;
    const hiText = m[2] ?? loText;
    if (loText.length > 15 || hiText.length > 15) throw new BadPart(`number too long in '${part}'`);
    const lo = Number(loText);
    const hi = Number(hiText);
    if (hi < lo) throw new BadPart(`range '${part}' runs backwards in '${item}'`);
    if (hi - lo + 1 > MAX_HOSTS) throw new BadPart(`range '${part}' names more than ${MAX_HOSTS} hosts`);
    const width = loText.length;
    for (let n = lo; n <= hi; n++) out.push(String(n).padStart(width, '0'));
    if (out.length > MAX_HOSTS) throw new BadPart(`'${item}' names more than ${MAX_HOSTS} hosts`);
  }
  return out;
}

/** One item: literal text and bracket groups; several groups expand as a cartesian product, left to right. */
function expandItem(item: string): string[] {
  if (item.trim() === '') throw new BadPart('empty entry');
  if (/\s/.test(item)) throw new BadPart(`white space in '${item}'`);
  let names = [''];
  const re = /\[([^\]]*)\]|([^[]+)/g;
  for (let m = re.exec(item); m !== null; m = re.exec(item)) {
    if (m[2] !== undefined) {
      const lit = m[2];
      if (!/^[A-Za-z0-9._-]+$/.test(lit)) throw new BadPart(`'${lit}' in '${item}' is not part of a host name`);
      names = names.map((n) => n + lit);
      continue;
    }
    const body = m[1] ?? '';
    if (body === '') throw new BadPart(`empty brackets in '${item}'`);
    const suffixes = expandRanges(body, item);
    if (names.length * suffixes.length > MAX_HOSTS) throw new BadPart(`'${item}' names more than ${MAX_HOSTS} hosts`);
    names = names.flatMap((n) => suffixes.map((s) => n + s));
  }
  for (const n of names) if (!/^[A-Za-z0-9_]/.test(n)) throw new BadPart(`'${n}' is not a host name`);
  return names;
}

/** Expands a Slurm host list expression into host names, in order. Throws BadPart. */
export function expandHostList(expr: string): string[] {
  const out: string[] = [];
  for (const item of topLevelItems(expr.trim())) {
    out.push(...expandItem(item));
    if (out.length > MAX_HOSTS) throw new BadPart(`more than ${MAX_HOSTS} hosts`);
  }
  return out;
}

/** `2(x3),1` → [2, 2, 2, 1] (SLURM_TASKS_PER_NODE, SLURM_JOB_CPUS_PER_NODE). Throws BadPart. */
export function expandCounts(text: string): number[] {
  const out: number[] = [];
  for (const raw of text.trim().split(',')) {
    const part = raw.trim();
    const m = /^([0-9]{1,9})(?:\(x([0-9]{1,9})\))?$/.exec(part);
    if (!m) throw new BadPart(`bad count '${part}'`);
    const n = Number(m[1]);
    const times = m[2] === undefined ? 1 : Number(m[2]);
    if (times < 1) throw new BadPart(`bad repeat in '${part}'`);
    if (out.length + times > MAX_HOSTS) throw new BadPart(`more than ${MAX_HOSTS} entries`);
    for (let k = 0; k < times; k++) out.push(n);
  }
  return out;
}
