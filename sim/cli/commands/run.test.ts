import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from '../args.ts';
import { mqttOptionsOf, runFlags } from './run.ts';
import { main } from '../main.ts';

/** The mqtt run's options from a command line, as `payfleet run --mode mqtt …` reads them. */
const optionsOf = (argv: string[], env: Record<string, string | undefined> = {}) => mqttOptionsOf(parseArgs(argv, runFlags).flags, 'runs/x-mqtt', env);

describe('payfleet run --mode mqtt: its options', () => {
  it('defaults to real time on the embedded broker', () => {
    expect(optionsOf([])).toEqual({ outDir: 'runs/x-mqtt', timeScale: 1, brokerUrl: undefined, secret: undefined, quiet: false, metricsPort: undefined });
  });

  it('takes an external broker with the secret from PAYFLEET_BROKER_SECRET, and names the flag when something is wrong', () => {
    expect(optionsOf(['--broker', 'mqtt://127.0.0.1:1883', '--time-scale=60'], { PAYFLEET_BROKER_SECRET: 'k' })).toMatchObject({ brokerUrl: 'mqtt://127.0.0.1:1883', secret: 'k', timeScale: 60 });
    expect(() => optionsOf(['--broker', 'mqtt://127.0.0.1:1883'])).toThrow(/--broker: set PAYFLEET_BROKER_SECRET/);
    expect(() => optionsOf(['--broker', 'localhost'], { PAYFLEET_BROKER_SECRET: 'k' })).toThrow(/--broker: expected a broker URL/);
    expect(() => optionsOf(['--time-scale', '0'])).toThrow(/--time-scale: expected a positive number, got '0'/);
    expect(() => optionsOf(['--metrics-port', '70000'])).toThrow(/--metrics-port: expected an integer from 0 to 65535, got '70000'/);
  });

  it('takes several brokers, and the servers\' own clustered brokers, checking each URL', () => {
    const k = { PAYFLEET_BROKER_SECRET: 'k' };
    expect(optionsOf(['--broker', 'mqtt://a:1883, mqtt://b:1883'], k)).toMatchObject({ brokerUrl: 'mqtt://a:1883,mqtt://b:1883', serverBrokerUrl: undefined });
    expect(optionsOf(['--broker', 'mqtt://a:1883', '--server-broker', 'mqtt://b:1883'], k)).toMatchObject({ brokerUrl: 'mqtt://a:1883', serverBrokerUrl: 'mqtt://b:1883' });
    expect(() => optionsOf(['--broker', 'mqtt://a:1883,,mqtt://b:1883'], k)).toThrow(/--broker: expected broker URLs separated by commas/);
    expect(() => optionsOf(['--broker', 'mqtt://a:1883,b'], k)).toThrow(/--broker: expected a broker URL .* got 'b'/);
    expect(() => optionsOf(['--broker', 'mqtt://a:1883,mqtt://a:1883'], k)).toThrow(/--broker: mqtt:\/\/a:1883 is given twice/);
    expect(() => optionsOf(['--server-broker', 'mqtt://b:1883'], k)).toThrow(/--server-broker: only with --broker/);
    expect(() => optionsOf(['--broker', 'mqtt://a:1883', '--server-broker', 'redis://b:6379'], k)).toThrow(/--server-broker: expected a broker URL/);
  });
});

