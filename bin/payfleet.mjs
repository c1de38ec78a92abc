#!/usr/bin/env node
// Goal: the `payfleet` command.
// Method: register tsx so Node can load the TypeScript sources directly (no build step), register the commands
// that live in load/ (above sim/ in the layering), then hand over to the CLI's main module, which parses the
// arguments and sets the exit status.
import { register } from 'tsx/esm/api';

register();
await import('../load/commands.ts');
await import('../sim/cli/main.ts');
