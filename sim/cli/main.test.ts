import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BIN = join(import.meta.dirname, '../../bin/payfleet.mjs');

function payfleet(args: string[]) {
  const result = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { status: result.status, out: result.stdout, err: result.stderr };
}

const TINY = `name: tiny
seed: 3
duration: 10m
drain: 20m
crypto: sim
population:
  terminals: 20
  apps:
    - { name: shop, type: telepayment, ordersPerHour: 6, amount: { uniformMinor: [100, 4000] } }
`;

describe('payfleet command', () => {
  it('lists exit 3 (the environment failed, not the system) in the main help and in run --help', () => {
    const main = payfleet(['--help']);
    const run = payfleet(['run', '--help']);
    expect(main.out + main.err).toMatch(/3 the environment failed/);
    expect(run.out + run.err).toMatch(/3: the environment failed/);
  });

  it('runs a scenario, writes its files, and replays it to the same trace hash', () => {
    const dir = mkdtempSync(join(tmpdir(), 'payfleet-cli-'));
    const file = join(dir, 'tiny.yaml');
    writeFileSync(file, TINY);
    const out = join(dir, 'run');
    const run = payfleet(['run', file, '--out', out, '--quiet']);
    expect(run.status, run.err).toBe(0);
    expect(run.out).toContain('seed=3');
    for (const name of ['summary.json', 'timeseries.csv', 'report.html']) expect(existsSync(join(out, name)), name).toBe(true);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    expect(summary.ok).toBe(true);
    const replay = payfleet(['replay', out, '--quiet']);
    expect(replay.status, replay.err + replay.out).toBe(0);
    expect(replay.out).toContain(`trace ${summary.traceHash} matches`);
  });

  it('refuses a bad scenario before running, naming file, line and field, with exit 2 and nothing written', () => {
    const dir = mkdtempSync(join(tmpdir(), 'payfleet-cli-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, TINY.replace('terminals: 20', 'terminals: many'));
    const out = join(dir, 'run');
    const run = payfleet(['run', file, '--out', out]);
    expect(run.status).toBe(2);
    expect(run.err).toMatch(/bad\.yaml:7:\d+: population\.terminals: expected an integer/);
    expect(existsSync(out)).toBe(false);
  });

  it('refuses up front a fleet that cannot fit in memory, with exit 2, the numbers and nothing written', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'payfleet-cli-')), 'run');
    const run = payfleet(['run', 'scenarios/quickstart.yaml', '--terminals', '1000000000', '--out', out]);
    expect(run.status, run.err).toBe(2);
    expect(run.err).toMatch(/does not fit in memory/);
    expect(run.err).toMatch(/GiB of heap/);
    expect(existsSync(out)).toBe(false);
  });

  it('refuses a bad flag with exit 2, naming the flag', () => {
    const bad = payfleet(['run', 'scenarios/quickstart.yaml', '--seed', 'x']);
    expect(bad.status).toBe(2);
    expect(bad.err).toContain("--seed: expected an integer ≥ 0, got 'x'");
    const unknown = payfleet(['run', 'scenarios/quickstart.yaml', '--sead', '1']);
    expect(unknown.status).toBe(2);
    expect(unknown.err).toContain('unknown flag --sead');
    expect(payfleet(['frobnicate']).status).toBe(2);
  });

  it('validates the shipped scenarios', () => {
    const result = payfleet(['validate', 'scenarios/quickstart.yaml', 'scenarios/city-day.yaml', 'scenarios/outage-storm.yaml', 'scenarios/chaos.yaml']);
    expect(result.status, result.err).toBe(0);
    expect(result.out.match(/: ok/g)).toHaveLength(4);
  });
});
