// Goal: the layout rules of docs/design.md hold and stay held, so the house a newcomer finds is the one the docs
// describe (issue 12): no non-test source file over 450 lines, no import cycle, no module of sim/ or broker/ outside
// sim/cli importing sim/cli, and one InvariantId type.
// Method: read every non-test .ts/.mjs file under machines/ broker/ sim/ load/ properties/ as text, take its
// relative import specifiers (static `import … from`, `export … from`, and `import('…')`), and walk the graph.
// Type-only imports count too: a cycle of types is still a tangle to read.
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const REPO_ROOT = resolve(import.meta.dirname, '../..');
const ROOTS = ['machines', 'broker', 'sim', 'load', 'properties'];
const MAX_LINES = 450;

function sourceFiles(): string[] {
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(join(REPO_ROOT, dir), { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (/\.(ts|mjs)$/.test(entry.name) && !/\.test\.ts$/.test(entry.name)) files.push(path);
    }
  };
  for (const root of ROOTS) walk(root);
  return files.sort();
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\b[^'"`;]*?from\s*['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g;

function importsOf(file: string, text: string, known: Set<string>): string[] {
  const targets: string[] = [];
  for (const match of text.matchAll(IMPORT)) {
    const target = relative(REPO_ROOT, resolve(REPO_ROOT, dirname(file), match[1] ?? match[2]!));
    if (known.has(target)) targets.push(target);
  }
  return targets;
}

const files = sourceFiles();
const texts = new Map(files.map((file) => [file, readFileSync(join(REPO_ROOT, file), 'utf8')]));
const known = new Set(files);
const graph = new Map(files.map((file) => [file, importsOf(file, texts.get(file)!, known)]));

/** Every cycle found by a depth-first walk, each as the path that closes it. */
function cycles(): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string) => {
    state.set(file, 'open');
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      if (state.get(next) === 'open') found.push([...stack.slice(stack.indexOf(next)), next]);
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of files) if (!state.has(file)) visit(file);
  return found;
}

describe('the layout of docs/design.md', () => {
  it('reads the source tree and its imports', () => {
    expect(files.length).toBeGreaterThan(200);
    expect(graph.get('sim/run/simulator.ts')).toContain('sim/core/scheduler.ts');
  });

  it(`has no non-test source file over ${MAX_LINES} lines`, () => {
    const long = files.map((file) => ({ file, lines: texts.get(file)!.split('\n').length - 1 })).filter((f) => f.lines > MAX_LINES);
    expect(long).toEqual([]);
  });

  it('has no import cycle', () => {
    expect(cycles().map((cycle) => cycle.join(' -> '))).toEqual([]);
  });

  it('has no module of sim/ or broker/ outside sim/cli importing sim/cli', () => {
    const upward = [...graph].flatMap(([file, targets]) => (/^(sim|broker)\//.test(file) && !file.startsWith('sim/cli/') ? targets.filter((t) => t.startsWith('sim/cli/')).map((t) => `${file} -> ${t}`) : []));
    expect(upward).toEqual([]);
  });

  it('defines the InvariantId type once, in machines/domain/invariants.ts', () => {
    const definitions = files.filter((file) => /\btype InvariantId\b\s*=/.test(texts.get(file)!));
    expect(definitions).toEqual(['machines/domain/invariants.ts']);
  });
});
