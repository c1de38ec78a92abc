// Goal: read a V8 CPU profile (`node --cpu-prof`) into the few lines a person wants first: the functions that
// take the most self time.
// Method: a .cpuprofile is a tree of call-frame nodes plus `samples` (node ids) and `timeDeltas` (µs between
// samples); each sample's delta is charged to its node, and nodes are grouped by function name and location.

export interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

export interface CpuProfile {
  nodes: CpuProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface SelfTimeRow {
  name: string;
  /** `file:line`, relative to the repository when it is inside it. */
  where: string;
  selfMs: number;
  percent: number;
}

export function topSelfTime(profile: CpuProfile, count: number, root = ''): SelfTimeRow[] {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  const selfUs = new Map<string, { name: string; where: string; us: number }>();
  let totalUs = 0;
  samples.forEach((id, i) => {
    const node = byId.get(id);
    const delta = Math.max(0, deltas[i] ?? 0);
    if (!node) return;
    totalUs += delta;
    const { functionName, url, lineNumber } = node.callFrame;
    const name = functionName || (url ? '(anonymous)' : `(${node.callFrame.functionName || 'native'})`);
    const file = url.replace(/^file:\/\//, '').replace(root, '');
    const where = file ? `${file}:${lineNumber + 1}` : '';
    const key = `${name}@${where}`;
    const row = selfUs.get(key) ?? { name, where, us: 0 };
    row.us += delta;
    selfUs.set(key, row);
  });
  return [...selfUs.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, count)
    .map((row) => ({ name: row.name, where: row.where, selfMs: row.us / 1000, percent: totalUs === 0 ? 0 : (100 * row.us) / totalUs }));
}
