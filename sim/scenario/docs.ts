// Goal: the field reference of docs/scenarios.md: every field, its type, its default and its meaning.
// Method: generated from the spec, like the JSON Schema, and spliced into the hand-written page between two
// marker comments; a test checks that the committed page holds the current reference.

import { stringify } from 'yaml';
import type { Fields, Spec } from './spec.ts';
import { scenarioSpec } from './spec.ts';
import { describeSpec } from './validate.ts';

export const REFERENCE_BEGIN = '<!-- BEGIN GENERATED: field reference (npx tsx sim/scenario/generate.ts) -->';
export const REFERENCE_END = '<!-- END GENERATED: field reference -->';

interface Row {
  field: string;
  type: string;
  defaultText: string;
  meaning: string;
}

export function fieldReference(): string {
  const rows: Row[] = [];
  if (scenarioSpec.type !== 'object') throw new Error('the scenario spec must be an object');
  addFields(scenarioSpec.fields, '', rows);
  const lines = ['| field | type | default | meaning |', '|---|---|---|---|'];
  for (const row of rows) lines.push(`| ${[row.field, row.type, row.defaultText, row.meaning].map(cell).join(' | ')} |`);
  return lines.join('\n');
}

/** Replaces the generated part of `page` (between the markers) with the current reference. */
export function spliceReference(page: string): string {
  const begin = page.indexOf(REFERENCE_BEGIN);
  const end = page.indexOf(REFERENCE_END);
  if (begin < 0 || end < begin) throw new Error('docs/scenarios.md: the field reference markers are missing');
  return `${page.slice(0, begin + REFERENCE_BEGIN.length)}\n\n${fieldReference()}\n\n${page.slice(end)}`;
}

function addFields(fields: Fields, base: string, rows: Row[]): void {
  for (const [name, spec] of Object.entries(fields)) add(spec, base === '' ? name : `${base}.${name}`, rows);
}

function add(spec: Spec, path: string, rows: Row[]): void {
  rows.push({ field: `\`${path}\``, type: typeLabel(spec), defaultText: defaultLabel(spec), meaning: spec.doc });
  if (spec.type === 'object') addFields(spec.fields, path, rows);
  if (spec.type === 'list' && (spec.item.type === 'object' || spec.item.type === 'tagged')) add(spec.item, `${path}[]`, rows);
  if (spec.type === 'tagged') {
    addFields(spec.common, path, rows);
    for (const [tag, variant] of Object.entries(spec.variants)) {
      rows.push({ field: `\`${path}\` ${spec.tag}: \`${tag}\``, type: '', defaultText: '', meaning: variant.doc });
      addFields(variant.fields, `${path}(${tag})`, rows);
    }
  }
}

function typeLabel(spec: Spec): string {
  switch (spec.type) {
    case 'duration':
      return `${spec.signed ? 'signed duration' : spec.positive ? 'duration > 0' : 'duration'}${spec.nullable ? ' or null' : ''}`;
    case 'minor':
      return 'amount (minor units)';
    case 'amount':
      return 'amount distribution';
    case 'object':
      return spec.nullable ? 'mapping or null' : 'mapping';
    case 'list':
      return spec.item.type === 'string' ? 'list of strings' : 'list';
    case 'tagged':
      return `mapping with ${spec.tag}${spec.nullable ? ' or null' : ''}`;
    case 'string':
      return spec.patternDoc ?? (spec.pattern ? `string matching ${spec.pattern}` : 'string');
    default:
      return describeSpec(spec).replace(/^(an?|one of) /, (m) => (m === 'one of ' ? 'one of ' : ''));
  }
}

function defaultLabel(spec: Spec): string {
  if (spec.required) return '*required*';
  if (spec.defaultDoc) return spec.defaultDoc;
  if (spec.type === 'object' || spec.type === 'tagged') return spec.nullable ? 'null (none)' : '';
  if (!('default' in spec) || spec.default === undefined) return '';
  return `\`${inlineYaml(spec.default)}\``;
}

function inlineYaml(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  // Flow style keeps a list or mapping default on one table row.
  return stringify(value, { collectionStyle: 'flow', lineWidth: 0 }).trim();
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}