describe('payfleet run --ledger: the servers\' ledgers of an mqtt run', () => {
  it('is a typed option: sqlite (a file per server, as without the flag) or a PostgreSQL URL without a schema', () => {
    expect(optionsOf(['--ledger', 'sqlite']).ledger).toBeUndefined();
    expect(optionsOf(['--ledger', 'postgres://payfleet@127.0.0.1:5432/payfleet']).ledger).toEqual({ engine: 'postgres', url: 'postgres://payfleet@127.0.0.1:5432/payfleet', schema: undefined });
  });

  it('refuses anything else, naming --ledger', () => {
    expect(() => optionsOf(['--ledger', 'mysql://h/db'])).toThrow(/--ledger: unknown ledger engine/);
    expect(() => optionsOf(['--ledger', 'sqlite:/tmp/one.db'])).toThrow(/--ledger: expected sqlite \(a file per server in the out directory\) or postgres:\/\/…, got 'sqlite:\/tmp\/one.db'/);
    expect(() => optionsOf(['--ledger', 'postgres://h/db?schema=mine'])).toThrow(/--ledger: a run names each server's schema itself/);
  });

  it('is exit status 2 on the command line, also in virtual mode, where the ledgers are in memory', async () => {
    for (const [argv, message] of [
      [['--mode', 'mqtt', '--ledger', 'mysql://h/db'], /--ledger: unknown ledger engine/],
      [['--ledger', 'postgres://h/db'], /--ledger: only with --mode mqtt/],
    ] as const) {
      const errors: string[] = [];
      const status = await main(['run', 'scenarios/quickstart.yaml', ...argv], { out: () => undefined, err: (line) => errors.push(line), env: {} });
      expect(status).toBe(2);
      expect(errors.join('\n')).toMatch(message);
    }
  });
});

describe('payfleet run --agents N: a run spread over payfleet agent processes', () => {
  it('takes the count, where to listen and how long to wait, with the secret the agents share', () => {
    expect(optionsOf(['--agents', '2', '--listen', '10.0.0.1:7400', '--agents-timeout', '30s'], { PAYFLEET_BROKER_SECRET: 'k' })).toMatchObject({
      secret: 'k',
      agents: { count: 2, host: '10.0.0.1', port: 7400, waitRealMs: 30_000 },
    });
    expect(optionsOf(['--agents', '1'], { PAYFLEET_BROKER_SECRET: 'k' }).agents).toEqual({ count: 1, host: '127.0.0.1', port: 0, waitRealMs: 120_000 });
    expect(optionsOf(['--agents', '1', '--listen', '[::1]:0'], { PAYFLEET_BROKER_SECRET: 'k' }).agents).toMatchObject({ host: '::1', port: 0 });
  });

  it('refuses what cannot work, naming the flag', () => {
    expect(() => optionsOf(['--agents', '2'])).toThrow(/--agents: set PAYFLEET_BROKER_SECRET/);
    expect(() => optionsOf(['--agents', '0'], { PAYFLEET_BROKER_SECRET: 'k' })).toThrow(/--agents: expected an integer ≥ 1, got '0'/);
    expect(() => optionsOf(['--listen', '10.0.0.1:7400'])).toThrow(/--listen: only with --agents N/);
    expect(() => optionsOf(['--agents', '1', '--listen', '10.0.0.1'], { PAYFLEET_BROKER_SECRET: 'k' })).toThrow(/--listen: expected HOST:PORT/);
    expect(() => optionsOf(['--agents', '1', '--listen', 'h:70000'], { PAYFLEET_BROKER_SECRET: 'k' })).toThrow(/--listen: expected HOST:PORT/);
  });

  it('is exit status 2 when the agents do not come in time, saying how to start one', async () => {
    const errors: string[] = [];
    const out = mkdtempSync(join(tmpdir(), 'payfleet-agents-timeout-'));
    try {
      const status = await main(['run', 'scenarios/quickstart.yaml', '--mode', 'mqtt', '--agents', '1', '--agents-timeout', '1s', '--out', out, '--quiet'], {
        out: () => undefined,
        err: (line) => errors.push(line),
        env: { PAYFLEET_BROKER_SECRET: 'k' },
      });
      expect(status).toBe(2);
      expect(errors.join('\n')).toMatch(/--agents: 0 of 1 agent\(s\) connected to ws:\/\/127\.0\.0\.1:\d+ within 1 s; start one on each host with: payfleet agent --coordinator ws:\/\/127\.0\.0\.1:\d+/);
      expect(existsSync(join(out, 'summary.json'))).toBe(false);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 20_000);

  it('is exit status 2 in virtual mode', async () => {
    const errors: string[] = [];
    expect(await main(['run', 'scenarios/quickstart.yaml', '--agents', '2'], { out: () => undefined, err: (line) => errors.push(line), env: {} })).toBe(2);
    expect(errors.join('\n')).toMatch(/--agents: only with --mode mqtt/);
  });
});

describe('payfleet run: a databaseCrash fault needs a PostgreSQL the run may crash', () => {
  const dir = mkdtempSync(join(tmpdir(), 'payfleet-run-dbcrash-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const scenarioFile = join(dir, 'dbcrash.yaml');
  writeFileSync(scenarioFile, `${readFileSync('scenarios/quickstart.yaml', 'utf8')}\nfaults:\n  - { at: 10m, kind: databaseCrash, restartAfter: 1m }\n`);

  it('is refused with exit status 2, nothing written, in virtual mode, on SQLite ledgers, and on a PostgreSQL without --ledger-pgdata', async () => {
    const out = join(dir, 'out');
    for (const [argv, message] of [
      [[], /dbcrash\.yaml: faults: kind databaseCrash at 10m: not modelled in virtual mode .*--ledger-pgdata DIR/],
      [['--mode', 'mqtt'], /kind databaseCrash at 10m: the servers' ledgers are SQLite files, there is no database to crash; run with --ledger postgres:\/\/… --ledger-pgdata DIR/],
      [['--mode', 'mqtt', '--ledger', 'postgres://payfleet@127.0.0.1:5432/payfleet'], /the run cannot crash the PostgreSQL of --ledger: give its data directory with --ledger-pgdata DIR/],
      [['--mode', 'mqtt', '--ledger-pgdata', dir], /--ledger-pgdata: only with --ledger postgres:\/\/…/],
      [['--mode', 'mqtt', '--ledger', 'postgres://payfleet@127.0.0.1:5432/payfleet', '--ledger-pgdata', dir], /--ledger-pgdata .*: not a PostgreSQL data directory \(no PG_VERSION in it\)/],
      [['--ledger-pgdata', dir], /--ledger-pgdata: only with --mode mqtt/],
    ] as const) {
      const errors: string[] = [];
      const status = await main(['run', scenarioFile, '--out', out, ...argv], { out: (line) => errors.push(line), err: (line) => errors.push(line), env: {} });
      expect(errors.join('\n'), argv.join(' ')).toMatch(message);
      expect(status, argv.join(' ')).toBe(2);
      expect(existsSync(out), argv.join(' ')).toBe(false);
    }
  });
});
