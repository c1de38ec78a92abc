// Goal: check a scenario tree against the spec, field by field, and build the resolved values with every
// plain default applied.
// Method: one recursive walk over (spec, node). Each mismatch is reported with the node's position, the field
// path and what was expected, and the walk goes on, so a file's problems all come out at once. A field that
// is absent takes its default from the spec (itself walked, so defaults obey the same rules); a field whose
// default depends on others is left undefined for `load.ts` to fill. Unknown fields are errors, with a
// "did you mean" for near misses and for fields that belong elsewhere in the file.

import { describeDuration, parseDuration } from './durations.ts';
import type { FieldPath } from './problems.ts';
import { resolvedKey, scenarioSpec, type Fields, type Spec } from './spec.ts';
import { describeNode, fromPlain, type MapEntry, type Pos, type TreeNode } from './tree.ts';

export type Report = (pos: Pos | undefined, path: FieldPath, message: string) => void;

/** Marks a value that failed validation; the caller will not use the result when anything was reported. */
export const INVALID: unique symbol = Symbol('invalid');

export function resolveValue(spec: Spec, node: TreeNode | undefined, path: FieldPath, report: Report): unknown {
  if (node === undefined) return resolveAbsent(spec, path, report);
  const bad = (expected: string, hint = ''): typeof INVALID => {
    report(node.pos, path, `expected ${expected}, got ${describeNode(node)}${hint}`);
    return INVALID;
  };
  const scalar = node.kind === 'scalar' ? node.value : undefined;

  switch (spec.type) {
    case 'integer': {
      const expected = describeRange('an integer', spec.min, spec.max, false);
      if (typeof scalar !== 'number' || !Number.isSafeInteger(scalar)) return bad(expected);
      if ((spec.min !== undefined && scalar < spec.min) || (spec.max !== undefined && scalar > spec.max)) return bad(expected);
      return scalar;
    }
    case 'number': {
      const expected = describeRange('a number', spec.min, spec.max, spec.exclusiveMin ?? false);
      if (typeof scalar !== 'number' || !Number.isFinite(scalar)) return bad(expected);
      if (spec.min !== undefined && (spec.exclusiveMin ? scalar <= spec.min : scalar < spec.min)) return bad(expected);
      if (spec.max !== undefined && scalar > spec.max) return bad(expected);
      return scalar;
    }
    case 'probability': {
      if (typeof scalar !== 'number' || !(scalar >= 0 && scalar <= 1)) return bad('a probability from 0 to 1');
      return scalar;
    }
    case 'minor': {
      // Money is integer minor units, never a float [house rule; see machines/domain/money.ts].
      if (typeof scalar !== 'number' || !Number.isSafeInteger(scalar) || scalar < 0) {
        return bad('a non-negative integer amount of minor units');
      }
      return scalar;
    }
    case 'duration': {
      const expected = describeDurationSpec(spec);
      if (scalar === null && spec.nullable) return null;
      if (scalar === undefined || scalar === null || typeof scalar === 'boolean') return bad(expected);
      const parsed = parseDuration(scalar, spec.signed ? { signed: true } : {});
      if (!parsed.ok || (spec.positive && parsed.ms <= 0)) return bad(expected);
      return parsed.ms;
    }
    case 'string': {
      const expected = spec.patternDoc ?? 'a string';
      if (typeof scalar !== 'string') return bad(expected);
      if (spec.pattern !== undefined && !new RegExp(spec.pattern).test(scalar)) return bad(expected);
      return scalar;
    }
    case 'boolean':
      return typeof scalar === 'boolean' ? scalar : bad('true or false');
    case 'enum': {
      const expected = `one of ${spec.values.map((v) => JSON.stringify(v)).join(', ')}`;
      if (typeof scalar === 'string' && spec.values.includes(scalar)) return scalar;
      const hint = typeof scalar === 'string' ? didYouMean(scalar, spec.values) : '';
      return bad(expected, hint);
    }
    case 'object': {
      if (scalar === null && spec.nullable) return null;
      if (node.kind !== 'map') return bad(spec.nullable ? 'a mapping, or null' : 'a mapping');
      return resolveFields(spec.fields, node, path, report, '');
    }
    case 'list': {
      if (node.kind !== 'list') return bad('a list (write [] for none)');
      return node.items.map((item, index) => resolveValue(spec.item, item, [...path, index], report));
    }
    case 'amount':
      return resolveAmount(node, path, report);
    case 'tagged':
      return resolveTagged(spec, node, path, report);
  }
}

