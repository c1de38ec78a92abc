// Goal: the bench plumbing of an mqtt run — what a benchmark driver (load/bench/mqtt) may do with the running
// harness: see what each worker reported once connected, know every process id, and send one command to every
// worker and await all their replies.
// Method: each command gets a fresh id; the replies are collected by worker index as the workers answer
// (`onReply`, called by the coordinator for every `bench` message) and the promise resolves once all have.

import type { BenchCommand, BenchReply, FromWorker, ToWorker } from './protocol.ts';

type CommandOf<K extends BenchCommand['kind']> = Omit<Extract<BenchCommand, { kind: K }>, 'id'>;

/** What a benchmark driver may do with a running harness. */
export interface BenchControl {
  /** What each worker reported once connected, in worker order. */
  readonly ready: ReadonlyArray<Extract<FromWorker, { type: 'ready' }>>;
  readonly pids: { broker: number | undefined; servers: number[]; workers: number[] };
  /**
   * Sends one command to every worker (the same, or each its own from a function of the worker's index);
   * resolves with their replies, in worker order.
   */
  all<K extends BenchCommand['kind']>(command: (CommandOf<K> & { kind: K }) | ((workerIndex: number) => CommandOf<K> & { kind: K })): Promise<Array<Extract<BenchReply, { kind: K }>>>;
}

export class BenchChannel {
  private commandSeq = 0;
  private readonly waiters = new Map<number, { replies: BenchReply[]; left: number; resolve: (replies: BenchReply[]) => void }>();

  /**
   * The control a driver gets. `send` reaches one worker; `race` ends the wait early when the run fails.
   */
  control(parts: {
    ready: BenchControl['ready'];
    pids: BenchControl['pids'];
    workerCount: number;
    send: (workerIndex: number, message: ToWorker) => void;
    race: <T>(work: Promise<T>) => Promise<T>;
  }): BenchControl {
    return {
      ready: parts.ready,
      pids: parts.pids,
      all: ((command: Omit<BenchCommand, 'id'> | ((workerIndex: number) => Omit<BenchCommand, 'id'>)) => {
        const id = ++this.commandSeq;
        const replies = new Promise<BenchReply[]>((resolveReplies) => this.waiters.set(id, { replies: [], left: parts.workerCount, resolve: resolveReplies }));
        for (let index = 0; index < parts.workerCount; index++) {
          const own = typeof command === 'function' ? command(index) : command;
          parts.send(index, { type: 'bench', command: { ...own, id } as BenchCommand });
        }
        return parts.race(replies);
      }) as BenchControl['all'],
    };
  }

  onReply(workerIndex: number, reply: BenchReply): void {
    const waiter = this.waiters.get(reply.id);
    if (!waiter) return;
    waiter.replies[workerIndex] = reply;
    if (--waiter.left > 0) return;
    this.waiters.delete(reply.id);
    waiter.resolve(waiter.replies);
  }
}
