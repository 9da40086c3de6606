// The live page's point keeping, without a browser (node:test): what a chart draws is right
// however history, replay and live points arrive.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { OVERVIEW_POINTS, Points, addToCurve, nearestValue, smooth } from '../../../web/curves.js';

const point = (step, extra = {}) => ({ step, loss: 1 / step, accuracy: step / 100, ...extra });

test('points stay ascending and unique whatever order history, replay and live arrive in', () => {
  const points = new Points();
  for (const step of [5, 6, 7]) points.add(point(step));  // live, before the history
  for (const step of [1, 2, 3, 4, 5]) points.add(point(step));  // history overlapping by one
  points.add(point(6));  // a replayed duplicate
  assert.deepEqual(points.steps, [1, 2, 3, 4, 5, 6, 7]);
  assert.equal(points.duplicates, 2);
  assert.deepEqual(points.loss, [1, 1 / 2, 1 / 3, 1 / 4, 1 / 5, 1 / 6, 1 / 7]);
  assert.equal(points.lastStep, 7);
});

test('a non-finite loss is a gap in the curve and marked by its step', () => {
  const points = new Points();
  points.add(point(1));
  points.add({ step: 2, loss: null, loss_nonfinite: 'nan', accuracy: 0.1 });
  assert.deepEqual(points.loss, [1, null]);
  assert.deepEqual([...points.nonfinite], [[2, 'nan']]);
});

test('named scalars line up with the steps, null where a point has none', () => {
  const points = new Points();
  points.add(point(2, { scalars: { lr: 0.1 } }));
  points.add(point(4, { scalars: { lr: 0.05, val_loss: 0.3 } }));
  points.add(point(3));            // no scalars at this step
  points.add(point(1, { scalars: { val_loss: 0.9 } }));  // history arriving late
  assert.deepEqual(points.steps, [1, 2, 3, 4]);
  assert.deepEqual(points.scalars.get('lr'), [null, 0.1, null, 0.05]);
  assert.deepEqual(points.scalars.get('val_loss'), [0.9, null, null, 0.3]);
});

test('smoothing is a debiased moving average that leaves gaps as gaps', () => {
  assert.deepEqual(smooth([2, 2, 2], 0.6), [2, 2, 2], 'a constant stays constant from the start');
  const smoothed = smooth([1, null, 3], 0.5);
  assert.equal(smoothed[1], null);
  assert.equal(smoothed[0], 1);
  assert.ok(Math.abs(smoothed[2] - (0.5 * 0.5 + 0.5 * 3) / 0.75) < 1e-12);
  assert.deepEqual(smooth([4, 8], 0), [4, 8], 'no smoothing');
});

test('an overview curve appends in order and thins itself past twice its budget', () => {
  const curve = { steps: [], loss: [] };
  addToCurve(curve, 1, 1);
  addToCurve(curve, 1, 1);  // not after the last step: dropped
  assert.deepEqual(curve.steps, [1]);
  for (let step = 2; step <= 4 * OVERVIEW_POINTS; step += 1) addToCurve(curve, step, 1 / step);
  assert.ok(curve.steps.length <= 2 * OVERVIEW_POINTS, `${curve.steps.length} points kept`);
  assert.equal(curve.steps.at(-1), 4 * OVERVIEW_POINTS, 'the newest point is always kept');
  assert.equal(curve.steps[0], 1, 'and so is the first');
  assert.deepEqual([...curve.steps].sort((a, b) => a - b), curve.steps);
});

test('the nearest value skips gaps and says when there is none', () => {
  assert.equal(nearestValue([undefined, 5, undefined, null, 9], 3), 9);
  assert.equal(nearestValue([undefined, 5, undefined, null, 9], 2), 5, 'the left one first');
  assert.equal(nearestValue([null, undefined], 0), undefined);
  assert.equal(nearestValue([], 0), undefined);
});
