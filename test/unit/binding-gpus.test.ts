import { describe, expect, it } from 'vitest';
import { assignGpus } from '../../src/binding/gpus.js';

describe('-gpus-per-proc', () => {
  it('hands out an outer CUDA_VISIBLE_DEVICES in local-rank order', () => {
    expect(assignGpus({ CUDA_VISIBLE_DEVICES: '0,1,2,3' }, [], 2, 2)).toEqual({ kind: 'ok', variable: 'CUDA_VISIBLE_DEVICES', perRank: [['0', '1'], ['2', '3']] });
    expect(assignGpus({ CUDA_VISIBLE_DEVICES: '5,7,9' }, ['nvidia0'], 1, 3)).toEqual({ kind: 'ok', variable: 'CUDA_VISIBLE_DEVICES', perRank: [['5'], ['7'], ['9']] });
  });
  it('uses the variable of the outer allocation (AMD, Intel)', () => {
    expect(assignGpus({ ROCR_VISIBLE_DEVICES: '2,3' }, [], 1, 2)).toMatchObject({ variable: 'ROCR_VISIBLE_DEVICES', perRank: [['2'], ['3']] });
    expect(assignGpus({ ZE_AFFINITY_MASK: '0.0,0.1' }, [], 1, 2)).toMatchObject({ variable: 'ZE_AFFINITY_MASK', perRank: [['0.0'], ['0.1']] });
  });
  it('without an outer list, the NVIDIA device nodes of the host, in number order', () => {
    expect(assignGpus({}, ['null', 'nvidia10', 'nvidia2', 'nvidiactl', 'nvidia0', 'nvidia1'], 2, 2)).toMatchObject({ perRank: [['0', '1'], ['2', '10']] });
  });
  it('too few devices: an error naming the count and where they came from', () => {
    const a = assignGpus({ CUDA_VISIBLE_DEVICES: '0,1' }, [], 2, 2);
    expect(a.kind).toBe('error');
    if (a.kind === 'error') expect(a.message).toBe('-gpus-per-proc 2 needs 4 GPUs for 2 ranks on a host, but CUDA_VISIBLE_DEVICES=0,1 has 2');
    expect(assignGpus({}, ['null'], 1, 1)).toMatchObject({ kind: 'error', message: expect.stringContaining('this host has 0') });
  });
});
