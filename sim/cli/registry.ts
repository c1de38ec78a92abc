// Goal: commands that live above sim/ in the layering (load/'s `capacity`) can join the `payfleet` command
// without sim/ importing them.
// Method: a registry the CLI reads when it dispatches; bin/payfleet.mjs, the composition root, imports the
// modules that register (load/commands.ts) before it hands over to sim/cli/main.ts.

export interface RegisteredCommand {
  summary: string;
  run: (argv: string[]) => Promise<number>;
}

const registered = new Map<string, RegisteredCommand>();

export function registerCommand(name: string, command: RegisteredCommand): void {
  registered.set(name, command);
}

export function registeredCommands(): ReadonlyMap<string, RegisteredCommand> {
  return registered;
}
