// Goal: the JSON Schema (draft 2020-12) of scenario files, for editors to complete and check them.
// Method: generated from the spec that the validator uses, so the two cannot disagree on fields, types,
// limits or defaults; `generate.ts` writes it to schema.json and a test keeps the committed file current.
// The schema cannot say the cross-field rules (shares summing to 1, a shard that exists…); the loader does.

import { DURATION_PATTERN } from './durations.ts';
import type { Fields, Spec } from './spec.ts';
import { scenarioSpec } from './spec.ts';

type Json = Record<string, unknown>;

export function scenarioJsonSchema(): Json {
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'payfleet scenario',
    ...schemaOf(scenarioSpec),
  };
}

function describe(spec: Spec): Json {
  const description = spec.defaultDoc ? `${spec.doc} Default: ${spec.defaultDoc}.` : spec.doc;
  const out: Json = { description };
  if ('default' in spec && spec.default !== undefined) out.default = spec.default;
  return out;
}

function schemaOf(spec: Spec): Json {
  const base = describe(spec);
  switch (spec.type) {
    case 'integer':
      return { ...base, type: 'integer', ...bounds(spec.min, spec.max, false) };
    case 'number':
      return { ...base, type: 'number', ...bounds(spec.min, spec.max, spec.exclusiveMin ?? false) };
    case 'probability':
      return { ...base, type: 'number', minimum: 0, maximum: 1 };
    case 'minor':
      return { ...base, type: 'integer', minimum: 0 };
    case 'duration': {
      const forms: Json[] = [
        spec.signed ? { type: 'integer' } : { type: 'integer', minimum: spec.positive ? 1 : 0 },
        { type: 'string', pattern: spec.signed ? DURATION_PATTERN : DURATION_PATTERN.replace('[+-]?', '[+]?') },
      ];
      if (spec.nullable) forms.push({ type: 'null' });
      return { ...base, anyOf: forms };
    }
    case 'string':
      return { ...base, type: 'string', ...(spec.pattern !== undefined ? { pattern: spec.pattern } : {}) };
    case 'boolean':
      return { ...base, type: 'boolean' };
    case 'enum':
      return { ...base, enum: [...spec.values] };
    case 'object': {
      const object = objectSchema(spec.fields, {});
      return spec.nullable ? { ...base, anyOf: [object, { type: 'null' }] } : { ...base, ...object };
    }
    case 'list':
      return { ...base, type: 'array', items: schemaOf(spec.item) };
    case 'amount':
      return { ...base, oneOf: amountForms() };
    case 'tagged': {
      const tagged = {
        type: 'object',
        required: [spec.tag],
        properties: { [spec.tag]: { enum: Object.keys(spec.variants) } },
        oneOf: Object.entries(spec.variants).map(([tag, variant]) =>
          objectSchema({ ...spec.common, ...variant.fields }, { [spec.tag]: { const: tag, description: variant.doc } }),
        ),
      };
      return spec.nullable ? { ...base, anyOf: [tagged, { type: 'null' }] } : { ...base, ...tagged };
    }
  }
}

function objectSchema(fields: Fields, extra: Record<string, Json>): Json {
  const properties: Json = { ...extra };
  const required: string[] = Object.keys(extra);
  for (const [name, child] of Object.entries(fields)) {
    properties[name] = schemaOf(child);
    if (child.required) required.push(name);
  }
  return { type: 'object', additionalProperties: false, properties, ...(required.length > 0 ? { required } : {}) };
}

function bounds(min: number | undefined, max: number | undefined, exclusiveMin: boolean): Json {
  const out: Json = {};
  if (min !== undefined) out[exclusiveMin ? 'exclusiveMinimum' : 'minimum'] = min;
  if (max !== undefined) out.maximum = max;
  return out;
}

function amountForms(): Json[] {
  const minor = { type: 'integer', minimum: 0 };
  return [
    { type: 'object', additionalProperties: false, required: ['fixedMinor'], properties: { fixedMinor: { ...minor, description: 'Always this amount.' } } },
    {
      type: 'object',
      additionalProperties: false,
      required: ['uniformMinor'],
      properties: { uniformMinor: { type: 'array', items: minor, minItems: 2, maxItems: 2, description: 'Uniform over [min, max], min ≤ max.' } },
    },
    {
      type: 'object',
      additionalProperties: false,
      required: ['lognormal'],
      properties: {
        lognormal: {
          type: 'object',
          additionalProperties: false,
          required: ['medianMinor', 'p99Minor'],
          description: 'Log-normal with this median and 99th percentile (p99Minor ≥ medianMinor).',
          properties: { medianMinor: { type: 'integer', minimum: 1 }, p99Minor: { type: 'integer', minimum: 1 } },
        },
      },
    },
  ];
}
