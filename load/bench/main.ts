// Goal: `npm run bench` — the simulator's speed and footprint, measured in one run on this machine against a
// raw baseline measured in the same run: bare XState actors driven by the same scheduler.
// Method: (1) baseline: N bare actors of a small machine (an assign and an `after` timer), each event delivered
// by the virtual scheduler, events per wall second; (2) the simulator on `city-day` at a fleet size that fits the
// time budget: scheduler events per wall second, wall time, RSS; (3) heap and RSS per terminal from building a
// fleet; (4) `city-day` itself: with `--full`, the whole 100,000-terminal day (minutes of wall time); otherwise the
// figure printed is the scaled run, labelled as such. Targets are printed beside figures, never asserted.
// Wall time is read here and only here: benchmarks measure, runs never depend on it.

import { assign, createActor, setup } from 'xstate';
import { Scheduler } from '../../sim/core/scheduler.ts';
import { Simulator } from '../../sim/run/simulator.ts';
import type { HibernationOptions } from '../../sim/core/hibernation.ts';
import { loadScenario, withOverrides } from '../../sim/scenario/load.ts';
import { defineFlags } from '../../sim/cli/args.ts';
import { parseScriptArgs } from '../../sim/cli/command.ts';

const FLAGS = defineFlags({
  full: { kind: 'boolean', help: 'the whole 100,000-terminal day (minutes of wall time) instead of a scaled one' },
  help: { kind: 'boolean', short: 'h', help: 'show this help' },
});

const { flags } = parseScriptArgs('bench', 'npm run bench -- [--full]', "The simulator's speed and footprint against bare XState actors (BENCH_TERMINALS sets the scaled fleet).", FLAGS, process.argv.slice(2));
const FULL = flags.full === true;
const SCALED_TERMINALS = Number(process.env.BENCH_TERMINALS ?? 10_000);

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
}

/** Bare XState: each scheduler event sends one event to one actor, which assigns and re-arms a timer. */
function baselineEventsPerSecond(actorCount: number, eventsPerActor: number): number {
  const scheduler = new Scheduler();
  const machine = setup({ types: { context: {} as { n: number }, events: {} as { type: 'tick' } } }).createMachine({
    context: { n: 0 },
    initial: 'idle',
    states: {
      idle: { on: { tick: { target: 'busy', actions: assign({ n: ({ context }) => context.n + 1 }) } } },
      busy: { after: { 1000: 'idle' }, on: { tick: { actions: assign({ n: ({ context }) => context.n + 1 }) } } },
    },
  });
  const actors = Array.from({ length: actorCount }, (_, i) => createActor(machine, { id: `a${i}`, clock: scheduler.clock }).start());
  let sent = 0;
  for (let round = 0; round < eventsPerActor; round++) {
    actors.forEach((actor, i) => scheduler.at(round * 700 + (i % 700), () => {
      actor.send({ type: 'tick' });
      sent++;
    }));
  }
  const started = performance.now();
  scheduler.runUntil(eventsPerActor * 700 + 5_000);
  const seconds = (performance.now() - started) / 1000;
  return scheduler.eventsRun / seconds;
}

function simulatorRun(terminals: number) {
  const scenario = withOverrides(loadScenario('scenarios/city-day.yaml'), { terminals });
  gc();
  const rssBefore = process.memoryUsage().rss;
  const started = performance.now();
  // Terminals awake (not hibernating), sampled every simulated minute.
  const awake = { sum: 0, samples: 0, peak: 0 };
  const simulator: Simulator = new Simulator(scenario, {
    onProgress: () => {
      const count = simulator.fleet.terminalsAwake;
      awake.sum += count;
      awake.samples++;
      awake.peak = Math.max(awake.peak, count);
    },
  });
  simulator.run();
  const wallMs = performance.now() - started;
  return { simulator, wallMs, awake: { mean: awake.sum / Math.max(1, awake.samples), peak: awake.peak }, eventsPerSecond: simulator.scheduler.eventsRun / (wallMs / 1000), rssMiB: (process.memoryUsage().rss - rssBefore) / 1024 / 1024, peakRss: process.memoryUsage().rss };
}

/**
 * Live heap per terminal of a built fleet: all awake (`hibernate` false), or every idle one asleep (no linger: the
 * up to 2,000 lingering awake terminals of a run's start would weigh on a fleet this small as they do not on 100,000).
 */
function footprintPerTerminal(terminals: number, hibernate: false | HibernationOptions): { heapBytes: number } {
  const scenario = withOverrides(loadScenario('scenarios/city-day.yaml'), { terminals });
  gc();
  const before = process.memoryUsage();
  const simulator = new Simulator(scenario, { hibernate });
  (simulator as unknown as { build(): void }).build();
  gc();
  const after = process.memoryUsage();
  void simulator;
  return { heapBytes: (after.heapUsed - before.heapUsed) / terminals };
}

function main(): void {
  console.log(`payfleet bench — node ${process.version}, ${FULL ? 'full city-day' : `city-day scaled to ${SCALED_TERMINALS} terminals (--full for 100,000)`}`);
  const baseline = baselineEventsPerSecond(10_000, 50);
  console.log(`baseline   bare XState actors (10,000 actors, 500,000 scheduled events): ${baseline.toFixed(0)} events/s`);

  const awake = footprintPerTerminal(5_000, false);
  gc();
  const asleep = footprintPerTerminal(5_000, { lingerMs: 0, maxLingering: 0 });
  console.log(`footprint  fleet of 5,000 terminals built: ${(asleep.heapBytes / 1024).toFixed(1)} KiB of live heap per terminal, idle ones hibernating (target: 100,000 terminals in ≤ 2 GiB RSS ⇒ ≤ 21 KiB each, all included)`);
  console.log(`           every terminal awake (--no-hibernate): ${(awake.heapBytes / 1024).toFixed(1)} KiB per terminal`);
  gc();

  const terminals = FULL ? 100_000 : SCALED_TERMINALS;
  const run = simulatorRun(terminals);
  const s = run.simulator;
  const ratio = run.eventsPerSecond / baseline;
  console.log(`simulator  city-day, ${terminals} terminals × 24 h: ${(run.wallMs / 1000).toFixed(1)} s wall, ${s.scheduler.eventsRun} scheduler events, ${run.eventsPerSecond.toFixed(0)} events/s`);
  console.log(`           ratio to the bare-XState baseline: ${(ratio * 100).toFixed(0)}% (target ≥ 70%); verdict ${s.book.ok ? 'OK' : 'VIOLATION'}; RSS at the end ${mib(run.peakRss)} (${((run.peakRss / terminals) / 1024).toFixed(1)} KiB per terminal, whole process)`);
  console.log(`           terminals awake (not hibernating), sampled each simulated minute: mean ${run.awake.mean.toFixed(0)}, peak ${run.awake.peak} of ${terminals}; ${s.fleet.hibernation?.wakes ?? 0} wakes`);
  if (!FULL) {
    const perTerminalMs = run.wallMs / terminals;
    console.log(`           wall per terminal-day ${perTerminalMs.toFixed(2)} ms: the full 100,000-terminal day would take ≈ ${((perTerminalMs * 100_000) / 1000).toFixed(0)} s if it scaled linearly (an extrapolation — run with --full to measure; target ≤ 100 s)`);
  }
}

main();
