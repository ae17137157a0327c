// GPUs per rank (-gpus-per-proc N): each local rank of a host gets its own N devices, in local-rank order,
// through the variable its GPU runtime reads. An outer allocation (a batch system's CUDA_VISIBLE_DEVICES, ...) is
// the pool when one is set; otherwise the host's NVIDIA device nodes are. Pure: the caller passes what it read.

/** The variables GPU runtimes read, in the order we look for an outer allocation. */
export const GPU_VARS = ['CUDA_VISIBLE_DEVICES', 'ROCR_VISIBLE_DEVICES', 'ZE_AFFINITY_MASK'] as const;

export type GpuAssignment =
  | { kind: 'ok'; variable: string; perRank: string[][] }
  | { kind: 'error'; message: string; hint: string };

/** `deviceNodes`: names under /dev (the caller's readdir), used when no outer list is set. */
export function assignGpus(env: Readonly<Record<string, string | undefined>>, deviceNodes: readonly string[], perProc: number, localSize: number): GpuAssignment {
  let variable: string = 'CUDA_VISIBLE_DEVICES';
  let pool: string[] | undefined;
  for (const v of GPU_VARS) {
    const value = env[v];
    if (value !== undefined) {
      variable = v;
      pool = value.split(',').map((d) => d.trim()).filter((d) => d !== '');
      break;
    }
  }
  const from = pool ? `${variable}=${env[variable] ?? ''}` : 'this host';
  if (!pool) {
    pool = deviceNodes
      .map((n) => /^nvidia([0-9]+)$/.exec(n)?.[1])
      .filter((d): d is string => d !== undefined)
      .sort((a, b) => Number(a) - Number(b));
  }
  const need = perProc * localSize;
  if (pool.length < need) {
    return {
      kind: 'error',
      message: `-gpus-per-proc ${String(perProc)} needs ${String(need)} GPUs for ${String(localSize)} ranks on a host, but ${from} has ${String(pool.length)}`,
      hint: 'ask for fewer ranks per host (-ppn) or fewer GPUs per rank, or run where more GPUs are allocated',
    };
  }
  const perRank: string[][] = [];
  for (let i = 0; i < localSize; i++) perRank.push(pool.slice(i * perProc, (i + 1) * perProc));
  return { kind: 'ok', variable, perRank };
}
