// Real training runs on the live page, in a real browser (Debian's chromium, driven by
// playwright-core) against the real vapord running a real trainer process.
// Usage: node real_jobs_test.mjs <vapord> <toy_trainer.py> <screenshot-dir>
//
// The page opens on the overview: the trainer's loss and a simulated job's on one chart. A click
// on the trainer's curve opens its card, where val_loss is drawn with the loss, lr (reported
// every fifth step) has a small chart of its own, and the tail of the trainer's log follows its
// output until it exits.

import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Vapord, freePort, openBrowser, runBrowserTest, tap } from './support.mjs';

const [vapordBinary, trainer, screenshotDir] = process.argv.slice(2);
if (!vapordBinary || !trainer || !screenshotDir) {
  console.error('usage: node real_jobs_test.mjs <vapord> <toy_trainer.py> <screenshot-dir>');
  process.exit(2);
}

const TRAINER_STEPS = 300;
const QUEUE = `jobs:
  - name: trainer
    kind: command
    command: [/usr/bin/python3, "${trainer}", "${TRAINER_STEPS}", --interval, "0.03"]
    epochs: 3
    steps_per_epoch: 100
  - name: simulated
    epochs: 4
    steps_per_epoch: 100
    step_interval: 40ms
`;

const report = tap();
const { ok } = report;

async function main() {
  mkdirSync(screenshotDir, { recursive: true });
  rmSync(path.join(screenshotDir, 'real-failure.png'), { force: true });
  const daemon = new Vapord(vapordBinary, await freePort(), QUEUE);
  const browser = await openBrowser(screenshotDir);
  const { page, shoot } = browser;
  await runBrowserTest({ daemon, browser, report, failureShot: 'real-failure.png' }, async () => {
      await daemon.start();
      await page.goto(`${daemon.url}/`);
      await page.waitForSelector('#connection.live');
      const ids = Object.fromEntries((await daemon.jobs()).map((job) => [job.name, job.id]));

      // The overview: both runs on one chart, each growing.
      await page.waitForFunction(([a, b]) => {
        const shown = window.vapor.overview();
        return shown.ids.includes(a) && shown.ids.includes(b) &&
          shown.points[a] >= 20 && shown.points[b] >= 20;
      }, [ids.trainer, ids.simulated]);
      const overview = await page.evaluate(() => window.vapor.overview());
      assert.deepEqual(overview.labels, ['trainer', 'simulated']);
      ok(`the overview draws every running job's loss (${JSON.stringify(overview.points)} points)`);
      await shoot('real-01-overview.png');

      // A click on the trainer's curve opens its card.
      const at = await page.evaluate((id) => window.vapor.overviewCurvePosition(id), ids.trainer);
      assert.ok(at, 'the trainer has a curve on the overview');
      await page.mouse.move(at.x - 30, at.y);
      await page.mouse.move(at.x, at.y, { steps: 5 });
      await page.mouse.click(at.x, at.y);
      const card = page.locator(`.chart-panel[data-job-id="${ids.trainer}"]`);
      await card.waitFor();
      assert.equal(await page.locator('.chart-panel').count(), 1, 'only the clicked job opened');
      ok('clicking a curve on the overview opens that job\'s card');

      // Its named scalars: val_loss with the loss, lr in a small chart of its own.
      await page.waitForFunction((id) => {
        const scalars = window.vapor.scalars(id);
        return scalars && scalars.small.lr >= 5;
      }, ids.trainer);
      const scalars = await page.evaluate((id) => window.vapor.scalars(id), ids.trainer);
      assert.deepEqual(scalars.withLoss, ['val_loss']);
      assert.deepEqual(scalars.mainSeries, ['loss (raw)', 'loss', 'accuracy', 'val_loss']);
      assert.deepEqual(Object.keys(scalars.small), ['lr']);
      await card.locator('.scalar-chart[data-scalar="lr"] canvas').waitFor();
      ok(`val_loss is drawn with the loss; lr has its own chart (${scalars.small.lr} points)`);

      // The log tail follows the trainer's output.
      await card.locator('.log-text', { hasText: `VAPOR_JOB_ID=${ids.trainer}` }).waitFor();
      ok('the card shows the tail of the trainer\'s log');
      await shoot('real-02-card.png');

      await page.waitForSelector(`#jobs tr[data-job-id="${ids.trainer}"][data-state="complete"]`,
                                 { timeout: 60000 });
      await card.locator('.log-text', { hasText: 'vapord: the process exited with code 0' })
        .waitFor();
      const points = await page.evaluate((id) => window.vapor.points(id), ids.trainer);
      assert.deepEqual(points.steps, Array.from({ length: TRAINER_STEPS }, (_, i) => i + 1));
      ok('the trainer completes: every step on its card, its exit in the log tail');
      await shoot('real-03-complete.png');
  });
}

await main();
