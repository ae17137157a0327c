// What a host proxy needs to serve PMIx to its ranks (docs/pmix.md): the job's whole map, since libpmix tells
// every rank where all the others are. Carried in the PMI group description, so it reaches remote proxies in
// the `assign` message unchanged. Types only.

export interface PmixJob {
  /** The PMIx namespace (the job's KVS name). */
  nspace: string;
  /** Node names, one per proxy, in proxy order: node id i is nodes[i]. */
  nodes: string[];
  /** The ranks of each node, in the same order. */
  nodeRanks: number[][];
  /** This proxy's node id. */
  nodeIndex: number;
  /** Every rank's appnum, in rank order. */
  appnums: number[];
  universeSize: number;
}
