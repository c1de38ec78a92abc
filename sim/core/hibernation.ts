// Goal: idle terminals hibernate. A terminal busy a few minutes of a simulated day need not keep its four XState
// actors (terminal, proxy, link, near link) alive all day: while it has nothing in hand it keeps only a compact
// record — the two machines' contexts as plain data, the proxy's state (online or offline), and the one timer it
// may have armed, left in place in the scheduler — and its actors are made again from that record when something
// reaches it. A run with hibernation gives the same run, to the event, as one where every actor stays alive.
// Method: a terminal is idle when its proxy has no order in hand, none queued, no remote payment waiting, and at
// most one armed timer (the outbox's). `captureIdle` reads that from the live actors and returns the record;
// `restoredSnapshot` turns the record into the snapshot `createActor(logic, { snapshot })` restores, which runs no
// entry action and starts no timer. Timers: XState does not persist delayed events (statelyai/xstate#5331), so the
// scheduler keeps them — `TerminalClock` knows which scheduler timers a live terminal's actors armed; hibernating,
// the fleet rebinds the armed timer to a stand-in that wakes the terminal (its time and its place among timers of
// the same instant kept, `Scheduler.rebind`); waking, XState re-arms it through the clock, which adopts the same
// scheduler timer instead of making a new one, so a later `cancel` from the proxy finds it. The network endpoint
// stays attached and is handed over in the same way (`SimNetwork.handOver`, `ResumedLinkInput` in link.ts).

import { createActor, type Actor, type AnyActorLogic, type AnyActorScope, type AnyStateMachine, type EventObject } from 'xstate';
import type { Clock, Scheduler, TimerHandle } from './scheduler.ts';
import type { SimNetwork } from './network.ts';
import type { TerminalContext, terminalMachine } from '../../machines/terminal.ts';
import type { ProxyContext, ProxyTimerEvent } from '../../machines/proxy.ts';
import type { NearLinkEvent } from '../../machines/link.ts';
import type { ResumedLinkInput } from './link.ts';

type TerminalActor = Actor<typeof terminalMachine>;

/** The XState clock of one live terminal: the scheduler's, remembering which of its timers are armed. */
export class TerminalClock implements Clock {
  /** The scheduler timers this terminal's actors armed and that neither ran nor were cancelled, oldest first. */
  readonly armed = new Set<TimerHandle>();
  /** A timer kept while the terminal slept: the next `setTimeout` (XState re-arming it) takes it back. */
  private adopting: TimerHandle | undefined;

  constructor(private readonly scheduler: Scheduler) {}

  setTimeout(fn: (...args: unknown[]) => void, timeoutMs: number): TimerHandle {
    const adopted = this.adopting;
    let handle: TimerHandle;
    const run = (): void => {
      this.armed.delete(handle);
      fn();
    };
    if (adopted !== undefined) {
      this.adopting = undefined;
      if (!this.scheduler.rebind(adopted, run)) throw new Error(`hibernation: the timer kept while the terminal slept is gone (handle ${adopted})`);
      handle = adopted;
    } else {
      handle = this.scheduler.schedule(timeoutMs, run);
    }
    this.armed.add(handle);
    return handle;
  }

  clearTimeout(handle: unknown): void {
    // A timer handed over to a sleeping terminal's stand-in is no longer this clock's: stopping the actors
    // (which cancels all their timers) leaves it alone.
    if (typeof handle === 'number' && this.armed.delete(handle)) this.scheduler.cancel(handle);
  }

  /** The next timer armed is `handle`, kept in the scheduler while the terminal slept. */
  adopt(handle: TimerHandle): void {
    this.adopting = handle;
  }

  /** Stops tracking `handle`: it now belongs to a stand-in. */
  release(handle: TimerHandle): void {
    this.armed.delete(handle);
  }
}

/** The proxy's one armed timer while its terminal sleeps: the scheduler timer, and the XState id and event it fires. */
export interface SleepingTimer {
  handle: TimerHandle;
  id: string;
  event: EventObject;
}

/** What a hibernating terminal keeps: its machines' contexts (the very objects, not copies) and its timer. */
export interface HibernatedTerminal {
  terminalContext: TerminalContext;
  proxyValue: 'online' | 'offline';
  proxyContext: ProxyContext;
  timer: SleepingTimer | undefined;
}

