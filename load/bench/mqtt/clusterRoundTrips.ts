// Goal: what a broker pair clustered through Redis (`payfleet broker --cluster`) carries on this machine, beside a
// standalone broker, and what each round trip costs Redis: the figures docs/sizing.md scales to a national fleet.
// Method: redis-server (Debian package) on a free port in a temp dir; a standalone `payfleet broker` and two
// `payfleet broker --cluster` processes on it. The bare client pair of bareRoundTrips.ts (a terminal requester, a
// server responder, real-sized payloads checked by the broker) runs closed loops of 1, 64 and 256 in flight:
// on the standalone broker, and across the cluster (requester on A, responder on B). Each configuration runs
// `--rounds` times, interleaved, for `--seconds` each, since the machine is shared. Redis's own PUBLISH count
// (INFO commandstats) before and after the cluster loops gives the Redis messages per MQTT round trip.
// Run: node --import tsx load/bench/mqtt/clusterRoundTrips.ts [--seconds 5] [--rounds 2]

import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newSecret } from '../../../broker/credentials.ts';
import { startRedis } from '../../../broker/redisServer.ts';
import { ManagedProcess } from '../../../sim/mqtt/processes.ts';
import { bareRoundTrips, type RoundTripFigures } from './bareRoundTrips.ts';

/** Calls of PUBLISH Redis has served, from INFO commandstats. */
function redisPublishCalls(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let reply = '';
    socket.once('connect', () => socket.write('INFO commandstats\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      const size = /^\$(\d+)\r\n/.exec(reply);
      if (size && reply.length >= size[0].length + Number(size[1])) {
        socket.destroy();
        resolve(Number(/cmdstat_publish:calls=(\d+)/.exec(reply)?.[1] ?? 0));
      }
    });
    socket.once('error', reject);
  });
}

function flag(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
}

const seconds = flag('seconds', 5);
const rounds = flag('rounds', 2);
const secret = newSecret();
const dir = mkdtempSync(join(tmpdir(), 'payfleet-cluster-bench-'));
const redis = await startRedis(join(dir, 'redis'));
const brokers: ManagedProcess[] = [];
async function broker(name: string, cluster: boolean): Promise<string> {
  const managed = new ManagedProcess({
    name,
    args: ['broker', '--port', '0', ...(cluster ? ['--cluster', redis.url] : [])],
    env: { ...process.env, PAYFLEET_BROKER_SECRET: secret },
    ready: /listening on (mqtt:\/\/\S+)/,
    logDir: join(dir, 'logs'),
  });
  brokers.push(managed);
  return (await managed.start())[1]!;
}

try {
  const standalone = await broker('standalone', false);
  const a = await broker('cluster-a', true);
  const b = await broker('cluster-b', true);
  const results: Record<string, RoundTripFigures[]> = {};
  let clusterRoundTrips = 0;
  let clusterPublishes = 0;
  for (let round = 0; round < rounds; round++) {
    for (const concurrency of [1, 64, 256]) {
      const alone = await bareRoundTrips(standalone, secret, ['t1'], concurrency, seconds * 1000);
      const before = await redisPublishCalls(redis.port);
      const across = await bareRoundTrips(a, secret, ['t1'], concurrency, seconds * 1000, b);
      clusterPublishes += (await redisPublishCalls(redis.port)) - before;
      clusterRoundTrips += across.roundTrips;
      (results[`standalone ${concurrency}`] ??= []).push(alone);
      (results[`cluster A→B ${concurrency}`] ??= []).push(across);
    }
  }
  for (const [name, runs] of Object.entries(results)) {
    console.log(`${name.padEnd(16)} round trips/s ${runs.map((r) => r.perSecond.toFixed(0)).join(' / ')}  p50 ${runs.map((r) => r.p50Ms.toFixed(1)).join(' / ')} ms  p99 ${runs.map((r) => r.p99Ms.toFixed(1)).join(' / ')} ms`);
  }
  console.log(`Redis PUBLISH per cluster round trip: ${(clusterPublishes / clusterRoundTrips).toFixed(2)} (${clusterPublishes} over ${clusterRoundTrips}, connections and subscriptions included)`);
} finally {
  await Promise.all(brokers.map((b) => b.stop()));
  await redis.close();
  rmSync(dir, { recursive: true, force: true });
}
