#!/usr/bin/env node
// Goal: the `payfleet` command.
// Method: register tsx so Node can load the TypeScript sources directly (no build step), then hand over to
// the CLI's main module, which parses the arguments and sets the exit status.
import { register } from 'tsx/esm/api';

register();
await import('../sim/cli/main.ts');
