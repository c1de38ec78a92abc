// Goal: apply a mutant's textual patch, refusing loudly when the source no longer matches it.
// Method: each replacement's `from` must occur exactly once in the text; zero or several occurrences throw a
// PatchError naming the mutant, the file and the first line of the text that did not match.

import type { Mutant } from './catalog.ts';

export class PatchError extends Error {
  constructor(
    readonly mutantId: string,
    readonly reason: 'notFound' | 'ambiguous',
    message: string,
  ) {
    super(message);
    this.name = 'PatchError';
  }
}

function occurrences(text: string, needle: string): number {
  let count = 0;
  for (let at = text.indexOf(needle); at >= 0; at = text.indexOf(needle, at + 1)) count++;
  return count;
}

/** The source with the mutant applied; throws PatchError when a replacement does not match exactly once. */
export function applyMutant(mutant: Mutant, source: string): string {
  let text = source;
  for (const { from, to } of mutant.replacements) {
    const count = occurrences(text, from);
    if (count !== 1) {
      const firstLine = from.split('\n')[0]!.trim();
      throw new PatchError(
        mutant.id,
        count === 0 ? 'notFound' : 'ambiguous',
        `mutant ${mutant.id}: the patch no longer applies to ${mutant.file} — ${count === 0 ? 'not found' : `found ${count} times`}: «${firstLine}»`,
      );
    }
    text = text.replace(from, () => to);
  }
  if (text === source) throw new PatchError(mutant.id, 'notFound', `mutant ${mutant.id}: the patch changes nothing in ${mutant.file}`);
  return text;
}
