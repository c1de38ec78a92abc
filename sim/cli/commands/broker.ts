// Goal: `payfleet broker`, the embedded broker as its own process (mqtt runs start it; a person can too).
// Method: declare and check the flags (exit status 2 naming the flag), start broker/aedes.ts's `startBroker`
// with them, print where it listens, and run until SIGINT or SIGTERM (or the io's abort signal), then close and
// print the refusal counts. Without --secret the secret comes from PAYFLEET_BROKER_SECRET, else a fresh one is
// made and printed so credentials can be issued against it. With --cluster redis://HOST:PORT it joins the brokers
// on that Redis (broker/aedes.ts): a message published on any of them reaches subscribers on all.
// Exit status: 0 stopped, 1 cannot listen (or reach the cluster's Redis), 2 bad input.

import { defineFlags } from '../args.ts';
import { defineCommand, EXIT_OK, EXIT_VIOLATION, stopped, withStopSignal } from '../command.ts';
import { portFlag, redisUrlOf, secretOf } from './brokerFlags.ts';
import { MAX_MESSAGE_BYTES } from '../../../broker/validate.ts';

/** The largest --max-message-bytes taken. */
const MAX_MESSAGE_BYTES_LIMIT = 256 * 1024 * 1024;

export const brokerFlags = defineFlags({
  host: { kind: 'string', placeholder: 'HOST', help: 'address to listen on', defaultText: '127.0.0.1' },
  port: portFlag('MQTT over TCP port (0 picks a free one)', '1883'),
  'ws-port': portFlag('also listen for MQTT over WebSocket on this port (0 picks a free one)', 'none'),
  secret: { kind: 'string', placeholder: 'S', help: "the run's secret", defaultText: '$PAYFLEET_BROKER_SECRET, else a new one, printed' },
  'max-message-bytes': { kind: 'int', min: 1, max: MAX_MESSAGE_BYTES_LIMIT, help: 'refuse larger payloads', defaultText: String(MAX_MESSAGE_BYTES) },
  cluster: {
    kind: 'string',
    parse: (text) => redisUrlOf('cluster', text),
    placeholder: 'URL',
    help: 'share every message with the other brokers on this Redis, redis://HOST:PORT (each publish is one Redis PUBLISH)',
    defaultText: 'standalone',
  },
});

export const brokerCommand = defineCommand({
  summary: 'run the embedded MQTT broker (aedes)',
  usage: 'payfleet broker [--host HOST] [--port N] [--ws-port N] [--secret S] [--max-message-bytes N] [--cluster redis://HOST:PORT]',
  description: [
    'Runs the embedded MQTT 3.1.1 broker (aedes) with the payfleet topic contract: every client must log in with',
    'credentials derived from the secret, may only use its own topics, and every message is validated.',
    'With --cluster, brokers started on the same Redis form one broker: a terminal on one is answered by a server on another.',
  ].join('\n'),
  footer: 'Runs until SIGINT or SIGTERM. Exit status: 0 stopped, 1 cannot listen or reach the cluster\'s Redis, 2 bad input.',
  flags: brokerFlags,
  async run({ flags }, io) {
    const { startBroker } = await import('../../../broker/aedes.ts');
    const { newSecret } = await import('../../../broker/credentials.ts');
    const host = flags.host ?? '127.0.0.1';
    const port = flags.port ?? 1883;
    let secret = secretOf(flags.secret, io.env);
    if (!secret) {
      secret = newSecret();
      io.out(`payfleet broker: secret ${secret}`);
    }
    let broker;
    try {
      broker = await startBroker({
        host,
        port,
        wsPort: flags['ws-port'],
        maxMessageBytes: flags['max-message-bytes'],
        secret,
        clusterUrl: flags.cluster,
        onClusterError: (error) => io.err(`payfleet broker: Redis ${flags.cluster}: ${error.message}`),
      });
    } catch (error) {
      const message = (error as Error).message;
      io.err(message.startsWith('clusterUnreachable') ? `payfleet broker: --cluster: ${message}` : `payfleet broker: cannot listen on ${host}:${port}: ${message}`);
      return EXIT_VIOLATION;
    }
    io.out(`payfleet broker: listening on ${broker.url}${broker.wsUrl ? ` and ${broker.wsUrl}` : ''}${flags.cluster ? ` (cluster ${flags.cluster})` : ''}`);
    const why = await withStopSignal(io, stopped);
    await broker.close();
    io.out(`payfleet broker: stopped (${why}); ${JSON.stringify(broker.stats())}`);
    return EXIT_OK;
  },
});
