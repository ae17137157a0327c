// The launch tree (--tree-width K): the controller starts at most K proxies itself; each of those starts up
// to K more from its own host, and so on (a k-ary tree in breadth-first order), so a long host list does not
// serialize on one machine's ssh client. Pure layout; proxies.ts and proxy/subtree.ts act on it.

export interface TreeNode {
  index: number;
  /** undefined: started by the controller */
  parent: number | undefined;
  depth: number;
  children: number[];
}

/** Lay `indices` (in order) out as a k-ary tree under the controller. */
export function treeLayout(indices: readonly number[], width: number): Map<number, TreeNode> {
  const k = Math.max(1, width);
  const nodes = new Map<number, TreeNode>();
  indices.forEach((index, i) => {
    const pos = i + 1; // the controller is position 0
    const parentPos = Math.floor((pos - 1) / k);
    const parent = parentPos === 0 ? undefined : indices[parentPos - 1];
    const depth = parent === undefined ? 0 : (nodes.get(parent)?.depth ?? 0) + 1;
    nodes.set(index, { index, parent, depth, children: [] });
    if (parent !== undefined) nodes.get(parent)?.children.push(index);
  });
  return nodes;
}

/** Every index below `index` in the tree. */
export function subtreeOf(nodes: Map<number, TreeNode>, index: number): number[] {
  const out: number[] = [];
  const walk = (i: number): void => {
    for (const c of nodes.get(i)?.children ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(index);
  return out;
}

/** The first-level ancestor (started by the controller) of `index`. */
export function topOf(nodes: Map<number, TreeNode>, index: number): number {
  let i = index;
  for (;;) {
    const p = nodes.get(i)?.parent;
    if (p === undefined) return i;
    i = p;
  }
}
