// The files generated from the spec (schema.json, the field reference of docs/scenarios.md) must be current,
// and the spec's defaults must agree with the domain's own defaults.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { defaultConfirmationPolicy } from '../../machines/domain/confirmation.ts';
import { defaultDiscriminationPolicy } from '../../machines/domain/discriminate.ts';
import { defaultRemittancePolicy } from '../../machines/domain/remittance.ts';
import { spliceReference } from './docs.ts';
import { DOCS_PATH, SCHEMA_PATH, schemaText } from './generate.ts';
import { loadScenarioText } from './load.ts';
import { proxyPolicyOf } from './policy.ts';

const REGENERATE = 'out of date: run `npx tsx sim/scenario/generate.ts`';

describe('generated files', () => {
  it('schema.json is generated from the current spec', () => {
    expect(readFileSync(SCHEMA_PATH, 'utf8'), REGENERATE).toBe(schemaText());
  });

  it('docs/scenarios.md holds the current field reference', () => {
    const page = readFileSync(DOCS_PATH, 'utf8');
    expect(spliceReference(page), REGENERATE).toBe(page);
  });

  it('the schema is draft 2020-12, closed to unknown fields, and its defaults load', () => {
    const schema = JSON.parse(readFileSync(SCHEMA_PATH, 'utf8')) as {
      $schema: string;
      additionalProperties: boolean;
      properties: Record<string, { default?: unknown }>;
    };
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(schema.additionalProperties).toBe(false);
    // Writing the schema's top-level defaults out explicitly gives the same scenario as leaving them out.
    const explicit = Object.fromEntries(Object.entries(schema.properties).flatMap(([k, v]) => ('default' in v ? [[k, v.default]] : [])));
    expect(Object.keys(explicit)).toEqual(expect.arrayContaining(['seed', 'duration', 'drain', 'crypto', 'faults']));
    expect(loadScenarioText(JSON.stringify(explicit), 'x.yaml')).toEqual(loadScenarioText('', 'x.yaml'));
  });
});

describe('default policy', () => {
  it("equals the domain's default proxy policy", () => {
    const policy = proxyPolicyOf(loadScenarioText('', 'x.yaml').policy);
    expect(policy.discrimination).toEqual(defaultDiscriminationPolicy);
    expect(policy.confirmation).toEqual(defaultConfirmationPolicy);
    expect(policy.remittance).toEqual(defaultRemittancePolicy);
  });
});