function resolveAbsent(spec: Spec, path: FieldPath, report: Report): unknown {
  if (spec.type === 'object') return spec.nullable ? null : resolveValue(spec, { kind: 'map', entries: [] }, path, report);
  if (spec.type === 'duration' && spec.default === null) return null;
  if (spec.type === 'tagged') return spec.nullable ? null : undefined;
  if ('default' in spec && spec.default !== undefined) return resolveValue(spec, fromPlain(spec.default), path, report);
  return undefined;
}

/** Walks a mapping against `fields`; `context` names a fault kind in unknown-field messages. */
function resolveFields(fields: Fields, node: TreeNode & { kind: 'map' }, path: FieldPath, report: Report, context: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const given = new Map<string, MapEntry>();
  for (const entry of node.entries) {
    if (!(entry.key in fields)) {
      report(entry.keyPos ?? node.pos, [...path, entry.key], unknownFieldMessage(entry.key, Object.keys(fields), context));
      continue;
    }
    given.set(entry.key, entry);
  }
  for (const [name, spec] of Object.entries(fields)) {
    const entry = given.get(name);
    if (entry === undefined && spec.required) {
      report(node.pos, [...path, name], `missing; expected ${describeSpec(spec)}`);
      continue;
    }
    out[resolvedKey(name, spec)] = resolveValue(spec, entry?.value, [...path, name], report);
  }
  return out;
}

function resolveTagged(spec: Spec & { type: 'tagged' }, node: TreeNode, path: FieldPath, report: Report): unknown {
  if (spec.nullable && node.kind === 'scalar' && node.value === null) return null;
  const kinds = Object.keys(spec.variants);
  const expectedKind = `one of ${kinds.map((k) => JSON.stringify(k)).join(', ')}`;
  if (node.kind !== 'map') {
    report(node.pos, path, `expected a mapping with ${spec.tag}: ${expectedKind}, got ${describeNode(node)}`);
    return INVALID;
  }
  const tagEntry = node.entries.find((e) => e.key === spec.tag);
  if (!tagEntry) {
    report(node.pos, [...path, spec.tag], `missing; expected ${expectedKind}`);
    return INVALID;
  }
  const tag = tagEntry.value.kind === 'scalar' ? tagEntry.value.value : undefined;
  const variant = typeof tag === 'string' ? spec.variants[tag] : undefined;
  if (typeof tag !== 'string' || variant === undefined) {
    const hint = typeof tag === 'string' ? didYouMean(tag, kinds) : '';
    report(tagEntry.value.pos, [...path, spec.tag], `expected ${expectedKind}, got ${describeNode(tagEntry.value)}${hint}`);
    return INVALID;
  }
  const rest = { ...node, entries: node.entries.filter((e) => e !== tagEntry) };
  return { [spec.tag]: tag, ...resolveFields({ ...spec.common, ...variant.fields }, rest, path, report, `${spec.tag} ${tag}`) };
}

const AMOUNT_FORMS = 'an amount distribution: { fixedMinor: N }, { uniformMinor: [min, max] } or { lognormal: { medianMinor: N, p99Minor: N } }';

const lognormalFields: Fields = {
  medianMinor: { type: 'integer', min: 1, required: true, doc: 'Median amount.' },
  p99Minor: { type: 'integer', min: 1, required: true, doc: '99th percentile amount.' },
};

function resolveAmount(node: TreeNode, path: FieldPath, report: Report): unknown {
  const forms = ['fixedMinor', 'uniformMinor', 'lognormal'];
  if (node.kind !== 'map' || node.entries.length !== 1) {
    report(node.pos, path, `expected ${AMOUNT_FORMS}, got ${node.kind === 'map' ? `a mapping with ${node.entries.length} keys` : describeNode(node)}`);
    return INVALID;
  }
  const entry = node.entries[0] as MapEntry;
  const at = [...path, entry.key];
  const minor: Spec = { type: 'minor', doc: '' };
  switch (entry.key) {
    case 'fixedMinor': {
      const amountMinor = resolveValue(minor, entry.value, at, report);
      return amountMinor === INVALID ? INVALID : { kind: 'fixed', amountMinor };
    }
    case 'uniformMinor': {
      const list = entry.value;
      if (list.kind !== 'list' || list.items.length !== 2) {
        report(list.pos, at, `expected a list [min, max] of two amounts in minor units, got ${describeNode(list)}`);
        return INVALID;
      }
      const [minMinor, maxMinor] = list.items.map((item, i) => resolveValue(minor, item, [...at, i], report));
      if (typeof minMinor !== 'number' || typeof maxMinor !== 'number') return INVALID;
      if (minMinor > maxMinor) {
        report(list.pos, at, `expected min ≤ max, got [${minMinor}, ${maxMinor}]`);
        return INVALID;
      }
      return { kind: 'uniform', minMinor, maxMinor };
    }
    case 'lognormal': {
      const value = resolveValue({ type: 'object', fields: lognormalFields, doc: '' }, entry.value, at, report);
      if (value === INVALID || value === null || typeof value !== 'object') return INVALID;
      const { medianMinor, p99Minor } = value as { medianMinor: unknown; p99Minor: unknown };
      if (typeof medianMinor !== 'number' || typeof p99Minor !== 'number') return INVALID;
      if (p99Minor < medianMinor) {
        report(entry.value.pos, [...at, 'p99Minor'], `expected a 99th percentile ≥ the median (${medianMinor}), got ${p99Minor}`);
        return INVALID;
      }
      return { kind: 'lognormal', medianMinor, p99Minor };
    }
    default:
      report(entry.keyPos ?? node.pos, at, `unknown amount form${didYouMean(entry.key, forms)}; expected ${AMOUNT_FORMS}`);
      return INVALID;
  }
}

