// The live page in a real browser: Debian's chromium, driven by playwright-core, against the real
// vapord on a fast queue. Usage: node live_page_test.mjs <vapord> <screenshot-dir>
//
// It watches two jobs (one of them hits a NaN loss), sees points arrive and the curve and the
// progress bar grow, gets the failure toasts with their reasons, drops the feed connection and
// then restarts vapord on the same port (checking the steps stay contiguous with no duplicate),
// starts the manual job with the Start button (a wrong token first, which must be asked again),
// and gets the success toasts. Screenshots go to <screenshot-dir>.

import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Vapord, freePort, openBrowser, runBrowserTest, sleep, tap } from './support.mjs';

const [vapordBinary, screenshotDir] = process.argv.slice(2);
if (!vapordBinary || !screenshotDir) {
  console.error('usage: node live_page_test.mjs <vapord> <screenshot-dir>');
  process.exit(2);
}

// One job completes (and runs long enough to live through a reconnect and a restart), one
// crashes, one hits a NaN loss, one waits for the Start button.
const QUEUE = `jobs:
  - name: steady
    model: resnet18
    epochs: 4
    steps_per_epoch: 50
    step_interval: 80ms
  - name: crashes
    model: convnet
    epochs: 2
    steps_per_epoch: 50
    step_interval: 100ms
    faults: {fail_at_step: 50}
  - name: diverges
    model: transformer
    epochs: 1
    steps_per_epoch: 80
    step_interval: 100ms
    faults: {nan_at_step: 40}
  - name: manual
    model: vit
    epochs: 1
    steps_per_epoch: 40
    step_interval: 50ms
    start: manual
`;
const STEADY_STEPS = 200;
const MANUAL_STEPS = 40;

const report = tap();
const { ok } = report;

