// What the browser tests share: a free loopback port, the real vapord on a temp folder, headless
// Chromium with a watch for script errors and CSP violations, and TAP-style output.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const CHROMIUM = process.env.VAPOR_CHROMIUM || '/usr/bin/chromium';

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A free port on 127.0.0.1, so that a restarted vapord comes back where the page looks for it.
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

// vapord on a temp folder with `queue` as its queue file and `config` (YAML lines) added to its
// configuration; start() again after stop() reuses the folder and its database.
export class Vapord {
  constructor(binary, port, queue, config = '') {
    this.binary = binary;
    this.dir = mkdtempSync(path.join(tmpdir(), 'vapor-web-'));
    this.port = port;
    this.log = '';
    writeFileSync(path.join(this.dir, 'jobs.yaml'), queue);
    writeFileSync(path.join(this.dir, 'vapord.yaml'), [
      `listen: 127.0.0.1:${port}`,
      `database: ${this.dir}/vapor.db`,
      `queue: ${this.dir}/jobs.yaml`,
      'scheduler:\n  max_concurrent: 4',
      'store:\n  flush_interval: 100ms',
      config,
      '',
    ].join('\n'));
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  get token() {
    return readFileSync(path.join(this.dir, 'api-token'), 'utf8').trim();
  }

  start() {
    const starts = this.log.split('listening on').length;
    this.process = spawn(this.binary, ['--config', path.join(this.dir, 'vapord.yaml')],
                         { stdio: ['ignore', 'pipe', 'pipe'] });
    const append = (chunk) => { this.log += chunk; };
    this.process.stdout.setEncoding('utf8').on('data', append);
    this.process.stderr.setEncoding('utf8').on('data', append);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`vapord did not listen:\n${this.log}`)), 20000);
      const check = () => {
        const found = [...this.log.matchAll(/listening on http:\/\/127\.0\.0\.1:(\d+)/g)];
        if (found.length >= starts) {
          clearTimeout(timer);
          assert.equal(Number(found[found.length - 1][1]), this.port);
          resolve();
        }
      };
      this.process.stdout.on('data', check);
      this.process.stderr.on('data', check);
      this.process.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`vapord exited ${code} before listening:\n${this.log}`));
      });
    });
  }

  async stop() {
    const child = this.process;
    if (!child || child.exitCode !== null) return;
    child.removeAllListeners('exit');
    const exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    const code = await Promise.race([exited, sleep(10000).then(() => 'timeout')]);
    if (code === 'timeout') {
      child.kill('SIGKILL');
      throw new Error('vapord did not exit within 10 s of SIGTERM');
    }
    assert.equal(code, 0, `vapord exited ${code}:\n${this.log}`);
  }

  async jobs() {
    const response = await fetch(`${this.url}/api/v1/jobs`);
    return (await response.json()).jobs;
  }
}

// Headless Chromium on a fresh profile. `problems` collects page errors and CSP violations;
// `shoot(name)` saves a full-page screenshot into `screenshotDir`.
export async function openBrowser(screenshotDir) {
  const userDataDir = mkdtempSync(path.join(tmpdir(), 'vapor-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1440, height: 1000 },
  });
  const page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(30000);
  const problems = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    // A CSP violation shows up here; so would anything app.js logs as an error.
    const text = message.text();
    if (message.type() === 'error' && /Content Security Policy|Refused to|Uncaught/.test(text)) {
      problems.push(`console: ${text}`);
    }
  });
  const shoot = async (name) => {
    const file = path.join(screenshotDir, name);
    await page.screenshot({ path: file, fullPage: true });
    console.log(`# screenshot ${file}`);
  };
  const close = async () => {
    await context.close().catch(() => {});
    rmSync(userDataDir, { recursive: true, force: true });
  };
  return { page, problems, shoot, close };
}

// TAP-style progress: `ok(what)` after each check that passed; `plan()` at the end.
export function tap() {
  let passed = 0;
  return {
    ok(what) {
      passed += 1;
      console.log(`ok ${passed} - ${what}`);
    },
    notOk(message) {
      console.log(`not ok ${passed + 1} - ${message}`);
    },
    plan() {
      console.log(`1..${passed}`);
    },
  };
}

// Runs `body` against a started page; on failure prints the error, the tail of vapord's log and
// the browser's problems, and saves `failureShot`. Always closes the browser and stops vapord.
export async function runBrowserTest({ daemon, browser, report, failureShot }, body) {
  try {
    await body();
    assert.deepEqual(browser.problems, [], 'no script errors and no CSP violations');
    report.ok('no script errors or CSP violations');
  } catch (error) {
    await browser.shoot(failureShot).catch(() => {});
    report.notOk(error.message);
    console.log(`# vapord log (tail):\n${daemon.log.split('\n').slice(-40).join('\n')}`);
    if (browser.problems.length) {
      console.log(`# browser problems:\n${browser.problems.join('\n')}`);
    }
    process.exitCode = 1;
  } finally {
    await browser.close();
    await daemon.stop().catch((error) => {
      console.log(`# ${error.message}`);
      process.exitCode = 1;
    });
    rmSync(daemon.dir, { recursive: true, force: true });
  }
  if (!process.exitCode) report.plan();
}
