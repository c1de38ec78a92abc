import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadScenario, loadScenarioText, ScenarioError, withOverrides, type ScenarioProblem } from './load.ts';
import type { Scenario } from './types.ts';

const FILE = 'scenarios/x.yaml';

/** The problems of a text that must be refused. */
function problemsOf(text: string): readonly ScenarioProblem[] {
  try {
    loadScenarioText(text, FILE);
  } catch (error) {
    if (error instanceof ScenarioError) return error.problems;
    throw error;
  }
  throw new Error('the scenario was accepted');
}

function messagesOf(text: string): string[] {
  try {
    loadScenarioText(text, FILE);
  } catch (error) {
    if (error instanceof ScenarioError) return error.message.split('\n');
    throw error;
  }
  throw new Error('the scenario was accepted');
}

describe('defaults', () => {
  it('accepts an empty file and names the scenario after it', () => {
    const s = loadScenarioText('', 'scenarios/empty.yaml');
    expect(s.name).toBe('empty');
    expect(s.seed).toBe(1);
    expect(s.durationMs).toBe(3_600_000);
    expect(s.drainMs).toBe(1_800_000);
    expect(s.crypto).toBe('ed25519');
    expect(s.population.terminals).toBe(100);
    expect(s.population.regions).toEqual([{ name: 'all', share: 1 }]);
    expect(s.policy.thresholdMinor).toBe(2000);
    expect(s.policy.remittance.triggers.everyMs).toBe(3_600_000);
    expect(s.policy.remittance.retry).toEqual({ initialMs: 2000, maxMs: 300_000, multiplier: 2 });
    expect(s.policy.remoteTimeoutMs).toBe(10_000);
    expect(s.coverage).toEqual({ meanOnDurationMs: 14_400_000, meanOffDurationMs: 300_000, outages: [] });
    expect(s.network).toEqual({ latency: { medianMs: 60, p99Ms: 400 }, lossProbability: 0, duplicateProbability: 0, reorderProbability: 0 });
    expect(s.faults).toEqual([]);
    expect(s.thresholds).toEqual([]);
  });

  it('treats a file of comments like an empty one', () => {
    expect(loadScenarioText('# nothing here\n', FILE).population.terminals).toBe(100);
  });

  it('fills the defaults that depend on other fields', () => {
    const s = loadScenarioText(
      [
        'population:',
        '  regions: [{ name: a, share: 0.5 }, { name: b }, { name: c }]',
        '  means: [{ kind: postpaid }, { kind: electronicWallet, openingBalanceMinor: 700 }]',
        '  apps: [{ type: internal }]',
        '  pos: { units: 4 }',
      ].join('\n'),
      FILE,
    );
    expect(s.population.regions.map((r) => r.share)).toEqual([0.5, 0.25, 0.25]);
    const [postpaid, wallet] = s.population.means;
    expect(postpaid).toMatchObject({ name: 'means-1', openingBalanceMinor: 0, creditLimitMinor: 50_000, localBalanceMinor: 50_000, wallet: false });
    expect(wallet).toMatchObject({ name: 'means-2', openingBalanceMinor: 700, creditLimitMinor: 0, localBalanceMinor: 700, wallet: true });
    expect(s.population.apps[0]).toMatchObject({ name: 'app-1', payee: 'app-1', captureAfterMs: 300_000 });
    expect(s.population.pos.merchants).toBe(4);
  });
});

