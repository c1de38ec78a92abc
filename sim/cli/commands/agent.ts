// Goal: `payfleet agent --coordinator ws://HOST:PORT`: the host daemon of an mqtt run spread over machines (see
// sim/mqtt/agent.ts): its flags and help, checked here, then the agent run until the coordinator ends the run.
// Method: declare and check the flags (exit status 2 naming the flag); the run's secret comes from
// PAYFLEET_BROKER_SECRET only (a secret on argv is readable through ps); the capacity defaults to what the host's
// fd limit and free memory allow. Exit status: 0 the coordinator ended the run; 1 the coordinator was lost
// mid-run (every child was stopped); 2 bad input, or the coordinator refused the agent (wrong secret, or the run
// already has its agents); 3 the coordinator could not be reached within --wait.

import { hostname } from 'node:os';
import { defineFlags, UsageError } from '../args.ts';
import { defineCommand, EXIT_BAD_INPUT, EXIT_ENVIRONMENT, EXIT_OK, EXIT_VIOLATION, withStopSignal } from '../command.ts';

/** A coordinator URL: ws:// or wss:// with a host and a port. */
export function coordinatorUrlOf(text: string): string {
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'ws:' && url.protocol !== 'wss:') || url.hostname === '' || url.port === '') {
    throw new UsageError(`--coordinator: expected the URL the coordinator printed, such as ws://10.0.0.1:7400, got '${text}'`, 'coordinator');
  }
  return text;
}

export const agentFlags = defineFlags({
  coordinator: { kind: 'string', required: true, parse: coordinatorUrlOf, placeholder: 'URL', help: 'the ws:// URL `payfleet run … --agents N` printed' },
  capacity: { kind: 'int', min: 1, help: 'terminals this host can hold', defaultText: 'from the fd limit and the free memory (58 KB per terminal)' },
  name: { kind: 'string', placeholder: 'NAME', help: 'its name in the run (unique per run)', defaultText: '<host name>-<pid>' },
  'work-dir': { kind: 'string', placeholder: 'DIR', help: "where its servers' ledgers and its logs go", defaultText: 'a temporary directory, removed at the end' },
  wait: { kind: 'duration', help: 'how long to keep trying to reach the coordinator', defaultText: '5m' },
});

export const agentCommand = defineCommand({
  summary: 'run the host daemon of an mqtt run spread over machines',
  usage: 'payfleet agent --coordinator ws://HOST:PORT [--capacity N] [--name NAME] [--work-dir DIR] [--wait 5m]',
  description: [
    'Connects to a coordinator (`payfleet run <scenario> --mode mqtt --agents N`) with a token derived from',
    "PAYFLEET_BROKER_SECRET (the run's secret), and runs as its own children the swarm workers and payment servers",
    'placed on it: it applies the faults it is ordered to, reads its servers\' ledgers back and ships its logs, all',
    'over that connection. Losing the coordinator stops every child.',
  ].join('\n'),
  footer: 'Exit status: 0 the run ended; 1 the coordinator was lost mid-run; 2 bad input or refused by the coordinator; 3 the coordinator could not be reached.',
  flags: agentFlags,
  async run({ flags }, io) {
    const secret = io.env.PAYFLEET_BROKER_SECRET;
    if (!secret) throw new UsageError(`set PAYFLEET_BROKER_SECRET to the run's secret (the coordinator's): the agent's token derives from it`);
    const { runAgent, defaultCapacity } = await import('../../mqtt/agent.ts');
    const name = flags.name ?? `${hostname()}-${process.pid}`;
    let capacity = flags.capacity;
    if (capacity === undefined) {
      const measured = defaultCapacity();
      capacity = measured.capacity;
      io.out(`payfleet agent: capacity ${capacity} terminals (fd limit ${measured.fdLimit ?? 'unknown'}, free memory ${Math.round(measured.freeMemoryBytes / 2 ** 20)} MiB)`);
    }
    const outcome = await withStopSignal(io, (signal) =>
      runAgent({ coordinatorUrl: flags.coordinator, secret, name, capacity, workDir: flags['work-dir'], connectWaitMs: flags.wait ?? 5 * 60_000, log: io.out, signal }),
    );
    const line = `payfleet agent: ${name}: ${outcome.detail}`;
    switch (outcome.kind) {
      case 'done':
      case 'stopped':
        io.out(line);
        return EXIT_OK;
      case 'lost':
        io.err(line);
        return EXIT_VIOLATION;
      case 'refused':
        io.err(line);
        return EXIT_BAD_INPUT;
      case 'unreachable':
        io.err(line);
        return EXIT_ENVIRONMENT;
    }
  },
});
