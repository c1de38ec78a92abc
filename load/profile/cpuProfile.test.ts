import { describe, expect, it } from 'vitest';
import { topSelfTime, type CpuProfile } from './cpuProfile.ts';

const frame = (functionName: string, url: string, lineNumber: number) => ({ functionName, url, lineNumber, columnNumber: 0, scriptId: '0' });

describe('topSelfTime', () => {
  it('charges each sample its time delta and ranks functions by self time', () => {
    const profile: CpuProfile = {
      startTime: 0,
      endTime: 10_000,
      nodes: [
        { id: 1, callFrame: frame('(root)', '', -1), children: [2, 3] },
        { id: 2, callFrame: frame('sign', 'file:///repo/machines/domain/signature.ts', 55) },
        { id: 3, callFrame: frame('step', 'file:///repo/sim/scheduler.ts', 9) },
      ],
      samples: [2, 3, 2, 2, 1],
      timeDeltas: [1000, 2000, 3000, 1000, 3000],
    };
    const rows = topSelfTime(profile, 2, '/repo/');
    expect(rows).toEqual([
      { name: 'sign', where: 'machines/domain/signature.ts:56', selfMs: 5, percent: 50 },
      { name: '(root)', where: '', selfMs: 3, percent: 30 },
    ]);
  });

  it('gives nothing for a profile without samples', () => {
    expect(topSelfTime({ startTime: 0, endTime: 0, nodes: [] }, 5)).toEqual([]);
  });
});
