// Goal: `payfleet broker-config <scenario> --kind mosquitto --out DIR`: everything an external Mosquitto needs for
// one run, written before the run (a broker must already be running with its users when the run starts): the
// password file and ACL of the run's identities, and a configuration with the limits the fleet needs, each with a
// comment saying why.
// Method: load the scenario with the run's overrides (so the identities are the run's), derive every password from
// PAYFLEET_BROKER_SECRET as the run will (broker/credentials.ts), count the fleet's connections as the run will
// place them (sim/mqtt/fleetFit.ts), and write the three files with broker/mosquitto.ts. Everything is checked
// before anything is written; the files are written beside each other under temporary names and renamed, so a
// failure leaves no half-written set. Exit status: 0 written, 2 bad input.

import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { defineFlags, UsageError } from '../args.ts';
import { defineCommand, EXIT_OK } from '../command.ts';
import { portFlag } from './brokerFlags.ts';
import { loadScenario, withOverrides } from '../../scenario/load.ts';

export const brokerConfigFlags = defineFlags({
  kind: { kind: 'string', required: true, oneOf: ['mosquitto'], help: 'the broker to configure' },
  out: { kind: 'string', required: true, placeholder: 'DIR', help: 'directory for passwd, acl and mosquitto.conf (created if missing)' },
  host: { kind: 'string', placeholder: 'HOST', help: 'address the broker listens on', defaultText: '127.0.0.1' },
  port: portFlag('MQTT over TCP port the broker listens on', '1883'),
  seed: { kind: 'int', help: 'as `payfleet run --seed`', defaultText: "the scenario's" },
  terminals: { kind: 'int', help: 'as `payfleet run --terminals`: the identities are those of a run with this many', defaultText: "the scenario's" },
});

export const brokerConfigCommand = defineCommand({
  summary: "write an external broker's password, ACL and config files for a run's identities",
  usage: 'payfleet broker-config <scenario.yaml> --kind mosquitto --out DIR [--host HOST] [--port N] [--terminals N] [--seed N]',
  description: [
    "Writes DIR/passwd, DIR/acl and DIR/mosquitto.conf for the identities of a run of the scenario (every terminal, POS",
    'unit, payment server and the harness), with passwords derived from PAYFLEET_BROKER_SECRET, and the limits the',
    'fleet needs (connections, in-flight and queued messages, the file-descriptor limit to start it with). Then:',
    '  mosquitto -c DIR/mosquitto.conf',
    '  payfleet run <scenario.yaml> --mode mqtt --broker mqtt://HOST:PORT   (same PAYFLEET_BROKER_SECRET)',
  ].join('\n'),
  footer: 'Exit status: 0 written, 2 bad input (nothing is written).',
  flags: brokerConfigFlags,
  positionals: true,
  async run({ positionals, flags }, io) {
    if (positionals.length !== 1) throw new UsageError(`expected one scenario file, got ${positionals.length}`);
    const secret = io.env.PAYFLEET_BROKER_SECRET;
    if (!secret) throw new UsageError('PAYFLEET_BROKER_SECRET: set it to the run\'s secret (the run and the servers derive every password from it), e.g. export PAYFLEET_BROKER_SECRET=$(openssl rand -hex 32)');
    if (flags.out.trim() === '') throw new UsageError('--out: required', 'out');
    const scenario = withOverrides(loadScenario(positionals[0]!), { seed: flags.seed, terminals: flags.terminals });
    const { aclFile, mosquittoConfig, mosquittoFdLimit, passwordFile } = await import('../../../broker/mosquitto.ts');
    const { runIdentities, shardGroups } = await import('../../mqtt/identities.ts');
    const { fleetCounts } = await import('../../mqtt/fleetFit.ts');
    const dir = resolve(flags.out);
    const identities = runIdentities(scenario);
    const counts = fleetCounts({ scenario, workers: 1, brokerUrl: undefined });
    const limits = { endpoints: counts.allEndpoints, servers: shardGroups(scenario.population.shards).length };
    const files = {
      passwd: passwordFile(secret, identities),
      acl: aclFile(identities),
      'mosquitto.conf': mosquittoConfig({
        host: flags.host ?? '127.0.0.1',
        port: flags.port ?? 1883,
        passwordFile: join(dir, 'passwd'),
        aclFile: join(dir, 'acl'),
        logFile: join(dir, 'mosquitto.log'),
        limits,
        logToStdout: true,
      }),
    };
    mkdirSync(dir, { recursive: true });
    const temporary = (name: string) => join(dir, `.${name}.${process.pid}.tmp`);
    for (const [name, text] of Object.entries(files)) writeFileSync(temporary(name), text, { mode: 0o600 });
    for (const name of Object.keys(files)) renameSync(temporary(name), join(dir, name));
    const p = scenario.population;
    io.out(`payfleet broker-config: wrote ${join(dir, 'passwd')}, ${join(dir, 'acl')} and ${join(dir, 'mosquitto.conf')}`);
    io.out(`  ${identities.length} identities (${p.terminals} terminals, ${p.pos.units} POS, ${limits.servers} payment servers, the harness); max_connections ${limits.endpoints}`);
    io.out(`  start it with at least ${mosquittoFdLimit(limits)} file descriptors: ulimit -n ${mosquittoFdLimit(limits)} && mosquitto -c ${join(dir, 'mosquitto.conf')}`);
    return EXIT_OK;
  },
});
