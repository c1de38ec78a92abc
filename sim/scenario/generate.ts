// Goal: write the files generated from the scenario spec: sim/scenario/schema.json and the field reference
// in docs/scenarios.md. Run `npx tsx sim/scenario/generate.ts` after changing spec.ts.
// Method: the same functions the tests compare against, so the tests fail until this has been run.

import { readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { spliceReference } from './docs.ts';
import { scenarioJsonSchema } from './jsonSchema.ts';

export const SCHEMA_PATH = fileURLToPath(new URL('./schema.json', import.meta.url));
export const DOCS_PATH = fileURLToPath(new URL('../../docs/scenarios.md', import.meta.url));

export function schemaText(): string {
  return `${JSON.stringify(scenarioJsonSchema(), null, 2)}\n`;
}

// Tests import this module for its paths, so it writes only when run as the script; real paths are compared
// because Node resolves symlinks in import.meta.url but not in process.argv[1].
if (process.argv[1] && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url))) {
  writeFileSync(SCHEMA_PATH, schemaText());
  writeFileSync(DOCS_PATH, spliceReference(readFileSync(DOCS_PATH, 'utf8')));
  console.log(`wrote ${SCHEMA_PATH} and the field reference of ${DOCS_PATH}`);
}
