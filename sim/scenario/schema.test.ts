// The published JSON Schema must agree with the loader: what the loader accepts, the schema accepts, and
// the field-level mistakes the loader refuses, the schema refuses too. (Rules between fields, such as shares
// summing to 1, are the loader's alone.) Checked with Ajv, a real draft 2020-12 validator.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { SCHEMA_PATH } from './generate.ts';
import { loadScenarioText, ScenarioError } from './load.ts';

const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
const validate = ajv.compile(JSON.parse(readFileSync(SCHEMA_PATH, 'utf8')) as object);
const SCENARIOS_DIR = fileURLToPath(new URL('../../scenarios/', import.meta.url));

const schemaAccepts = (text: string): boolean => validate(parse(text) ?? {}) === true;
const loaderAccepts = (text: string): boolean => {
  try {
    loadScenarioText(text, 'x.yaml');
    return true;
  } catch (error) {
    if (error instanceof ScenarioError) return false;
    throw error;
  }
};

describe('schema.json agrees with the loader', () => {
  it.each(readdirSync(SCENARIOS_DIR).filter((f) => f.endsWith('.yaml')))('accepts the shipped scenario %s', (file) => {
    const text = readFileSync(join(SCENARIOS_DIR, file), 'utf8');
    expect(loaderAccepts(text)).toBe(true);
    expect(schemaAccepts(text), JSON.stringify(validate.errors)).toBe(true);
  });

  const good = [
    '',
    'duration: 90m\ndrain: 0',
    'policy: { remittance: { triggers: { every: null } } }',
    'faults: [{ kind: clockSkew, at: 1m, skew: -5m }]',
    'population: { apps: [{ amount: { uniformMinor: [1, 2] } }], means: [{ ceiling: null }] }',
  ];
  it.each(good)('both accept %j', (text) => {
    expect(loaderAccepts(text)).toBe(true);
    expect(schemaAccepts(text), JSON.stringify(validate.errors)).toBe(true);
  });

  const bad = [
    'seed: -1',
    'seed: 1.5',
    'duration: 0',
    'duration: 5x',
    'drain: -1m',
    'crypto: rsa',
    'population: { terminals: many }',
    'population: { termnals: 3 }',
    'terminals: 3',
    'population: { users: { pin: 1234 } }',
    'population: { users: { pin: "12a4" } }',
    'population: { means: [{ weight: 0 }] }',
    'population: { means: [{ openingBalanceMinor: 12.5 }] }',
    'population: { means: [{ fixedAmount: { amountMinor: 5 } }] }',
    'population: { apps: [{ amount: 500 }] }',
    'population: { apps: [{ amount: { fixedMinor: 5, uniformMinor: [1, 2] } }] }',
    'population: { apps: [{ share: 1.5 }] }',
    'network: { lossProbability: -0.1 }',
    'coverage: { outages: [{ at: 1m }] }',
    'faults: [{ at: 1m }]',
    'faults: [{ kind: meteor, at: 1m }]',
    'faults: [{ kind: brokerCrash, at: 1m, shard: 0 }]',
    'faults: [{ kind: partition, at: 1m, duration: 0 }]',
    'policy: { remittance: { mode: streamed } }',
    'policy: { remittance: { triggers: { every: 0 } } }',
    'thresholds: [1]',
  ];
  it.each(bad)('both refuse %j', (text) => {
    expect(loaderAccepts(text)).toBe(false);
    expect(schemaAccepts(text)).toBe(false);
  });
});
