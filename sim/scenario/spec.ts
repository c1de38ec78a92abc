// Goal: the one source of truth of the scenario format: every field, its type, its limits, its default and
// its meaning.
// Method: a small declarative description that three readers share: the validator (`validate.ts`) walks it
// against the YAML tree, `jsonSchema.ts` turns it into the published JSON Schema, and `docs.ts` into the
// field reference of docs/scenarios.md. Defaults are written in the input form (as a person would write them
// in YAML) and go through the same validator as the file, so a default can never disagree with its field.
// Defaults that depend on other fields (a means' local balance, the number of merchants…) are computed
// after validation in `load.ts`; their fields carry `defaultDoc` instead of `default`.

interface Base {
  /** One sentence for the docs and the schema's description. */
  doc: string;
  /** The field must be given (only inside list items, whose parent has no default to take). */
  required?: boolean;
  /** Describes a default computed from other fields, when `default` cannot say it. */
  defaultDoc?: string;
}

export type AmountInput =
  | { fixedMinor: number }
  | { uniformMinor: [number, number] }
  | { lognormal: { medianMinor: number; p99Minor: number } };

export type Spec =
  | (Base & { type: 'integer'; min?: number; max?: number; default?: number })
  | (Base & { type: 'number'; min?: number; exclusiveMin?: boolean; max?: number; default?: number })
  | (Base & { type: 'probability'; default?: number })
  | (Base & { type: 'minor'; default?: number })
  | (Base & { type: 'duration'; signed?: boolean; positive?: boolean; nullable?: boolean; default?: string | number | null })
  | (Base & { type: 'string'; pattern?: string; patternDoc?: string; default?: string })
  | (Base & { type: 'boolean'; default?: boolean })
  | (Base & { type: 'enum'; values: readonly string[]; default?: string })
  | (Base & { type: 'object'; fields: Fields; nullable?: boolean })
  | (Base & { type: 'list'; item: Spec; default?: unknown[] })
  | (Base & { type: 'amount'; default?: AmountInput })
  | (Base & { type: 'tagged'; tag: string; nullable?: boolean; common: Fields; variants: Record<string, { doc: string; fields: Fields }> });

export type Fields = Record<string, Spec>;

/** The key a field has in the resolved scenario: durations gain the unit suffix `Ms`. */
export function resolvedKey(name: string, spec: Spec): string {
  return spec.type === 'duration' && !name.endsWith('Ms') ? `${name}Ms` : name;
}

const periodAmount = (what: string): Spec => ({
  type: 'object',
  nullable: true,
  doc: what,
  fields: {
    amountMinor: { type: 'minor', required: true, doc: 'The amount, in minor units.' },
    period: { type: 'duration', positive: true, required: true, doc: 'The period P.' },
  },
});

const count = (doc: string): Spec => ({ type: 'integer', min: 1, default: 1, doc });
const restartAfter: Spec = { type: 'duration', default: '30s', doc: 'Down time before the restart.' };
const shard: Spec = { type: 'integer', min: 0, default: 0, doc: 'Index of the shard, below population.shards.' };

