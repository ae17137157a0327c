// Host lists as users write them: `-hosts a,b:4,c` and host files (`host`, `host:N`, `host slots=N`).
// Strict: a word we do not understand is an error naming it (and path:line in a file), never skipped.
// A host named twice becomes one entry whose slot counts add up, in first-seen order (a mention without
// a count counts as one slot), the way Hydra merges repeated hosts: `a,a` and `a\na` both mean `a:2`.
import { ERROR_CODES, TsmpiError } from '../util/errors.js';
import type { HostSpec } from '../model/types.js';
import { MAX_NUMBER } from './values.js';

const HOST_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;

/** Adds `h` to `out`, merging with an entry of the same name. */
function addHost(out: HostSpec[], index: Map<string, HostSpec>, h: HostSpec): void {
  const seen = index.get(h.name);
  if (seen === undefined) {
    const copy: HostSpec = h.slots === undefined ? { name: h.name } : { name: h.name, slots: h.slots };
    index.set(h.name, copy);
    out.push(copy);
    return;
  }
  seen.slots = Math.min(MAX_NUMBER, (seen.slots ?? 1) + (h.slots ?? 1));
}

/** Checks a slot count; returns an error text or the number. */
function slotCount(text: string): number | string {
  if (!/^[0-9]+$/.test(text)) return `slot count '${text}' is not a positive whole number`;
  const n = text.length > 12 ? Infinity : Number(text);
  if (n < 1) return 'slot count must be at least 1';
  if (n > MAX_NUMBER) return `slot count ${text} is too large (at most ${MAX_NUMBER})`;
  return n;
}

/** DNS limits (RFC 1035): 253 characters in all, 63 per dot-separated label. */
const MAX_NAME = 253;
const MAX_LABEL = 63;

function checkName(name: string): string | undefined {
  if (HOST_NAME.test(name)) {
    const shown = name.length > 40 ? `${name.slice(0, 40)}...` : name;
    if (name.length > MAX_NAME) return `host name '${shown}' is ${name.length} characters long; a host name has at most ${MAX_NAME}`;
    const long = name.split('.').find((l) => l.length > MAX_LABEL);
    if (long !== undefined) return `host name '${shown}' has a part of ${long.length} characters between dots; each part has at most ${MAX_LABEL}`;
    return undefined;
  }
  if (/[[\]]/.test(name)) return `host name '${name}' looks like a range; ranges are not expanded here`;
  return `'${name}' is not a host name`;
}

/** `a,b:4,c` → hosts. Throws a bad-value TsmpiError naming the bad entry. */
export function parseHostList(value: string): HostSpec[] {
  const fail = (message: string, culprit: string): TsmpiError =>
    new TsmpiError(ERROR_CODES.BAD_VALUE, message, { culprit, hint: 'write -hosts NAME[:SLOTS],NAME[:SLOTS],...', exitStatus: 2 });
  const entries = value.split(',').map((e) => e.trim());
  if (entries.every((e) => e === '')) throw fail(`empty host list '${value}'`, value);
  const out: HostSpec[] = [];
  const index = new Map<string, HostSpec>();
  entries.forEach((entry, k) => {
    if (entry === '') throw fail(`empty entry ${k + 1} in host list '${value}'`, value);
    const colon = entry.indexOf(':');
    const name = colon < 0 ? entry : entry.slice(0, colon);
    const bad = checkName(name);
    if (bad !== undefined) throw fail(`bad host entry '${entry}': ${bad}`, entry);
    if (colon < 0) return addHost(out, index, { name });
    const slots = slotCount(entry.slice(colon + 1));
    if (typeof slots === 'string') throw fail(`bad host entry '${entry}': ${slots}`, entry);
    addHost(out, index, { name, slots });
  });
  return out;
}

/**
 * A host file: one host per line as `NAME`, `NAME:SLOTS` or `NAME slots=SLOTS` (Open MPI's form, where
 * `max_slots=M` is also accepted and ignored); `#` starts a comment, anywhere on a line; blank lines are
 * skipped. Errors (code `hostfile`) name `path:line`. A file with no hosts gives [] (the caller decides).
 */
export function parseHostFile(text: string, path: string): HostSpec[] {
  const out: HostSpec[] = [];
  const index = new Map<string, HostSpec>();
  const lines = text.split('\n');
  lines.forEach((raw, k) => {
    const where = `${path}:${k + 1}`;
    const fail = (message: string): TsmpiError =>
      new TsmpiError(ERROR_CODES.HOSTFILE, `${where}: ${message}`, {
        culprit: where,
        hint: 'write one host per line: NAME, NAME:SLOTS or NAME slots=SLOTS (# starts a comment)',
        exitStatus: 2,
      });
    const hash = raw.indexOf('#');
    const line = (hash < 0 ? raw : raw.slice(0, hash)).trim();
    if (line === '') return;
    const [first, ...rest] = line.split(/\s+/) as [string, ...string[]];
    const colon = first.indexOf(':');
    const name = colon < 0 ? first : first.slice(0, colon);
    const bad = checkName(name);
    if (bad !== undefined) throw fail(bad);
    let slots: number | undefined;
    if (colon >= 0) {
      const n = slotCount(first.slice(colon + 1));
      if (typeof n === 'string') throw fail(n);
      slots = n;
    }
    let sawSlots = colon >= 0;
    let sawMax = false;
    for (const word of rest) {
      const m = /^(slots|max_slots)=(.*)$/.exec(word);
      if (m === null) throw fail(`unknown word '${word}' after host ${name}`);
      const n = slotCount(m[2] ?? '');
      if (typeof n === 'string') throw fail(`${m[1]}: ${n}`);
      if (m[1] === 'slots') {
        if (sawSlots) throw fail(`slot count given twice for host ${name}`);
        sawSlots = true;
        slots = n;
      } else {
        if (sawMax) throw fail(`max_slots given twice for host ${name}`);
        sawMax = true;
      }
    }
    addHost(out, index, slots === undefined ? { name } : { name, slots });
  });
  return out;
}