function describeRange(what: string, min: number | undefined, max: number | undefined, exclusiveMin: boolean): string {
  if (min !== undefined && max !== undefined) return `${what} from ${min} to ${max}`;
  if (min !== undefined) return `${what} ${exclusiveMin ? '>' : '≥'} ${min}`;
  if (max !== undefined) return `${what} ≤ ${max}`;
  return what;
}

function describeDurationSpec(spec: Spec & { type: 'duration' }): string {
  const base = describeDuration(spec.signed ? { signed: true } : {});
  const positive = spec.positive ? base.replace(/^a duration/, 'a duration > 0') : base;
  return spec.nullable ? `${positive}, or null` : positive;
}

/** What a field expects, in words, for "missing" messages and the docs. */
export function describeSpec(spec: Spec): string {
  switch (spec.type) {
    case 'integer': return describeRange('an integer', spec.min, spec.max, false);
    case 'number': return describeRange('a number', spec.min, spec.max, spec.exclusiveMin ?? false);
    case 'probability': return 'a probability from 0 to 1';
    case 'minor': return 'a non-negative integer amount of minor units';
    case 'duration': return describeDurationSpec(spec);
    case 'string': return spec.patternDoc ?? 'a string';
    case 'boolean': return 'true or false';
    case 'enum': return `one of ${spec.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'object': return spec.nullable ? 'a mapping, or null' : 'a mapping';
    case 'list': return 'a list';
    case 'amount': return AMOUNT_FORMS;
    case 'tagged': return `a mapping with ${spec.tag}: one of ${Object.keys(spec.variants).join(', ')}${spec.nullable ? ', or null' : ''}`;
  }
}

function unknownFieldMessage(key: string, allowed: readonly string[], context: string): string {
  const near = didYouMean(key, allowed);
  if (near) return `unknown field${near}`;
  // Inside a fault the question is what this kind takes; elsewhere, a misplaced field is the likely mistake.
  if (context) return `unknown field for ${context}, which takes ${allowed.join(', ')}`;
  const elsewhere = whereElse(key);
  const where = elsewhere.length > 0 ? `; "${key}" is a field of ${elsewhere.join(', ')}` : '';
  return `unknown field${where}; expected one of ${allowed.join(', ')}`;
}

/** '; did you mean "x"?' for the closest candidate within a small edit distance, else ''. */
export function didYouMean(word: string, candidates: readonly string[]): string {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = candidate.toLowerCase() === word.toLowerCase() ? 0 : editDistance(word, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  // Very short words are one edit away from everything, so only their case may differ.
  const limit = word.length <= 2 ? 0 : Math.max(1, Math.floor(word.length / 3));
  return best !== undefined && bestDistance <= limit ? `; did you mean "${best}"?` : '';
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] as number;
}

/** The dotted paths of the spec where a field called `key` exists, for misplaced fields. */
function whereElse(key: string): string[] {
  const found: string[] = [];
  const visit = (spec: Spec, path: string): void => {
    const fieldsOf = (fields: Fields, base: string): void => {
      for (const [name, child] of Object.entries(fields)) {
        if (name === key) found.push(base === '' ? 'the top level' : base);
        visit(child, base === '' ? name : `${base}.${name}`);
      }
    };
    if (spec.type === 'object') fieldsOf(spec.fields, path);
    else if (spec.type === 'list') visit(spec.item, `${path}[]`);
    else if (spec.type === 'tagged') {
      fieldsOf(spec.common, path);
      for (const variant of Object.values(spec.variants)) fieldsOf(variant.fields, path);
    }
  };
  visit(scenarioSpec, '');
  return [...new Set(found)];
}