const means: Spec = {
  type: 'object',
  doc: 'A profile of payment means MPk.',
  fields: {
    name: { type: 'string', defaultDoc: '"means-<n>" (n counts from 1)', doc: 'Unique name of the profile.' },
    weight: { type: 'number', min: 0, exclusiveMin: true, default: 1, doc: 'Relative weight of the profile: terminals draw their means by weight.' },
    kind: { type: 'enum', values: ['prepaid', 'postpaid', 'virtualWallet', 'electronicWallet'], default: 'prepaid', doc: 'Kind of payment means.' },
    dedicated: { type: 'boolean', default: true, doc: 'True when the terminal is the only point of issue; false when others spend from the same account (see elsewhere and sharedBy).' },
    sharedBy: {
      type: 'integer',
      min: 1,
      default: 1,
      doc: 'Terminals sharing one account of this profile (a family wallet): the terminals i with the same floor(i / sharedBy) that drew this profile share one means, each proxy spending offline from an allotment of 1/sharedBy of what the server last said was available. More than 1 needs dedicated: false.',
    },
    openingBalanceMinor: { type: 'minor', defaultDoc: '10000 (0 for postpaid)', doc: 'Money on the account at the start, as the server sees it.' },
    creditLimitMinor: { type: 'minor', defaultDoc: '50000 for postpaid, else 0', doc: 'Postpaid only: how far the account may go below zero.' },
    localBalanceMinor: { type: 'minor', defaultDoc: 'openingBalanceMinor + creditLimitMinor', doc: "The proxy's local balance SL at the start." },
    wallet: { type: 'boolean', defaultDoc: 'true for electronicWallet, else false', doc: 'The means has an electronic wallet PMVL on the SIM, starting with the local balance.' },
    fixedAmount: periodAmount('Fixed amount FF: S0 usable during one period P from the start, then unusable. Absent: none.'),
    recurring: periodAmount('Recurring amount FLR: reset to S0 at each period boundary. Absent: none.'),
    ceiling: {
      type: 'object',
      nullable: true,
      doc: 'Expenditure ceiling PD: at most this much spent per period MTD. Absent: none.',
      fields: {
        amountMinor: { type: 'minor', required: true, doc: 'PD, in minor units.' },
        period: { type: 'duration', positive: true, default: '1d', doc: 'The period P, when periodBy is time.' },
        periodBy: {
          type: 'enum',
          values: ['time', 'remittance', 'connection'],
          default: 'time',
          doc: 'What ends a period: time (every period P from the start), remittance (each remittance the server acknowledges for the means, the patent\'s period of an internal payment means) or connection (each connection to the server, its period of a telepayment means).',
        },
      },
    },
    localValue: {
      type: 'object',
      nullable: true,
      doc: 'Value held on the SIM for internal payments, in a purse of its own (the means id with "+v"), funded from this means: the server debits this means at each reload, purchase or subscription period. Internal orders of the terminal pay from the purse. Absent: none.',
      fields: {
        kind: {
          type: 'enum',
          values: ['wallet', 'fixedAmount', 'recurring'],
          default: 'wallet',
          doc: 'wallet: an electronic wallet PMVL reloaded by amountMinor when below reloadBelowMinor; fixedAmount: FF, amountMinor bought for one period, the leftover unusable (and accounted) after it, bought again when in coverage; recurring: FLR, subscribed, reset to amountMinor at each period, each period paid from this means.',
        },
        amountMinor: { type: 'minor', required: true, doc: 'The reload amount (wallet) or S0 (fixedAmount, recurring).' },
        period: { type: 'duration', positive: true, default: '1h', doc: 'The period P of a fixed or recurring amount.' },
        reloadBelowMinor: { type: 'minor', defaultDoc: 'half of amountMinor', doc: 'wallet: reload when the balance is below this and the terminal is in coverage.' },
      },
    },
    elsewhere: {
      type: 'object',
      nullable: true,
      doc: 'Spending by other points of issue; only for a shared means (dedicated: false). Absent: none.',
      fields: {
        ordersPerHour: { type: 'number', min: 0, default: 1, doc: 'Payments elsewhere per means per hour (Poisson).' },
        amount: { type: 'amount', default: { lognormal: { medianMinor: 1000, p99Minor: 5000 } }, doc: 'Amount of each payment elsewhere.' },
      },
    },
    topUp: {
      type: 'object',
      nullable: true,
      doc: 'An auto-reload agreement: money entering from outside (a bank transfer, a cash-in). When a posting at the server leaves the account with less than belowMinor available (postpaid: available credit), the server credits it with an amount drawn from amount, in the same transaction. Absent: none.',
      fields: {
        belowMinor: { type: 'minor', required: true, doc: 'Top up when a posting leaves less than this available.' },
        amount: { type: 'amount', required: true, doc: 'Amount of each top-up.' },
      },
    },
  },
};

