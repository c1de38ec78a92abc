// Goal: a plain tree of the scenario's values that still knows where each value was written.
// Method: the YAML document (parsed with a LineCounter) is copied into small nodes — map, list, scalar —
// each with its line and column, aliases resolved. Defaults, written as plain values in the spec, become the
// same nodes without a position, so the validator reads the file and the defaults in one way.

import { isAlias, isMap, isScalar, isSeq, type Document, type LineCounter, type Node as YamlNode } from 'yaml';
import type { FieldPath } from './problems.ts';

export interface Pos {
  line: number;
  column: number;
}

export type Scalar = string | number | boolean | null;

export type TreeNode =
  | { kind: 'map'; entries: MapEntry[]; pos?: Pos }
  | { kind: 'list'; items: TreeNode[]; pos?: Pos }
  /** `source` is the text as written, for messages ("1e3" rather than 1000). */
  | { kind: 'scalar'; value: Scalar; source?: string; pos?: Pos };

export interface MapEntry {
  key: string;
  keyPos?: Pos;
  value: TreeNode;
}

/** Aliases may nest; a document that expands beyond this depth is refused rather than walked forever. */
const MAX_DEPTH = 64;
/** Nested aliases can also expand exponentially ("billion laughs"); this bounds the nodes an alias may copy. */
const MAX_ALIAS_NODES = 10_000;

export function fromYaml(doc: Document, lineCounter: LineCounter): TreeNode | undefined {
  if (doc.contents === null) return undefined;
  const posOf = (node: YamlNode | null | undefined): Pos | undefined => {
    const offset = node?.range?.[0];
    if (offset === undefined) return undefined;
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };

  let aliasNodes = 0;
  const convert = (node: unknown, depth: number, inAlias = false): TreeNode => {
    if (depth > MAX_DEPTH) throw new RangeError('the document nests too deeply');
    if (inAlias && ++aliasNodes > MAX_ALIAS_NODES) throw new RangeError('the aliases of the document expand too much');
    if (isAlias(node)) {
      const target = node.resolve(doc);
      const converted = convert(target, depth + 1, true);
      // Report problems where the alias is used, which is where the reader looks.
      const pos = posOf(node);
      return pos ? { ...converted, pos } : converted;
    }
    if (isMap(node)) {
      const entries: MapEntry[] = [];
      for (const pair of node.items) {
        const keyNode = pair.key as YamlNode | null;
        const key = isScalar(keyNode) ? String(keyNode.value) : String(keyNode);
        const keyPos = posOf(keyNode);
        const value: TreeNode = pair.value === null
          ? { kind: 'scalar', value: null, ...(keyPos ? { pos: keyPos } : {}) }
          : convert(pair.value, depth + 1, inAlias);
        entries.push({ key, ...(keyPos ? { keyPos } : {}), value });
      }
      return withPos({ kind: 'map', entries }, posOf(node));
    }
    if (isSeq(node)) {
      return withPos({ kind: 'list', items: node.items.map((item) => convert(item, depth + 1, inAlias)) }, posOf(node as YamlNode));
    }
    if (isScalar(node)) {
      const value = node.value;
      const scalar: Scalar =
        value === null || value === undefined || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean'
          ? (value ?? null)
          : String(value);
      const source = typeof node.source === 'string' ? node.source : undefined;
      return withPos({ kind: 'scalar', value: scalar, ...(source !== undefined ? { source } : {}) }, posOf(node));
    }
    return { kind: 'scalar', value: String(node) };
  };
  return convert(doc.contents, 0);
}

function withPos<T extends TreeNode>(node: T, pos: Pos | undefined): T {
  return pos ? { ...node, pos } : node;
}

/** Turns a plain value (a default of the spec) into a tree without positions. */
export function fromPlain(value: unknown): TreeNode {
  if (Array.isArray(value)) return { kind: 'list', items: value.map(fromPlain) };
  if (value !== null && typeof value === 'object') {
    return { kind: 'map', entries: Object.entries(value).map(([key, v]) => ({ key, value: fromPlain(v) })) };
  }
  if (value === undefined) return { kind: 'scalar', value: null };
  return { kind: 'scalar', value: value as Scalar };
}

/**
 * The position of the value at `path`, or of its nearest ancestor that was written in the file (a field left
 * to its default has no position of its own). Map keys of the path are input names, not resolved names.
 */
export function locate(root: TreeNode | undefined, path: FieldPath): Pos | undefined {
  let node = root;
  let best = root?.pos;
  for (const segment of path) {
    if (!node) break;
    if (node.kind === 'map' && typeof segment === 'string') {
      const entry = node.entries.find((e) => e.key === segment);
      node = entry?.value;
      best = entry?.value.pos ?? entry?.keyPos ?? best;
    } else if (node.kind === 'list' && typeof segment === 'number') {
      node = node.items[segment];
      best = node?.pos ?? best;
    } else {
      break;
    }
  }
  return best;
}

/** How a node reads in "got …" of a message. */
export function describeNode(node: TreeNode): string {
  if (node.kind === 'map') return 'a mapping';
  if (node.kind === 'list') return 'a list';
  if (node.value === null) return 'nothing (null)';
  if (typeof node.value === 'string') return JSON.stringify(node.value);
  return node.source ?? String(node.value);
}