describe('a full scenario', () => {
  it('resolves every kind of field into the Scenario shape', () => {
    const text = `
name: full
description: every field
seed: 42
duration: 2h
drain: 10m
crypto: sim
population:
  terminals: 10
  shards: 2
  regions: [{ name: r, share: 1 }]
  means:
    - name: m
      weight: 2
      kind: virtualWallet
      dedicated: false
      openingBalanceMinor: 100
      localBalanceMinor: 50
      wallet: true
      fixedAmount: { amountMinor: 10, period: 1h }
      recurring: { amountMinor: 20, period: 1d }
      ceiling: { amountMinor: 30, period: 7d }
      elsewhere: { ordersPerHour: 0.5, amount: { fixedMinor: 5 } }
      topUp: { belowMinor: 100, amount: { uniformMinor: [200, 400] } }
  apps:
    - { name: a, type: telepayment, share: 0.5, ordersPerHour: 2, amount: { uniformMinor: [1, 9] }, payee: p, remoteMode: authCapture, captureAfter: 90s }
  pos: { units: 3, visitsPerTerminalPerHour: 1, amount: { lognormal: { medianMinor: 10, p99Minor: 100 } }, merchants: 2 }
  users: { declineProbability: 0.1, wrongPinProbability: 0.2, pin: "0007", thinkTime: 1500 }
policy:
  thresholdMinor: 1000
  offline: { perPaymentCapMinor: 1, maxPendingCount: 2, maxPendingAmountMinor: 3, overThreshold: decline }
  confirmation: { informAboveMinor: 1, approveAboveMinor: 2, pinAboveMinor: 3, approveProximity: false, pinTries: 5 }
  remittance:
    mode: aggregate
    maxBatchSize: 7
    triggers: { onPayment: false, onCoverageRegained: false, every: null, backlogCount: 3 }
    retry: { initial: 1s, max: 1m, multiplier: 1.5 }
  remoteTimeout: 5s
coverage:
  meanOnDuration: 1h
  meanOffDuration: 0
  outages: [{ region: r, at: 1h, duration: 5m }]
network:
  latency: { medianMs: 10, p99Ms: 1s }
  lossProbability: 0.1
  duplicateProbability: 0.2
  reorderProbability: 0.3
faults:
  - { at: 1m, kind: serverCrash, shard: 1, restartAfter: 10s }
  - { at: 2m, kind: clockSkew, count: 3, skew: -5m }
thresholds: ["orders.total > 0"]
`;
    const expected: Scenario = {
      name: 'full',
      description: 'every field',
      seed: 42,
      durationMs: 7_200_000,
      drainMs: 600_000,
      crypto: 'sim',
      population: {
        terminals: 10,
        shards: 2,
        regions: [{ name: 'r', share: 1 }],
        means: [
          {
            name: 'm',
            weight: 2,
            kind: 'virtualWallet',
            dedicated: false,
            sharedBy: 1,
            openingBalanceMinor: 100,
            creditLimitMinor: 0,
            localBalanceMinor: 50,
            wallet: true,
            fixedAmount: { amountMinor: 10, periodMs: 3_600_000 },
            recurring: { amountMinor: 20, periodMs: 86_400_000 },
            ceiling: { amountMinor: 30, periodMs: 604_800_000, periodBy: 'time' },
            localValue: null,
            elsewhere: { ordersPerHour: 0.5, amount: { kind: 'fixed', amountMinor: 5 } },
            topUp: { belowMinor: 100, amount: { kind: 'uniform', minMinor: 200, maxMinor: 400 } },
          },
        ],
        apps: [
          {
            name: 'a',
            type: 'telepayment',
            share: 0.5,
            ordersPerHour: 2,
            amount: { kind: 'uniform', minMinor: 1, maxMinor: 9 },
            payee: 'p',
            remoteMode: 'authCapture',
            captureAfterMs: 90_000,
          },
        ],
        pos: { units: 3, visitsPerTerminalPerHour: 1, amount: { kind: 'lognormal', medianMinor: 10, p99Minor: 100 }, merchants: 2 },
        users: { declineProbability: 0.1, wrongPinProbability: 0.2, pin: '0007', thinkTimeMs: 1500 },
      },
      policy: {
        thresholdMinor: 1000,
        offline: { perPaymentCapMinor: 1, maxPendingCount: 2, maxPendingAmountMinor: 3, overThreshold: 'decline' },
        confirmation: { informAboveMinor: 1, approveAboveMinor: 2, pinAboveMinor: 3, approveProximity: false, pinTries: 5 },
        remittance: {
          mode: 'aggregate',
          maxBatchSize: 7,
          triggers: { onPayment: false, onCoverageRegained: false, everyMs: null, backlogCount: 3 },
          retry: { initialMs: 1000, maxMs: 60_000, multiplier: 1.5 },
        },
        remoteTimeoutMs: 5000,
      },
      coverage: { meanOnDurationMs: 3_600_000, meanOffDurationMs: 0, outages: [{ region: 'r', atMs: 3_600_000, durationMs: 300_000 }] },
      network: { latency: { medianMs: 10, p99Ms: 1000 }, lossProbability: 0.1, duplicateProbability: 0.2, reorderProbability: 0.3 },
      faults: [
        { kind: 'serverCrash', atMs: 60_000, shard: 1, restartAfterMs: 10_000 },
        { kind: 'clockSkew', atMs: 120_000, count: 3, skewMs: -300_000 },
      ],
      servers: { serviceTimeMs: 0 },
      arrival: null,
      thresholds: ['orders.total > 0'],
    };
    expect(loadScenarioText(text, FILE)).toEqual(expected);
  });

  it('gives each fault kind its defaults when only kind and at are written', () => {
    const kinds = ['serverCrash', 'brokerCrash', 'terminalCrash', 'simMove', 'clockSkew', 'partition', 'forgedSignature', 'replayedRemittance', 'malformedPayload', 'wrongTopic'];
    const text = `faults:\n${kinds.map((kind) => `  - { kind: ${kind}, at: 1m }`).join('\n')}\n`;
    const faults = loadScenarioText(text, FILE).faults;
    expect(faults.map((f) => f.kind)).toEqual(kinds);
    expect(faults[0]).toEqual({ kind: 'serverCrash', atMs: 60_000, shard: 0, restartAfterMs: 30_000 });
    expect(faults[4]).toEqual({ kind: 'clockSkew', atMs: 60_000, count: 1, skewMs: 300_000 });
    expect(faults[5]).toEqual({ kind: 'partition', atMs: 60_000, shard: 0, durationMs: 60_000 });
  });

  it('follows YAML aliases', () => {
    const s = loadScenarioText('population:\n  apps:\n    - { name: a, amount: &small { fixedMinor: 10 } }\n    - { name: b, amount: *small }\n', FILE);
    expect(s.population.apps.map((a) => a.amount)).toEqual([
      { kind: 'fixed', amountMinor: 10 },
      { kind: 'fixed', amountMinor: 10 },
    ]);
  });
});