async function main() {
  mkdirSync(screenshotDir, { recursive: true });
  rmSync(path.join(screenshotDir, 'failure.png'), { force: true });
  const daemon = new Vapord(vapordBinary, await freePort(), QUEUE);
  // The browser first: the jobs start with vapord, and the page must be there to see them fail.
  const browser = await openBrowser(screenshotDir);
  const { page, shoot } = browser;

  await runBrowserTest({ daemon, browser, report, failureShot: 'failure.png' }, async () => {
      await daemon.start();
      const response = await page.goto(`${daemon.url}/`);
      assert.equal(response.status(), 200);
      assert.match(response.headers()['content-security-policy'], /default-src 'self'/);
      await page.waitForSelector('#jobs tbody tr[data-state]');
      await page.waitForFunction(() => document.querySelectorAll('#jobs tbody tr').length === 4);
      await page.waitForSelector('#connection.live');
      const ids = Object.fromEntries((await daemon.jobs()).map((job) => [job.name, job.id]));
      const row = (name) => page.locator(`#jobs tbody tr[data-job-id="${ids[name]}"]`);
      const panel = (name) => page.locator(`.chart-panel[data-job-id="${ids[name]}"]`);
      // Rows are redrawn on the next animation frame: wait for a cell to read exactly `text`.
      const cell = (name, selector, text) => row(name).locator(selector)
        .filter({ hasText: new RegExp(`^${text}$`) }).waitFor();
      ok('the page lists every job from the hello');

      // Watch two jobs at once.
      await row('steady').getByRole('button', { name: 'Watch steady' }).click();
      await row('diverges').getByRole('button', { name: 'Watch diverges' }).click();
      await page.waitForSelector(`.chart-panel[data-job-id="${ids.steady}"] canvas`);
      await page.waitForSelector(`.chart-panel[data-job-id="${ids.diverges}"] canvas`);
      assert.equal(await row('steady').locator('button.watch').getAttribute('aria-pressed'),
                   'true');

      const rendered = (name) => panel(name).evaluate((element) => Number(element.dataset.points));
      const progress = (name) => row(name).locator('progress').evaluate((bar) => bar.value);
      await page.waitForFunction((id) => Number(document.querySelector(
        `.chart-panel[data-job-id="${id}"]`).dataset.points) >= 5, ids.steady);
      const pointsBefore = await rendered('steady');
      const progressBefore = await progress('steady');
      await sleep(1500);
      const pointsAfter = await rendered('steady');
      const progressAfter = await progress('steady');
      assert.ok(pointsAfter >= pointsBefore + 8,
                `the curve grew: ${pointsBefore} -> ${pointsAfter}`);
      // The attribute says what the chart draws (read both at once: points keep coming).
      const [attribute, drawn] = await page.evaluate((id) => [
        Number(document.querySelector(`.chart-panel[data-job-id="${id}"]`).dataset.points),
        window.vapor.renderedPoints(id)], ids.steady);
      assert.equal(attribute, drawn);
      ok(`points arrive and the curve grows (${pointsBefore} -> ${pointsAfter} points drawn)`);
      assert.ok(progressAfter > progressBefore, `progress ${progressBefore} -> ${progressAfter}`);
      await cell('steady', '.badge', 'running');
      ok(`the progress bar advances (${progressBefore.toFixed(3)} -> ${progressAfter.toFixed(3)})`);

      // Smoothing and log scale are per chart and keep the points.
      await panel('steady').locator('input.smoothing').fill('0.9');
      assert.equal(await panel('steady').locator('output').textContent(), '0.90');
      await panel('steady').getByLabel('Log scale').check();
      await page.waitForSelector(`.chart-panel[data-job-id="${ids.steady}"] canvas`);
      assert.ok(await rendered('steady') >= pointsAfter);
      ok('smoothing slider and log-scale toggle redraw the chart');
      await shoot('01-running.png');

      // The crash and the NaN loss: error toasts with their reasons.
      const crashToast = page.locator('.toast-error', { hasText: 'crashes failed: crashed' });
      await crashToast.waitFor();
      await cell('crashes', '.badge', 'failed');
      await cell('crashes', '.reason', 'crashed');
      ok('a failing job raises an error toast with its reason');
      await page.locator('.toast-error', { hasText: 'diverges failed: nonfinite_loss' }).waitFor();
      const diverged = await page.evaluate((id) => window.vapor.points(id), ids.diverges);
      assert.deepEqual(diverged.nonfinite, [40]);
      assert.ok(diverged.steps.includes(40), 'the NaN point is kept, not dropped');
      await panel('diverges').locator('p.nonfinite', { hasText: 'step 40 (nan)' }).waitFor();
      await cell('diverges', '.loss', 'NaN');
      ok('a NaN loss is marked on the chart and in the list');
      await shoot('02-failure-toasts.png');

      // A dropped feed connection: the page reconnects and replays what it missed.
      assert.equal(await page.evaluate(() => window.vapor.connections()), 1);
      await page.evaluate(() => window.vapor.dropConnection());
      await page.waitForSelector('#connection.down');
      await page.waitForFunction(() => window.vapor.connections() === 2);
      await page.waitForSelector('#connection.live');
      // steady stepped while the page was away (250 ms or more): the replay fills that in.
      await page.waitForFunction((id) => window.vapor.points(id).replayed > 0, ids.steady);
      ok('a dropped connection reconnects by itself and replays the missed points');

      // vapord itself goes away and comes back on the same port; steady resumes where it was.
      const stepAtStop = (await daemon.jobs()).find((job) => job.name === 'steady').step;
      assert.ok(stepAtStop < STEADY_STEPS, `steady still runs at the restart (step ${stepAtStop})`);
      await daemon.stop();
      await page.waitForSelector('#connection.down');
      await shoot('03-disconnected.png');
      await sleep(1000);
      await daemon.start();
      await page.waitForFunction(() => window.vapor.connections() === 3, null, { timeout: 30000 });
      ok(`the page reconnects after vapord restarts (steady was at step ${stepAtStop})`);

      // Start the manual job, watched from before its first step: a wrong token is refused and
      // asked for again.
      await row('manual').getByRole('button', { name: 'Watch manual' }).click();
      await page.waitForSelector(`.chart-panel[data-job-id="${ids.manual}"] canvas`);
      await row('manual').getByRole('button', { name: 'Start manual' }).click();
      const dialog = page.getByRole('dialog', { name: 'API token' });
      await dialog.waitFor();
      await dialog.getByLabel('Token').fill('not-the-token');
      await dialog.getByRole('button', { name: 'Save' }).click();
      await dialog.locator('#token-problem', { hasText: 'not valid' }).waitFor();
      ok('a refused token (401) asks again');
      await dialog.getByLabel('Token').fill(daemon.token);
      await shoot('04-token-dialog.png');
      await dialog.getByRole('button', { name: 'Save' }).click();
      await dialog.waitFor({ state: 'hidden' });
      await page.waitForFunction((id) => ['running', 'complete'].includes(
        document.querySelector(`#jobs tr[data-job-id="${id}"]`).dataset.state), ids.manual);
      const kept = await page.evaluate(() => sessionStorage.getItem('vapor.api-token'));
      assert.equal(kept, daemon.token, 'the token is kept in sessionStorage');
      ok('the Start button starts the manual job with the token from the dialog');
      await page.locator('.toast-success', { hasText: `manual completed (${MANUAL_STEPS} steps)` })
        .waitFor();
      await page.waitForFunction(([id, steps]) => window.vapor.renderedPoints(id) === steps,
                                 [ids.manual, MANUAL_STEPS]);
      assert.deepEqual((await page.evaluate((id) => window.vapor.points(id), ids.manual)).steps,
                       Array.from({ length: MANUAL_STEPS }, (_, i) => i + 1));
      ok('the manual job completes with a success toast, its whole curve drawn');

      // steady completes: a success toast, and every step exactly once despite the outages.
      await page.locator('.toast-success', { hasText: `steady completed (${STEADY_STEPS} steps)` })
        .waitFor({ timeout: 60000 });
      await cell('steady', '.badge', 'complete');
      assert.equal(await progress('steady'), 1);
      ok('a completing job raises a success toast');
      await page.waitForFunction(([id, steps]) => window.vapor.renderedPoints(id) === steps,
                                 [ids.steady, STEADY_STEPS]);
      const steady = await page.evaluate((id) => window.vapor.points(id), ids.steady);
      const expected = Array.from({ length: STEADY_STEPS }, (_, i) => i + 1);
      assert.deepEqual(steady.steps, expected,
                       'steps 1..200, each once, after a drop and a restart');
      assert.equal(await rendered('steady'), STEADY_STEPS);
      ok(`no gap and no duplicate across the reconnects (${steady.replayed} points replayed, ` +
         `${steady.duplicates} overlapping ones dropped)`);
      await shoot('05-finished.png');

      // The page's files are served with validators: a reload revalidates and gets 304s.
      const revalidated = await page.evaluate(async () => {
        const first = await fetch('/assets/app.js');
        const again = await fetch('/assets/app.js',
                                  { headers: { 'If-None-Match': first.headers.get('ETag') } });
        return [first.status, again.status, first.headers.get('Content-Type')];
      });
      assert.deepEqual(revalidated, [200, 304, 'text/javascript; charset=utf-8']);
      ok('assets carry an ETag and answer If-None-Match with 304');
  });
}

await main();