const app: Spec = {
  type: 'object',
  doc: 'A paid-for application on the terminals.',
  fields: {
    name: { type: 'string', defaultDoc: '"app-<n>" (n counts from 1)', doc: 'Unique name of the application.' },
    type: { type: 'enum', values: ['internal', 'telepayment'], default: 'telepayment', doc: 'internal: the terminal pays its own services (always local); telepayment: pays a remote payee.' },
    share: { type: 'probability', default: 1, doc: 'Fraction of the terminals that have the application.' },
    ordersPerHour: { type: 'number', min: 0, default: 1, doc: 'Payment orders per terminal having the app, per hour (Poisson).' },
    amount: { type: 'amount', default: { lognormal: { medianMinor: 500, p99Minor: 5000 } }, doc: 'Amount of each order.' },
    payee: { type: 'string', defaultDoc: 'the application name', doc: "The beneficiary's account on the server's ledger." },
    remoteMode: { type: 'enum', values: ['debit', 'authCapture'], default: 'debit', doc: 'Remote payments: one debit request, or an authorisation captured later.' },
    captureAfter: { type: 'duration', default: '5m', doc: 'authCapture: time between the authorisation and its capture.' },
  },
};

const arrivalRate = (doc: string): Spec => ({ type: 'number', min: 0, exclusiveMin: true, required: true, doc });

const arrival: Spec = {
  type: 'tagged',
  tag: 'executor',
  nullable: true,
  doc: "Open-model load, as k6's arrival-rate executors: orders arrive at a global rate across the fleet, each from a terminal drawn uniformly among those up, instead of each terminal's own Poisson rates. An order that cannot be issued on time (no terminal up, maxInFlight reached) is counted in orders.dropped. Absent: each terminal's apps at their ordersPerHour.",
  common: {
    timeUnit: { type: 'duration', positive: true, default: '1s', doc: 'The period the rates are given per (k6 timeUnit): rate 50 with timeUnit 1m is 50 orders a minute.' },
    startTime: { type: 'duration', default: 0, doc: 'When the arrivals begin, from the start of the run.' },
    maxInFlight: {
      type: 'integer',
      min: 0,
      default: 0,
      doc: "At most this many app orders issued and not yet answered (like k6's maxVUs); an arrival beyond the bound is dropped. 0: no bound.",
    },
    mix: {
      type: 'list',
      default: [],
      doc: "Where the orders come from, by weight: an app of population.apps (from a terminal that has it) or \"pos\" (a shop visit). Empty: the drawn terminal's own mix, its apps by ordersPerHour and its shop visits.",
      item: {
        type: 'object',
        doc: 'A source of orders.',
        fields: {
          source: { type: 'string', required: true, doc: 'The name of an app of population.apps, or "pos".' },
          weight: { type: 'number', min: 0, exclusiveMin: true, default: 1, doc: 'Relative weight of the source.' },
        },
      },
    },
  },
  variants: {
    'constant-arrival-rate': {
      doc: 'A constant rate: order k (k = 0, 1, …) arrives at startTime + k·timeUnit/rate, while before the end of its duration.',
      fields: {
        rate: arrivalRate('Orders per timeUnit.'),
        duration: { type: 'duration', positive: true, nullable: true, default: null, doc: 'How long the arrivals last; null: until the end of the safety phase.' },
      },
    },
    'ramping-arrival-rate': {
      doc: 'A rate that moves linearly from startRate to each stage\'s target over the stage\'s duration; order k (k = 1, 2, …) arrives when the integral of the rate reaches k. The arrivals end with the last stage.',
      fields: {
        startRate: { type: 'number', min: 0, default: 0, doc: 'Orders per timeUnit at startTime.' },
        stages: {
          type: 'list',
          required: true,
          doc: 'The stages, in order (at least one).',
          item: {
            type: 'object',
            doc: 'A stage.',
            fields: {
              target: { type: 'number', min: 0, required: true, doc: 'Orders per timeUnit at the end of the stage.' },
              duration: { type: 'duration', positive: true, required: true, doc: 'How long the stage lasts.' },
            },
          },
        },
      },
    },
  },
};