describe('refusals', () => {
  it('refuses aliases that expand exponentially', () => {
    const levels = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 8; i++) levels.push(`l${i}: &l${i} [${Array(10).fill(i === 1 ? '*a' : `*l${i - 1}`).join(', ')}]`);
    const problems = problemsOf(`${levels.join('\n')}\n`);
    expect(problems).toEqual([{ file: FILE, path: '', message: 'cannot read the document: the aliases of the document expand too much' }]);
  });

  it('reports a YAML syntax error with its line and column', () => {
    const problems = problemsOf('seed: 1\npopulation:\n  terminals: [1, 2\nduration: 1h\n');
    expect(problems.length).toBeGreaterThan(0);
    expect(problems[0]?.file).toBe(FILE);
    expect(problems[0]?.line).toBeGreaterThanOrEqual(3);
    expect(problems[0]?.message).toMatch(/^YAML syntax error: /);
    expect(problems[0]?.message).not.toMatch(/at line/);
  });

  it('reports duplicate keys as a YAML error', () => {
    const [problem] = problemsOf('seed: 1\nseed: 2\n');
    expect(problem?.line).toBe(2);
    expect(problem?.message).toMatch(/unique/);
  });

  it('names file, line, column and field for a wrong type', () => {
    expect(messagesOf('population:\n  terminals: many\n')).toEqual([
      'scenarios/x.yaml:2:14: population.terminals: expected an integer ≥ 1, got "many"',
    ]);
  });

  it('refuses a top level that is not a mapping', () => {
    expect(messagesOf('- 1\n- 2\n')).toEqual(['scenarios/x.yaml:1:1: expected a mapping of scenario fields at the top level']);
  });

  it('refuses unknown fields, with a did-you-mean for near misses and misplaced fields', () => {
    const messages = messagesOf('population:\n  termnals: 3\nterminals: 4\nzzz: 1\n');
    expect(messages[0]).toBe('scenarios/x.yaml:2:3: population.termnals: unknown field; did you mean "terminals"?');
    expect(messages[1]).toMatch(/^scenarios\/x\.yaml:3:1: terminals: unknown field; "terminals" is a field of population; expected one of name, /);
    expect(messages[2]).toMatch(/^scenarios\/x\.yaml:4:1: zzz: unknown field; expected one of /);
  });

  it('says which fields a fault kind takes', () => {
    expect(messagesOf('faults:\n  - { kind: brokerCrash, at: 1m, shard: 1 }\n')).toEqual([
      'scenarios/x.yaml:2:34: faults[0].shard: unknown field for kind brokerCrash, which takes at, restartAfter',
    ]);
  });

  it('refuses unknown enum values and fault kinds with a did-you-mean', () => {
    const messages = messagesOf('crypto: ed2551\nfaults:\n  - { kind: serverCrsh, at: 1m }\n  - { at: 1m }\n');
    expect(messages[0]).toBe('scenarios/x.yaml:1:9: crypto: expected one of "ed25519", "sim", got "ed2551"; did you mean "ed25519"?');
    expect(messages[1]).toMatch(/faults\[0\]\.kind: expected one of "serverCrash", .*, got "serverCrsh"; did you mean "serverCrash"\?$/);
    expect(messages[2]).toMatch(/^scenarios\/x\.yaml:4:5: faults\[1\]\.kind: missing; expected one of "serverCrash"/);
  });

  it('reports required fields that are missing', () => {
    expect(messagesOf('coverage:\n  outages:\n    - { duration: 5m }\n')).toEqual([
      expect.stringMatching(/^scenarios\/x\.yaml:3:7: coverage\.outages\[0\]\.region: missing; expected a string$/),
      expect.stringMatching(/^scenarios\/x\.yaml:3:7: coverage\.outages\[0\]\.at: missing; expected a duration/),
    ]);
  });

  it('refuses out-of-range values', () => {
    const messages = messagesOf(
      [
        'seed: -1',
        'duration: 0',
        'population:',
        '  terminals: 0',
        '  means: [{ weight: 0, openingBalanceMinor: 12.5 }]',
        '  users: { pin: 1234 }',
        'network: { lossProbability: 1.5 }',
        'policy: { remittance: { retry: { multiplier: 0.5 } } }',
      ].join('\n'),
    );
    expect(messages).toEqual([
      'scenarios/x.yaml:1:7: seed: expected an integer from 0 to 4294967295, got -1',
      expect.stringMatching(/^scenarios\/x\.yaml:2:11: duration: expected a duration > 0 such as .*, got 0$/),
      'scenarios/x.yaml:4:14: population.terminals: expected an integer ≥ 1, got 0',
      'scenarios/x.yaml:5:21: population.means[0].weight: expected a number > 0, got 0',
      'scenarios/x.yaml:5:45: population.means[0].openingBalanceMinor: expected a non-negative integer amount of minor units, got 12.5',
      'scenarios/x.yaml:6:17: population.users.pin: expected a string of 4 to 8 digits (quote it: "1234"), got 1234',
      'scenarios/x.yaml:7:29: network.lossProbability: expected a probability from 0 to 1, got 1.5',
      'scenarios/x.yaml:8:46: policy.remittance.retry.multiplier: expected a number ≥ 1, got 0.5',
    ]);
  });

  it('refuses malformed amount distributions', () => {
    const messages = messagesOf(
      [
        'population:',
        '  apps:',
        '    - amount: 500',
        '    - amount: { uniformMinor: [9, 1] }',
        '    - amount: { lognormal: { medianMinor: 100, p99Minor: 50 } }',
        '    - amount: { fixedMinr: 5 }',
        '    - amount: { fixedMinor: 5, uniformMinor: [1, 2] }',
      ].join('\n'),
    );
    expect(messages[0]).toMatch(/apps\[0\]\.amount: expected an amount distribution: \{ fixedMinor: N \}, .*, got 500$/);
    expect(messages[1]).toMatch(/apps\[1\]\.amount\.uniformMinor: expected min ≤ max, got \[9, 1\]$/);
    expect(messages[2]).toMatch(/apps\[2\]\.amount\.lognormal\.p99Minor: expected a 99th percentile ≥ the median \(100\), got 50$/);
    expect(messages[3]).toMatch(/apps\[3\]\.amount\.fixedMinr: unknown amount form; did you mean "fixedMinor"\?/);
    expect(messages[4]).toMatch(/apps\[4\]\.amount: expected an amount distribution: .*, got a mapping with 2 keys$/);
  });

  it('collects every problem of the file, in the order of the file', () => {
    const problems = problemsOf('seed: x\npopulation:\n  shards: 0\nnetwork:\n  latency: { medianMs: soon }\n');
    expect(problems.map((p) => [p.line, p.path])).toEqual([
      [1, 'seed'],
      [3, 'population.shards'],
      [5, 'network.latency.medianMs'],
    ]);
  });

  it('checks the rules between fields, at the line of the field concerned', () => {
    const messages = messagesOf(
      [
        'duration: 1h',
        'population:',
        '  shards: 2',
        '  terminals: 10',
        '  regions:',
        '    - { name: north, share: 0.5 }',
        '    - { name: south, share: 0.6 }',
        '  means:',
        '    - { kind: prepaid, creditLimitMinor: 5 }',
        '    - { kind: prepaid, elsewhere: { ordersPerHour: 1 }, sharedBy: 2 }',
        '  pos: { units: 2, merchants: 3 }',
        'policy: { remittance: { retry: { initial: 1m, max: 10s } } }',
        'network: { latency: { medianMs: 100, p99Ms: 50 } }',
        'coverage:',
        '  outages: [{ region: nort, at: 30m }, { region: south, at: 1h }]',
        'faults:',
        '  - { kind: serverCrash, at: 2h, shard: 2 }',
        '  - { kind: terminalCrash, at: 1m, count: 11 }',
      ].join('\n'),
    );
    expect(messages).toEqual([
      'scenarios/x.yaml:6:5: population.regions: expected the shares of the regions to sum to 1, got 1.1',
      'scenarios/x.yaml:9:42: population.means[0].creditLimitMinor: expected 0 for a prepaid means (only a postpaid means has a credit limit), got 5',
      'scenarios/x.yaml:10:35: population.means[1].elsewhere: expected no spending elsewhere on a dedicated means; set dedicated: false to share it',
      'scenarios/x.yaml:10:67: population.means[1].sharedBy: expected dedicated: false for a means shared by 2 terminals',
      'scenarios/x.yaml:11:31: population.pos.merchants: expected an integer from 1 to pos.units (2), got 3',
      'scenarios/x.yaml:12:52: policy.remittance.retry.max: expected at least initial (1m), got 10s',
      'scenarios/x.yaml:13:45: network.latency.p99Ms: expected at least the median (100 ms), got 50 ms',
      'scenarios/x.yaml:15:23: coverage.outages[0].region: expected one of the regions "north", "south", got "nort"; did you mean "north"?',
      'scenarios/x.yaml:15:61: coverage.outages[1].at: expected a time before the duration (1h), got 1h',
      'scenarios/x.yaml:17:30: faults[0].at: expected a time before the duration (1h), got 2h',
      'scenarios/x.yaml:17:41: faults[0].shard: expected a shard index below population.shards (2), got 2',
      'scenarios/x.yaml:18:43: faults[1].count: expected at most population.terminals (10) terminals, got 11',
    ]);
  });

  it('refuses a top-up agreement without its amount, or with a bad one, at its line', () => {
    expect(messagesOf('population:\n  means:\n    - { kind: prepaid, topUp: { belowMinor: 2000 } }\n')).toEqual([
      expect.stringMatching(/^scenarios\/x\.yaml:3:\d+: population\.means\[0\]\.topUp\.amount: missing; expected /),
    ]);
    expect(messagesOf('population:\n  means:\n    - { kind: prepaid, topUp: { belowMinor: -1, amount: { fixedMinor: 500 } } }\n')).toEqual([
      expect.stringMatching(/^scenarios\/x\.yaml:3:\d+: population\.means\[0\]\.topUp\.belowMinor: /),
    ]);
    expect(messagesOf('population:\n  means:\n    - { kind: prepaid, topUp: { belowMinor: 10, amount: { uniformMinor: [0, 5] } } }\n')).toEqual([
      expect.stringMatching(/^scenarios\/x\.yaml:3:\d+: population\.means\[0\]\.topUp\.amount: expected a top-up of at least 1 minor unit$/),
    ]);
  });

  it('refuses duplicate names', () => {
    expect(messagesOf('population:\n  apps: [{ name: a }, { name: a }]\n')).toEqual([
      'scenarios/x.yaml:2:31: population.apps[1].name: expected a unique name, got "a" a second time',
    ]);
  });

  it('throws a ScenarioError whose problems carry file, line, column, path and message', () => {
    expect(problemsOf('population:\n  terminals: -3\n')).toEqual([
      { file: FILE, line: 2, column: 14, path: 'population.terminals', message: 'expected an integer ≥ 1, got -3' },
    ]);
  });
});