/**
 * The compact record of a live terminal that is idle, or undefined when it is not (an order in hand or queued, a
 * remote payment waiting, a refusing terminal, or timers this module does not know how to keep). Call it only
 * between scheduler events, when no actor is in the middle of its work.
 */
export function captureIdle(actor: TerminalActor, clock: TerminalClock): HibernatedTerminal | undefined {
  const snapshot = actor.getSnapshot();
  if (snapshot.status !== 'active' || snapshot.value !== 'running') return undefined;
  const proxy = snapshot.children.proxy;
  if (!proxy) return undefined;
  const proxySnapshot = proxy.getSnapshot();
  const c = proxySnapshot.context;
  if (proxySnapshot.status !== 'active' || c.current !== undefined || c.queue.length > 0 || c.remote !== undefined) return undefined;
  // `online` and `linkUp` go together (proxy.ts); a restored link starts from `linkUp`.
  const proxyValue = proxySnapshot.value;
  if (proxyValue !== (c.linkUp ? 'online' : 'offline')) return undefined;
  const scheduled = Object.values(actor.system.getSnapshot()._scheduledEvents);
  // XState's scheduled events and the clock's armed timers are both kept in the order they were armed; one
  // timer at most is kept (an idle proxy arms only the outbox's), so pairing them cannot go wrong.
  if (scheduled.length > 1 || scheduled.length !== clock.armed.size) return undefined;
  let timer: SleepingTimer | undefined;
  const armed = scheduled[0];
  if (armed) {
    if (armed.source !== proxy || armed.target !== proxy) return undefined;
    timer = { handle: clock.armed.values().next().value!, id: armed.id, event: armed.event };
  }
  return { terminalContext: snapshot.context, proxyValue, proxyContext: c, timer };
}

/**
 * `machine` with a restore that skips XState's context revival. `StateMachine.restoreSnapshot` walks the whole
 * context (journal, keys, policy, every byte array) looking for persisted actor references, which cost about as much
 * as the rest of a wake (profiled on city-day, 2,000 terminals); a terminal's and a proxy's contexts hold none.
 * The rest is what XState's restore does for machines without history states: the children made again from their
 * snapshots, the state nodes resolved from the value (`resolveState`, public API). Every other method is the
 * machine's own, reached through the prototype, so a fresh start behaves as before.
 */
export function withPlainRestore<T extends AnyStateMachine>(machine: T): T {
  const restoreSnapshot = (snapshot: RestoredSnapshot, scope: AnyActorScope) => {
    const children: Record<string, unknown> = {};
    for (const id in snapshot.children) {
      const child = snapshot.children[id]!;
      const logic = (machine.implementations.actors as Record<string, AnyActorLogic>)[child.src];
      if (!logic) throw new Error(`hibernation: ${machine.id} has no actor '${child.src}' to restore`);
      children[id] = createActor(logic, { id, parent: scope.self, snapshot: child.snapshot, src: child.src } as never);
    }
    const restored = machine.resolveState({ value: snapshot.value, context: snapshot.context, status: 'active', historyValue: {} } as never);
    (restored as { children: unknown }).children = children;
    return restored;
  };
  return Object.create(machine, { restoreSnapshot: { value: restoreSnapshot } }) as T;
}

interface RestoredSnapshot {
  value: string;
  context: unknown;
  children: Record<string, { src: string; snapshot: unknown }>;
}

/** A child's snapshot as XState persists it: status, output, error and, for callback logic, the input. */
function childSnapshot(input: unknown) {
  return { status: 'active' as const, output: undefined, error: undefined, input };
}