const fields: Fields = {
  name: { type: 'string', defaultDoc: 'the file name without its extension', doc: 'Name of the scenario, used in reports and run folders.' },
  description: { type: 'string', default: '', doc: 'Free text for people.' },
  seed: { type: 'integer', min: 0, max: 4_294_967_295, default: 1, doc: 'Seed of every random draw: same scenario and seed, same run.' },
  duration: { type: 'duration', positive: true, default: '1h', doc: 'Simulated time of the safety phase: orders, coverage changes and faults happen during it.' },
  drain: { type: 'duration', default: '30m', doc: 'Liveness phase after the duration: coverage returns, faults stop, and every backlog must drain within this time.' },
  crypto: { type: 'enum', values: ['ed25519', 'sim'], default: 'ed25519', doc: "Signature scheme: real Ed25519, or 'sim', a fast keyed hash for fleet-scale runs (models the checks, not the cryptography)." },
  population: {
    type: 'object',
    doc: 'Who is simulated.',
    fields: {
      terminals: { type: 'integer', min: 1, default: 100, doc: 'Number of terminals, each with one payment proxy.' },
      shards: { type: 'integer', min: 1, default: 1, doc: 'Number of payment-server shards; a means is served by one shard (hash of its id).' },
      regions: {
        type: 'list',
        default: [{ name: 'all', share: 1 }],
        doc: 'Coverage regions and the share of terminals in each; shares sum to 1.',
        item: {
          type: 'object',
          doc: 'A region.',
          fields: {
            name: { type: 'string', required: true, doc: 'Unique name of the region.' },
            share: { type: 'probability', defaultDoc: 'an equal part of what the other regions leave', doc: 'Fraction of the terminals in the region.' },
          },
        },
      },
      means: { type: 'list', default: [{ name: 'prepaid', kind: 'prepaid' }], doc: 'Profiles of payment means; each terminal draws one, by weight.', item: means },
      apps: {
        type: 'list',
        default: [
          { name: 'shop', type: 'telepayment', ordersPerHour: 0.5 },
          { name: 'game', type: 'internal', ordersPerHour: 0.5, amount: { uniformMinor: [50, 500] } },
        ],
        doc: 'Applications that send payment orders.',
        item: app,
      },
      pos: {
        type: 'object',
        doc: 'Shop points of sale (proximity payments over the near link, which works without coverage).',
        fields: {
          units: { type: 'integer', min: 0, default: 0, doc: 'Number of POS units; 0 for no proximity payments.' },
          visitsPerTerminalPerHour: { type: 'number', min: 0, default: 0.1, doc: 'Shop visits per terminal per hour (Poisson), each a proximity payment order.' },
          amount: { type: 'amount', default: { lognormal: { medianMinor: 1500, p99Minor: 10000 } }, doc: 'Amount of each shop payment.' },
          merchants: { type: 'integer', min: 0, defaultDoc: 'units', doc: 'Number of merchants the units belong to (1 ≤ merchants ≤ units when there are units).' },
        },
      },
      users: {
        type: 'object',
        doc: 'How the simulated users answer confirmations.',
        fields: {
          declineProbability: { type: 'probability', default: 0.01, doc: 'Probability that a user says no when asked to approve.' },
          wrongPinProbability: { type: 'probability', default: 0.02, doc: 'Probability of a wrong PIN at each try.' },
          pin: { type: 'string', pattern: '^[0-9]{4,8}$', patternDoc: 'a string of 4 to 8 digits (quote it: "1234")', default: '1234', doc: 'The PIN the users know.' },
          thinkTime: { type: 'duration', default: '3s', doc: 'Time a user takes to answer a confirmation.' },
        },
      },
    },
  },
  policy: {
    type: 'object',
    doc: "The payment proxy's rules.",
    fields: {
      thresholdMinor: { type: 'minor', default: 2000, doc: 'M0: in coverage, amounts strictly above go remote, others are approved locally.' },
      offline: {
        type: 'object',
        doc: 'Stricter criteria without coverage (like EMV offline counters).',
        fields: {
          perPaymentCapMinor: { type: 'minor', default: 5000, doc: 'No single offline payment above this amount.' },
          maxPendingCount: { type: 'integer', min: 0, default: 20, doc: 'At most this many unremitted local transactions.' },
          maxPendingAmountMinor: { type: 'minor', default: 20000, doc: 'At most this much unremitted local money.' },
          overThreshold: { type: 'enum', values: ['decline', 'approveUnderCaps'], default: 'approveUnderCaps', doc: 'No coverage and an amount over M0: decline, or approve locally under the caps above.' },
        },
      },
      confirmation: {
        type: 'object',
        doc: 'Which orders the user must see, approve, or approve with the PIN.',
        fields: {
          informAboveMinor: { type: 'minor', default: 0, doc: 'Orders above this amount are shown to the user.' },
          approveAboveMinor: { type: 'minor', default: 1000, doc: "Orders above this amount need the user's yes." },
          pinAboveMinor: { type: 'minor', default: 5000, doc: 'Orders above this amount need the PIN.' },
          approveProximity: { type: 'boolean', default: true, doc: 'Proximity (POS) payments always need at least a yes.' },
          pinTries: { type: 'integer', min: 1, default: 3, doc: 'Wrong PINs before the PIN blocks.' },
        },
      },
      remittance: {
        type: 'object',
        doc: 'How locally approved transactions are remitted to the server (K2).',
        fields: {
          mode: { type: 'enum', values: ['grouped', 'aggregate'], default: 'grouped', doc: 'grouped: the transactions themselves; aggregate: their sum and the ids it covers.' },
          maxBatchSize: { type: 'integer', min: 1, default: 50, doc: 'At most this many transactions per remittance.' },
          triggers: {
            type: 'object',
            doc: 'What starts a remittance.',
            fields: {
              onPayment: { type: 'boolean', default: true, doc: 'The next payment made in coverage.' },
              onCoverageRegained: { type: 'boolean', default: true, doc: 'Coverage coming back.' },
              every: { type: 'duration', positive: true, nullable: true, default: '1h', doc: 'A date: remit at this interval; null for never.' },
              backlogCount: { type: 'integer', min: 1, default: 10, doc: 'As soon as this many transactions are pending.' },
            },
          },
          retry: {
            type: 'object',
            doc: 'Retries until the server acknowledges (never relying on the broker to deliver).',
            fields: {
              initial: { type: 'duration', positive: true, default: '2s', doc: 'First retry delay.' },
              max: { type: 'duration', positive: true, default: '5m', doc: 'Longest retry delay (at least initial).' },
              multiplier: { type: 'number', min: 1, default: 2, doc: 'Each delay is the previous one times this.' },
            },
          },
        },
      },
      remoteTimeout: { type: 'duration', positive: true, default: '10s', doc: 'A remote payment unanswered after this long is declined.' },
    },
  },
  coverage: {
    type: 'object',
    doc: "The terminals' mobile network coverage.",
    fields: {
      meanOnDuration: { type: 'duration', positive: true, default: '4h', doc: 'Mean time a terminal stays in coverage (exponential).' },
      meanOffDuration: { type: 'duration', default: '5m', doc: 'Mean time a terminal stays out of coverage (exponential); 0 disables random coverage loss.' },
      outages: {
        type: 'list',
        default: [],
        doc: 'Scheduled regional outages: every terminal of the region loses coverage.',
        item: {
          type: 'object',
          doc: 'An outage.',
          fields: {
            region: { type: 'string', required: true, doc: 'Name of a region of population.regions.' },
            at: { type: 'duration', required: true, doc: 'Start, from the beginning of the run (before duration).' },
            duration: { type: 'duration', positive: true, default: '10m', doc: 'How long the outage lasts.' },
          },
        },
      },
    },
  },
  network: {
    type: 'object',
    doc: 'The network between the devices (terminals, POS) and the servers: simulated in virtual mode; in mqtt mode the devices\' radio, on top of the real broker, with delays in run time. Loss, duplication and reordering stop when the drain begins, in both modes.',
    fields: {
      latency: {
        type: 'object',
        doc: 'One-way message latency (log-normal).',
        fields: {
          medianMs: { type: 'duration', default: 60, doc: 'Median latency.' },
          p99Ms: { type: 'duration', default: 400, doc: '99th percentile (at least the median).' },
        },
      },
      lossProbability: { type: 'probability', default: 0, doc: 'Probability that a message is lost.' },
      duplicateProbability: { type: 'probability', default: 0, doc: 'Probability that a message is delivered twice.' },
      reorderProbability: { type: 'probability', default: 0, doc: 'Probability that a message is held back behind later ones.' },
    },
  },
  faults: {
    type: 'list',
    default: [],
    doc: 'Faults on a schedule (the nemesis).',
    item: {
      type: 'tagged',
      tag: 'kind',
      doc: 'A fault; `kind` says which, and which other fields it takes.',
      common: {
        at: { type: 'duration', required: true, doc: 'When, from the beginning of the run (before duration).' },
      },
      variants: {
        serverCrash: { doc: 'A payment-server shard crashes and restarts from its durable ledger.', fields: { shard, restartAfter } },
        brokerCrash: { doc: 'The MQTT broker crashes and restarts.', fields: { restartAfter } },
        databaseCrash: {
          doc: "mqtt mode, ledgers on PostgreSQL: the database server holding every payment server's ledger crashes (`pg_ctl stop -m immediate`: no checkpoint, recovery from the WAL) and starts again; the servers hold their answers until a commit succeeds. The run needs the power to crash it: `--ledger postgres://… --ledger-pgdata DIR` (its data directory). Refused (exit 2) in virtual mode, whose servers keep no database, and on SQLite ledgers.",
          fields: { restartAfter },
        },
        terminalCrash: { doc: 'Terminals crash; their proxies restart from their persisted state.', fields: { count: count('Number of terminals.'), restartAfter } },
        simMove: { doc: 'SIMs move to new terminals through the strongbox.', fields: { count: count('Number of SIMs.') } },
        clockSkew: {
          doc: "Terminals' clocks jump (around period boundaries).",
          fields: {
            count: count('Number of terminals.'),
            skew: { type: 'duration', signed: true, default: '5m', doc: 'The jump; negative puts the clocks behind.' },
          },
        },
        partition: { doc: 'A shard is cut off from the broker.', fields: { shard, duration: { type: 'duration', positive: true, default: '1m', doc: 'How long the partition lasts.' } } },
        forgedSignature: { doc: 'Messages with forged signatures.', fields: { count: count('Number of messages.') } },
        replayedRemittance: { doc: 'Remittances sent again.', fields: { count: count('Number of messages.') } },
        alteredInFlight: {
          doc: 'The next remittances and settlements on the wire are modified in flight under their original request id (an amount raised by 1) and the honest copy is lost; SD must refuse the copy, change nothing, and the sender\'s resend must still post. In an mqtt run each worker applies its share on its own devices\' radio path (the copy is published in place of the honest one).',
          fields: { count: count('Number of messages.') },
        },
        malformedPayload: { doc: 'Payloads that do not parse.', fields: { count: count('Number of messages.') } },
        wrongTopic: { doc: "A device publishes on another's topic.", fields: { count: count('Number of messages.') } },
      },
    },
  },
  servers: {
    type: 'object',
    doc: 'The payment servers (SD).',
    fields: {
      serviceTime: {
        type: 'duration',
        default: 0,
        doc: 'Virtual mode: the time a shard takes to handle one request; requests wait their turn in a FIFO queue per shard, so load and shard count show in the latency. 0: every request is handled as it arrives. Ignored when `calibration` is given. `payfleet capacity` refuses 0 without a calibration.',
      },
      calibration: {
        type: 'string',
        defaultDoc: 'none',
        doc: 'Virtual mode: a calibration file written by `payfleet calibrate` (e.g. calibrations/<name>.json; a relative path is looked up from the scenario\'s folder upwards, then from the current directory). Each shard then serves its requests in group-commit batches with the service times measured on the real server, per request kind, drawn from the seeded PRNG. Its crypto must be the scenario\'s.',
      },
    },
  },
  arrival: arrival,
  thresholds: {
    type: 'list',
    default: [],
    doc: 'Pass/fail thresholds (SLOs), each "<figure> <op> <number>[ms|s|m|%]", e.g. "latency.remote.p99 < 800ms", "declined.rate < 1%", "lost == 0"; checked at the end of the run into summary.thresholds (`payfleet run` exits 99 when one fails).',
    item: { type: 'string', doc: 'A threshold: a summary.json path or one of latency.*, lost, duplicated, dropped, declined.rate, approved.rate, dropped.rate, system.rate (declines that were failures of the system: timeouts, busy, refused messages), business.rate (the customers\' own limits: funds, ceilings, PIN), violations; then <, <=, >, >=, == or !=; then a number, with ms/s/m on figures in milliseconds and % on rates.' },
  },
};

/** The whole scenario file. */
export const scenarioSpec: Spec = { type: 'object', doc: 'A payfleet scenario.', fields };