describe('loadScenario', () => {
  it('reads a file and names problems after its path', () => {
    const dir = mkdtempSync(join(tmpdir(), 'payfleet-scenario-'));
    const good = join(dir, 'good.yaml');
    const bad = join(dir, 'bad.yaml');
    writeFileSync(good, 'seed: 9\n');
    writeFileSync(bad, 'seed: nine\n');
    expect(loadScenario(good)).toMatchObject({ name: 'good', seed: 9 });
    expect(() => loadScenario(bad)).toThrow(`${bad}:1:7: seed: expected an integer`);
  });

  it('refuses a missing file with a ScenarioError', () => {
    const missing = join(tmpdir(), 'payfleet-no-such-scenario.yaml');
    expect(() => loadScenario(missing)).toThrow(ScenarioError);
    expect(() => loadScenario(missing)).toThrow(/cannot read the scenario file \(ENOENT\)/);
  });
});

describe('withOverrides', () => {
  const base = loadScenarioText('duration: 2h\nfaults: [{ kind: brokerCrash, at: 90m }]\n', 'base.yaml');

  it('applies seed, terminals and duration, from numbers or command-line text', () => {
    const s = withOverrides(base, { seed: '7', terminals: 50, duration: '3h' });
    expect(s.seed).toBe(7);
    expect(s.population.terminals).toBe(50);
    expect(s.durationMs).toBe(10_800_000);
    expect(withOverrides(base, { duration: '6000000' }).durationMs).toBe(6_000_000);
  });

  it('leaves the original scenario unchanged', () => {
    withOverrides(base, { terminals: 5 });
    expect(base.population.terminals).toBe(100);
  });

  it('validates every override and reports each by its option', () => {
    try {
      withOverrides(base, { seed: 'abc', terminals: '0', duration: '-1h' });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ScenarioError);
      expect((error as ScenarioError).message.split('\n')).toEqual([
        '<command line>: --seed: expected an integer from 0 to 4294967295, got "abc"',
        '<command line>: --terminals: expected an integer ≥ 1, got 0',
        expect.stringMatching(/^<command line>: --duration: expected a duration > 0 .*, got "-1h"$/),
      ]);
    }
  });

  it('checks the rules between fields again', () => {
    expect(() => withOverrides(base, { duration: '1h' })).toThrow(
      'base: faults[0].at: expected a time before the duration (1h), got 1h30m (after the command-line overrides)',
    );
  });
});
