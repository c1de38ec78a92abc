// Goal: docs/design.md cannot drift from the code: every file it names exists, every checker of sim/check/ is named
// in it, and every "docs/design.md §N" the code and the docs cite is a section of it.
// Method: read the Markdown and the tree; paths are the backquoted words that start with a top folder of the repo.

import { describe, it, expect } from 'vitest';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');
const design = readFileSync(join(ROOT, 'docs', 'design.md'), 'utf8');
const TOP = /^(machines|broker|sim|load|properties|docs|bin|scenarios)\//;

function filesUnder(dir: string, keep: (path: string) => boolean): string[] {
  const found: string[] = [];
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) found.push(...filesUnder(path, keep));
    else if (keep(path)) found.push(path);
  }
  return found;
}

describe('docs/design.md', () => {
  it('names only files and folders that exist', () => {
    const named = [...design.matchAll(/`([^`\s]+)`/g)].map((m) => m[1]!).filter((word) => TOP.test(word));
    expect(named.length).toBeGreaterThan(40);
    const missing = named.filter((path) => !existsSync(join(ROOT, path)));
    expect(missing).toEqual([]);
  });

  it('names every invariant checker of sim/check/', () => {
    const checkers = readdirSync(join(ROOT, 'sim', 'check')).filter((name) => /^(inv\d|oracle)\w*\.ts$/.test(name) && !name.endsWith('.test.ts'));
    expect(checkers.length).toBe(8);
    for (const name of checkers) expect(design).toContain(`\`sim/check/${name}\``);
  });

  it('has every section the code and the docs cite as docs/design.md §N', () => {
    const sections = new Set([...design.matchAll(/^## (\d+)\. /gm)].map((m) => m[1]!));
    const sources = filesUnder(ROOT, (path) => /\.(ts|md|mjs)$/.test(path));
    const cited: string[] = [];
    for (const path of sources) {
      for (const m of readFileSync(path, 'utf8').matchAll(/docs\/design\.md §(\d+)/g)) {
        if (!sections.has(m[1]!)) cited.push(`${relative(ROOT, path)} cites §${m[1]}`);
      }
    }
    expect(cited).toEqual([]);
    // The old design lived outside the repository; nothing may cite it any more.
    const stale = sources.filter((path) => /(?<!docs\/)DESIGN\.md/.test(readFileSync(path, 'utf8'))).map((path) => relative(ROOT, path));
    expect(stale).toEqual([]);
  });
});
