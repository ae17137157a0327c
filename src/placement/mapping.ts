// PMI_process_mapping: the compact "(vector,(start,nodes,ranks_per_node),...)" string MPICH reads to learn
// which ranks share a node. MPICH 4.0.2 parses triples only and wraps when the blocks cover fewer ranks than
// the job size (pmi-wire.md §7), so we emit the shortest repeating prefix that starts at node 0.

/** The longest value MPICH 4.0.2 accepts with our get_maxes (pmi-wire.md §1.2). */
export const MAX_MAPPING_LENGTH = 674;

interface Triple {
  start: number;
  nodes: number;
  perNode: number;
}

/** Runs of consecutive ranks on one node: [node, count]. */
function blocks(nodeOfRank: readonly number[]): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const node of nodeOfRank) {
    const last = out[out.length - 1];
    if (last && last[0] === node) last[1]++;
    else out.push([node, 1]);
  }
  return out;
}

function triples(bl: Array<[number, number]>): Triple[] {
  const out: Triple[] = [];
  for (const [node, count] of bl) {
    const last = out[out.length - 1];
    if (last && last.perNode === count && last.start + last.nodes === node) last.nodes++;
    else out.push({ start: node, nodes: 1, perNode: count });
  }
  return out;
}

function expand(ts: readonly Triple[], size: number): number[] {
  const out: number[] = [];
  if (ts.length === 0) return out;
  while (out.length < size) {
    for (const t of ts) {
      for (let n = 0; n < t.nodes && out.length < size; n++) {
        for (let k = 0; k < t.perNode && out.length < size; k++) out.push(t.start + n);
      }
    }
  }
  return out;
}

function sameArray(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The mapping string for `nodeOfRank[rank] = node index`, or '' when it cannot be expressed within
 * MAX_MAPPING_LENGTH characters (MPICH then falls back to exchanging host names itself).
 */
export function processMapping(nodeOfRank: readonly number[]): string {
  if (nodeOfRank.length === 0) return '';
  const all = triples(blocks(nodeOfRank));
  let chosen = all;
  // Shortest prefix that reproduces the whole layout by MPICH's wrap-around rule.
  if (all[0]?.start === 0) {
    for (let len = 1; len < all.length; len++) {
      const prefix = all.slice(0, len);
      if (sameArray(expand(prefix, nodeOfRank.length), nodeOfRank)) {
        chosen = prefix;
        break;
      }
    }
  }
  const text = `(vector,${chosen.map((t) => `(${t.start},${t.nodes},${t.perNode})`).join(',')})`;
  return text.length <= MAX_MAPPING_LENGTH ? text : '';
}
