#!/usr/bin/env node
// Goal: the `payfleet` command, however npm installs it (npx, npm exec, npm link, npm install -g, a plain
// `node bin/payfleet.mjs`).
// Method: register tsx so Node can load the TypeScript sources directly (no build step), register the commands
// that live in load/ (above sim/ in the layering), then call the CLI's main ourselves and set the exit status
// from it. The CLI module never decides by itself whether it is "the main module": npm runs this file through a
// link named `payfleet`, so any guard on process.argv[1] would make every command print nothing and exit 0.
import { register } from 'tsx/esm/api';

register();
// A reader that goes away (`payfleet run … | head`) must not crash the run with a stack trace: its output is no
// longer wanted, but its files (summary.json, report.html) and its exit status still are. So a closed stdout or
// stderr is stopped being written to, and the command carries on to its end.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error) => {
    if (error.code !== 'EPIPE') throw error;
  });
}
await import('../load/commands.ts');
const { main } = await import('../sim/cli/main.ts');
try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  // An unexpected failure is a bug of payfleet, not a verdict: say so, never exit 0.
  console.error('payfleet: internal error:', error instanceof Error ? (error.stack ?? error.message) : error);
  process.exitCode = 70;
}
