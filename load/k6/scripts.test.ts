// k6 is not installed here, so the scripts cannot run in the test suite; tsc type-checks them against
// @types/k6, and this test checks what the types cannot: names given as strings.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const scripts = ['shared-means.ts', 'proof-storm.ts'].map((name) => ({ name, text: readFileSync(join(import.meta.dirname, name), 'utf8') }));

describe('k6 scripts', () => {
  it.each(scripts)('$name: every scenario exec names an exported function, and a default exists otherwise', ({ text }) => {
    const execs = [...text.matchAll(/exec: '(\w+)'/g)].map((m) => m[1]!);
    for (const exec of execs) expect(text).toMatch(new RegExp(`export function ${exec}\\(`));
    const scenarios = (text.match(/executor: '/g) ?? []).length;
    if (execs.length < scenarios) expect(text).toMatch(/export default function/);
  });

  it.each(scripts)('$name: thresholds name built-in metrics or metrics the script declares, and handleSummary writes JSON', ({ text }) => {
    const builtIn = ['http_req_failed', 'http_req_duration', 'checks'];
    const declared = [...text.matchAll(/new (?:Counter|Rate|Trend|Gauge)\('(\w+)'\)/g)].map((m) => m[1]!);
    const block = text.slice(text.indexOf('thresholds: {'), text.indexOf('},', text.indexOf('thresholds: {')));
    const names = [...block.matchAll(/^\s+'?([a-z_]+)(?:\{[^}]*\})?'?:/gm)].map((m) => m[1]!);
    expect(names.length).toBeGreaterThan(2);
    for (const name of names) expect([...builtIn, ...declared], name).toContain(name);
    expect(text).toMatch(/export function handleSummary\(/);
    expect(text).toMatch(/writeSummary\('[\w-]+', data\)/);
  });
});
