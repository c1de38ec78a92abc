// Goal: the asynchronous half of the synchronous PostgreSQL connection of postgresConnection.ts: a worker thread
// that owns one postgres.js connection and answers one request at a time while the main thread waits.
// Method: plain JavaScript (a worker thread is started without the TypeScript loader, so this file must run on bare
// Node under vitest, tsx and the CLI alike). Each request comes on the MessagePort, is run, and its outcome is posted
// back on the port before the shared flag is raised and notified: the main thread, blocked in Atomics.wait on that
// flag, then takes the message with receiveMessageOnPort. A request that fails because the server is unreachable
// (stopped, crashed, restarting) is tried again, with a growing pause, until its deadline: a read is safe to
// repeat, and so is a commit script, because it only upserts rows to the values the single writer computed, so
// running it again after a commit whose outcome was lost leaves the same rows.

import { workerData } from 'node:worker_threads';
import postgres from 'postgres';

const { url, port, flag, readonly, settings } = workerData;
const signal = new Int32Array(flag);

const sql = postgres(url, {
  max: 1,
  idle_timeout: 0,
  connect_timeout: 5,
  onnotice: () => undefined,
  // Amounts are bigint columns; they are safe integers (money.ts checks), so JavaScript numbers.
  types: { bigint: { to: 20, from: [20], serialize: (n) => String(n), parse: (s) => Number(s) } },
  connection: {
    application_name: 'payfleet-ledger',
    ...settings,
    // The commit script quotes its literals by doubling quotes, which is exact only with this on.
    standard_conforming_strings: 'on',
    ...(readonly ? { default_transaction_read_only: 'on' } : {}),
  },
});

/** Errors of reaching the server, as opposed to errors of the SQL: these are worth trying again. */
function isUnreachable(error) {
  const code = String(error?.code ?? '');
  return (
    ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOENT', 'CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED', 'CONNECT_TIMEOUT'].includes(code) ||
    code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03'
  );
}

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function perform(request) {
  switch (request.op) {
    case 'query':
      // A statement made once per run (a point read) is prepared; a one-off (a bulk prefetch) is not, so the
      // server keeps no plan per distinct text.
      return await sql.unsafe(request.text, request.params, { prepare: request.prepare !== false }).values();
    case 'script':
      await sql.unsafe(request.text);
      return [];
    case 'close':
      await sql.end({ timeout: 2 });
      return [];
    default:
      throw new Error(`unknown request ${request.op}`);
  }
}

async function answer(request) {
  const deadline = Date.now() + (request.deadlineMs ?? 0);
  let waitMs = 20;
  let attempts = 0;
  for (;;) {
    attempts++;
    try {
      return { ok: true, rows: await perform(request), attempts };
    } catch (error) {
      if (request.op !== 'close' && isUnreachable(error) && Date.now() + waitMs < deadline) {
        await pause(waitMs);
        waitMs = Math.min(waitMs * 2, 500);
        continue;
      }
      return { ok: false, attempts, error: { message: String(error?.message ?? error), code: String(error?.code ?? ''), unreachable: isUnreachable(error) } };
    }
  }
}

port.on('message', async (request) => {
  const outcome = await answer(request);
  // The answer names its request, and the flag says which request was answered last (postgresConnection.ts).
  port.postMessage({ ...outcome, id: request.id });
  Atomics.store(signal, 0, request.id);
  Atomics.notify(signal, 0);
  if (request.op === 'close') port.close();
});
