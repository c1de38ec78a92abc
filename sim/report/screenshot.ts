// Goal: the picture of a report kept in the docs (docs/img/report-quickstart.png), made the same way every
// time: `npx tsx sim/report/screenshot.ts <run-dir> <out.png>`.
// Method: rebuild the run's report.html, open it in Debian's Chromium at a laptop's width, refuse to take the
// picture if the page logged an error, and save the whole page.

import { pathToFileURL } from 'node:url';
import { launchChromium } from './browser.ts';
import { writeReport } from './write.ts';

export async function screenshotReport(runDir: string, outFile: string, width = 1440): Promise<void> {
  const report = writeReport(runDir);
  const browser = await launchChromium({ width, height: 900 });
  try {
    const page = await browser.context.newPage();
    const problems: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
    page.on('pageerror', (error) => problems.push(error.message));
    await page.goto(pathToFileURL(report).href, { waitUntil: 'load' });
    if (problems.length > 0) throw new Error(`${report}: the page logged errors:\n${problems.join('\n')}`);
    await page.screenshot({ path: outFile, fullPage: true });
  } finally {
    await browser.close();
  }
}

// This file is a script that nothing imports, so it runs unconditionally: a guard comparing process.argv[1] with
// import.meta.url fails wherever the path goes through a symlink (Node resolves one, not the other), and the
// command then did nothing and exited 0.
const [runDir, outFile] = process.argv.slice(2);
if (!runDir || !outFile) {
  console.error('usage: npx tsx sim/report/screenshot.ts <run-dir> <out.png>');
  process.exitCode = 2;
} else {
  await screenshotReport(runDir, outFile);
  console.log(`wrote ${outFile}`);
}
