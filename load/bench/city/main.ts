// Goal: `npm run bench:city` (see cityBench.ts for what it measures).
// Method: `npm run bench:city` runs this file and nothing imports it, so main runs unconditionally: a guard that
// compares process.argv[1] with import.meta.url fails wherever the path goes through a symlink (Node resolves one,
// not the other), and the bench then printed nothing and exited 0.
import { main } from './cityBench.ts';

process.exitCode = await main(process.argv.slice(2));
