// Goal: let a benchmark read the peak resident set size of a `payfleet run` child without /usr/bin/time.
// Method: preloaded with `node --import`, it writes one line to stderr as the process exits: the kernel's peak RSS
// (process.resourceUsage().maxRSS, KiB) and V8's heap limit of this process, so the bench can show the limit the run
// really had (no NODE_OPTIONS: Node's default).
import { writeSync } from 'node:fs';
import { getHeapStatistics } from 'node:v8';

process.on('exit', () => {
  const line = { maxRssKiB: process.resourceUsage().maxRSS, heapLimitBytes: getHeapStatistics().heap_size_limit };
  writeSync(2, `\nPAYFLEET_RUSAGE ${JSON.stringify(line)}\n`);
});