/** The persisted snapshot of the terminal's machine, from its record, for `createActor(logic, { snapshot })`. */
export function restoredSnapshot(record: HibernatedTerminal) {
  const c = record.proxyContext;
  const endpointId = c.input.proxyId;
  const link: ResumedLinkInput = { endpointId, role: 'terminal', inCoverage: c.input.inCoverage, resumeUp: c.linkUp };
  const proxy = {
    status: 'active' as const,
    value: record.proxyValue,
    context: c,
    historyValue: {},
    output: undefined,
    error: undefined,
    children: {
      link: { src: 'link', snapshot: childSnapshot(link) },
      nearLink: { src: 'nearLink', snapshot: childSnapshot({ endpointId }) },
    },
  };
  return {
    status: 'active' as const,
    value: 'running',
    context: record.terminalContext,
    historyValue: {},
    output: undefined,
    error: undefined,
    children: { proxy: { src: 'proxy', snapshot: proxy } },
  };
}

/** What hibernation reads and writes of a fleet's terminal slot (fleet.ts's `TerminalSlot` has it all). */
export interface HibernatingSlot {
  plan: { terminalId: string };
  actor: TerminalActor | undefined;
  clock?: TerminalClock;
  hibernated?: HibernatedTerminal;
  /** Simulated time of the last event its proxy handled, and whether it waits in the lingering queue. */
  activeAtMs?: number;
  lingering?: boolean;
}

export interface HibernationOptions {
  /**
   * An idle terminal stays awake this long (simulated ms) after the last event its proxy handled before it
   * sleeps, so that the answer to what it just sent (a sync, a remittance) or its next step finds it awake: each
   * wake makes four actors again. 0: it sleeps right after the event that left it idle (the most wakes).
   */
  lingerMs: number;
  /** At most this many idle terminals linger awake; beyond, the one idle longest sleeps at once (a start-up, an outage's end). */
  maxLingering: number;
}

/**
 * Measured on city-day with 2,000 terminals: without linger 51,143 wakes (25.6 per terminal and day); with a
 * minute's, 23,594 (11.8), with on average 24.7 terminals awake (1.2 %, sampled each simulated minute); five
 * minutes' linger saved few more wakes (20,045) for 118.5 awake. The cap bounds the awake idle terminals of a
 * start-up or an outage's end to about 20 MiB of actors.
 */
export const DEFAULT_HIBERNATION: HibernationOptions = { lingerMs: 60_000, maxLingering: 2_000 };

/** Who receives what reaches a near-link endpoint; a sleeping terminal's stand-in wakes it. */
export interface NearEndpoint {
  send(event: NearLinkEvent): void;
}

/** The fleet's side of hibernation. */
export interface HibernationHost<Slot extends HibernatingSlot> {
  /** Makes and starts the terminal's actors from `snapshot` on `clock`, with their observers, as the slot's. */
  resume(slot: Slot, snapshot: ReturnType<typeof restoredSnapshot>, clock: TerminalClock): TerminalActor;
  /** The near-link endpoints by id. */
  readonly nearEndpoints: Map<string, NearEndpoint>;
}

/**
 * Puts idle terminals to sleep and wakes them. `settle` runs after every scheduler event (and after a terminal's
 * start): each awake terminal whose proxy handled an event since is hibernated if it is idle now.
 */
export class Hibernation<Slot extends HibernatingSlot> {
  /** Awake terminals whose proxy handled an event since the last settle: they may be idle now. */
  private readonly unsettled = new Set<Slot>();
  /** Awake terminals that may be idle, oldest first, each with the time it joined: FIFO from `head`. */
  private lingeringSlots: Slot[] = [];
  private lingeringSinceMs: number[] = [];
  private head = 0;
  /** How many times a terminal was woken, and how many sleep now. */
  wakes = 0;
  asleep = 0;

  constructor(
    private readonly scheduler: Scheduler,
    private readonly network: SimNetwork,
    private readonly host: HibernationHost<Slot>,
    private readonly options: HibernationOptions = DEFAULT_HIBERNATION,
  ) {
    scheduler.afterEvent = () => this.settle();
  }

  newClock(): TerminalClock {
    return new TerminalClock(this.scheduler);
  }

  /** Watches a started (or woken) terminal: every event its proxy handles may leave it idle. */
  watch(slot: Slot, actor: TerminalActor): void {
    actor.getSnapshot().children.proxy?.subscribe(() => this.unsettled.add(slot));
    this.unsettled.add(slot);
  }

  /** The terminal is down (a crash): nothing to settle. */
  forget(slot: Slot): void {
    this.unsettled.delete(slot);
  }

