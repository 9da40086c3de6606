// The live page's number formatting, without a browser (node:test).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  formatBytes, formatEta, formatLoss, formatNumber, formatPercent,
} from '../../../web/format.js';

test('non-finite values are named, missing ones are a dash', () => {
  assert.deepEqual(formatNumber(null, 'nan', formatLoss), { text: 'NaN', bad: true });
  assert.deepEqual(formatNumber(null, '-inf', formatLoss), { text: '−∞', bad: true });
  assert.deepEqual(formatNumber(undefined, undefined, formatLoss), { text: '—', bad: false });
  assert.deepEqual(formatNumber(0.5, undefined, formatPercent), { text: '50.0%', bad: false });
});

test('losses keep four significant digits, tiny and huge ones in exponent form', () => {
  assert.equal(formatLoss(0.123456), '0.1235');
  assert.equal(formatLoss(0.0001234), '1.234e-4');
  assert.equal(formatLoss(12345), '1.235e+4');
});

test('an ETA reads as seconds, minutes or hours', () => {
  assert.equal(formatEta(null), '—');
  assert.equal(formatEta(Infinity), '—');
  assert.equal(formatEta(42.4), '42s');
  assert.equal(formatEta(125), '2m 05s');
  assert.equal(formatEta(3 * 3600 + 7 * 60), '3h 07m');
});

test('sizes in B, KiB and MiB', () => {
  assert.equal(formatBytes(512), '512 B');
  assert.equal(formatBytes(8192), '8.0 KiB');
  assert.equal(formatBytes(3 * 1024 * 1024), '3.0 MiB');
  assert.equal(formatBytes(NaN), '');
});
