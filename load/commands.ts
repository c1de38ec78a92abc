// Goal: the `payfleet` commands that live in load/ (above sim/ in the layering), registered with the CLI.
// Method: bin/payfleet.mjs imports this module before sim/cli/main.ts; each command loads its code lazily.

import { registerCommand } from '../sim/cli/registry.ts';

registerCommand('capacity', {
  summary: 'find the highest arrival rate that keeps every SLO, and the knee, per shard count',
  run: async (argv) => (await import('./capacity/command.ts')).capacityCommand(argv),
});

registerCommand('calibrate', {
  summary: "measure a real payment server's cost per request kind and write the calibration file scenarios use",
  run: async (argv) => (await import('./calibrate/command.ts')).calibrateCommand(argv),
});
