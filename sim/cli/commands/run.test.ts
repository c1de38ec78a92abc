import { describe, expect, it } from 'vitest';
import { parseArgs } from '../args.ts';
import { mqttOptionsOf, runFlags } from './run.ts';

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
});
