// Goal: `payfleet broker`, the embedded broker as its own process (mqtt runs start it; a person can too).
// Method: parse the flags strictly (an unknown or malformed flag is exit status 2 with a message saying
// which), start broker/aedes.ts, print where it listens, and run until SIGINT or SIGTERM (or the abort signal
// a caller passes), then close and print the refusal counts. Without --secret the secret comes from
// PAYFLEET_BROKER_SECRET, else a fresh one is made and printed so credentials can be issued against it.

import { parseArgs } from 'node:util';
import { startBroker } from './aedes.ts';
import { newSecret } from './credentials.ts';
import { MAX_MESSAGE_BYTES } from './validate.ts';

export const BROKER_USAGE = `Usage: payfleet broker [options]

Runs the embedded MQTT 3.1.1 broker (aedes) with the payfleet topic contract: every client must log in with
credentials derived from the secret, may only use its own topics, and every message is validated.

Options:
  --host HOST               address to listen on (default 127.0.0.1)
  --port N                  MQTT over TCP port (default 1883; 0 picks a free one)
  --ws-port N               also listen for MQTT over WebSocket on this port (0 picks a free one)
  --secret S                the run's secret (default: $PAYFLEET_BROKER_SECRET, else a new one, printed)
  --max-message-bytes N     refuse larger payloads (default ${MAX_MESSAGE_BYTES})
  -h, --help                show this help

Runs until SIGINT or SIGTERM.
`;

export interface CommandIo {
  out(line: string): void;
  err(line: string): void;
  env: Record<string, string | undefined>;
  /** Stops the broker when aborted; by default SIGINT and SIGTERM do. */
  signal?: AbortSignal;
}

const defaultIo: CommandIo = {
  out: (line) => process.stdout.write(line + '\n'),
  err: (line) => process.stderr.write(line + '\n'),
  env: process.env,
};

class UsageError extends Error {}

function integerFlag(name: string, text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || value > max) {
    throw new UsageError(`--${name}: expected an integer from ${min} to ${max}, got ${JSON.stringify(text)}`);
  }
  return value;
}

function untilStopped(signal: AbortSignal | undefined): Promise<string> {
  if (signal) {
    return new Promise((resolve) => {
      if (signal.aborted) resolve('abort');
      else signal.addEventListener('abort', () => resolve('abort'), { once: true });
    });
  }
  return new Promise((resolve) => {
    const stop = (name: string) => () => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolve(name);
    };
    const onInt = stop('SIGINT');
    const onTerm = stop('SIGTERM');
    process.once('SIGINT', onInt);
    process.once('SIGTERM', onTerm);
  });
}

/** Runs `payfleet broker` with `argv` (the arguments after `broker`); resolves with the exit status. */
export async function brokerCommand(argv: readonly string[], io: CommandIo = defaultIo): Promise<number> {
  let options;
  try {
    const { values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        host: { type: 'string' },
        port: { type: 'string' },
        'ws-port': { type: 'string' },
        secret: { type: 'string' },
        'max-message-bytes': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) {
      io.out(BROKER_USAGE);
      return 0;
    }
    if (values.host !== undefined && values.host.trim() === '') throw new UsageError('--host: expected an address, got ""');
    if (values.secret !== undefined && values.secret === '') throw new UsageError('--secret: expected a non-empty secret');
    options = {
      host: values.host ?? '127.0.0.1',
      port: integerFlag('port', values.port, 0, 65_535) ?? 1883,
      wsPort: integerFlag('ws-port', values['ws-port'], 0, 65_535),
      maxMessageBytes: integerFlag('max-message-bytes', values['max-message-bytes'], 1, 256 * 1024 * 1024),
      secret: values.secret ?? io.env.PAYFLEET_BROKER_SECRET,
    };
  } catch (error) {
    // parseArgs throws TypeErrors with a code for unknown flags and missing values; both are usage errors.
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.err(`payfleet broker: ${(error as Error).message}`);
      io.err('Run `payfleet broker --help` for the options.');
      return 2;
    }
    throw error;
  }

  let secret = options.secret;
  if (!secret) {
    secret = newSecret();
    io.out(`payfleet broker: secret ${secret}`);
  }
  let broker;
  try {
    broker = await startBroker({ ...options, secret });
  } catch (error) {
    io.err(`payfleet broker: cannot listen on ${options.host}:${options.port}: ${(error as Error).message}`);
    return 1;
  }
  io.out(`payfleet broker: listening on ${broker.url}${broker.wsUrl ? ` and ${broker.wsUrl}` : ''}`);
  const why = await untilStopped(io.signal);
  await broker.close();
  io.out(`payfleet broker: stopped (${why}); ${JSON.stringify(broker.stats())}`);
  return 0;
}