  /**
   * Hibernates the terminals that have been idle for the linger time, and the longest idle beyond the lingering
   * cap. Never from inside an actor (one may be mid-work). When a terminal sleeps changes nothing of the run.
   */
  settle(): void {
    const { lingerMs, maxLingering } = this.options;
    const now = this.scheduler.now();
    if (this.unsettled.size > 0) {
      for (const slot of this.unsettled) {
        if (lingerMs <= 0) {
          this.hibernate(slot);
          continue;
        }
        slot.activeAtMs = now;
        if (slot.lingering) continue;
        slot.lingering = true;
        this.lingeringSlots.push(slot);
        this.lingeringSinceMs.push(now);
      }
      this.unsettled.clear();
    }
    while (this.head < this.lingeringSlots.length) {
      const overCap = this.lingeringSlots.length - this.head > maxLingering;
      if (!overCap && this.lingeringSinceMs[this.head]! + lingerMs > now) break;
      const slot = this.lingeringSlots[this.head]!;
      this.head++;
      const activeAtMs = slot.activeAtMs ?? now;
      if (!overCap && activeAtMs + lingerMs > now) {
        // Active again since it joined: back in the queue, from its last activity.
        this.lingeringSlots.push(slot);
        this.lingeringSinceMs.push(activeAtMs);
        continue;
      }
      slot.lingering = false;
      // A terminal busy now stays awake; its proxy's next event brings it back here.
      this.hibernate(slot);
    }
    if (this.head > 1024 && this.head * 2 > this.lingeringSlots.length) {
      this.lingeringSlots = this.lingeringSlots.slice(this.head);
      this.lingeringSinceMs = this.lingeringSinceMs.slice(this.head);
      this.head = 0;
    }
  }

  /** Puts an awake terminal to sleep if it is idle: its timer and its endpoint go to stand-ins that wake it. */
  private hibernate(slot: Slot): void {
    const { actor, clock } = slot;
    if (!actor || !clock) return;
    const record = captureIdle(actor, clock);
    if (!record) return;
    const id = slot.plan.terminalId;
    const network = this.network;
    // Handed over before the actors stop, so that stopping the link does not detach the endpoint.
    network.handOver(
      id,
      (message, from) => {
        this.wake(slot);
        network.receiverOf(id)?.(message, from);
      },
      () => this.wake(slot),
    );
    const timer = record.timer;
    if (timer) {
      clock.release(timer.handle);
      this.scheduler.rebind(timer.handle, () => {
        // The timer fires while the terminal sleeps: it is delivered after the wake, not re-armed.
        record.timer = undefined;
        proxyOf(this.wake(slot)).send(timer.event as ProxyTimerEvent);
      });
    }
    actor.stop();
    // The near link's stop removed the endpoint; a POS's order reaching it now wakes the terminal.
    this.host.nearEndpoints.set(id, { send: (event) => proxyOf(this.wake(slot)).send(event) });
    slot.actor = undefined;
    slot.clock = undefined;
    slot.hibernated = record;
    this.asleep++;
  }

  /** Makes a hibernating terminal's actors again from its record; they take back its endpoint and its timer. */
  wake(slot: Slot): TerminalActor {
    const record = slot.hibernated;
    if (!record) throw new Error(`hibernation: ${slot.plan.terminalId} is not hibernating`);
    slot.hibernated = undefined;
    this.wakes++;
    this.asleep--;
    const clock = this.newClock();
    const actor = this.host.resume(slot, restoredSnapshot(record), clock);
    const timer = record.timer;
    if (timer) {
      // Armed after the start (a root actor's start re-arms the timers of its system): the clock adopts the kept one.
      const proxy = proxyOf(actor);
      clock.adopt(timer.handle);
      actor.system.scheduler.schedule(proxy, proxy, timer.event, 0, timer.id);
    }
    // Only now may the link report a change of up or down that came while the terminal slept (and woke it).
    this.network.reportStatus(slot.plan.terminalId);
    return actor;
  }
}

function proxyOf(actor: TerminalActor) {
  const proxy = actor.getSnapshot().children.proxy;
  if (!proxy) throw new Error(`hibernation: ${actor.id} woke without its proxy`);
  return proxy;
}
