// A watched job's points and the overview's curves, as the live page keeps them. Pure: no DOM,
// so node:test tests them directly (tests/web/unit).

// Points of a watched job: ascending by step, one per step.
export class Points {
  constructor() {
    this.steps = [];
    this.loss = [];        // null where the loss was not finite
    this.accuracy = [];
    this.nonfinite = new Map();  // step → "nan" | "inf" | "-inf"
    this.scalars = new Map();    // name → values by step index; null where a point has none
    this.duplicates = 0;   // points that arrived twice (history, replay and live overlap)
    this.replayed = 0;     // points that a replay after a reconnect filled in
  }

  get lastStep() {
    return this.steps.length ? this.steps[this.steps.length - 1] : 0;
  }

  // Adds a point unless its step is already here; returns whether it was new.
  add(point) {
    const steps = this.steps;
    let at = steps.length;
    if (at && point.step <= steps[at - 1]) {
      let low = 0;
      let high = steps.length;
      while (low < high) {
        const middle = (low + high) >> 1;
        if (steps[middle] < point.step) low = middle + 1; else high = middle;
      }
      if (steps[low] === point.step) {
        this.duplicates += 1;
        return false;
      }
      at = low;
    }
    steps.splice(at, 0, point.step);
    this.loss.splice(at, 0, point.loss_nonfinite ? null : point.loss);
    this.accuracy.splice(at, 0, point.accuracy_nonfinite ? null : point.accuracy);
    if (point.loss_nonfinite) this.nonfinite.set(point.step, point.loss_nonfinite);
    const reported = point.scalars || {};
    for (const [name, values] of this.scalars) {
      values.splice(at, 0, name in reported ? reported[name] : null);
    }
    for (const name of Object.keys(reported)) {
      if (this.scalars.has(name)) continue;
      const values = new Array(steps.length).fill(null);
      values[at] = reported[name];
      this.scalars.set(name, values);
    }
    return true;
  }
}

// TensorBoard's smoothing: an exponential moving average, debiased so the start is not pulled
// toward zero. Gaps (non-finite points) stay gaps and do not disturb the average.
export function smooth(values, weight) {
  let last = 0;
  let count = 0;
  return values.map((value) => {
    if (value === null || !Number.isFinite(value)) return null;
    last = last * weight + (1 - weight) * value;
    count += 1;
    const debias = weight === 1 ? 1 : 1 - weight ** count;
    return last / debias;
  });
}

// Past twice this many points, the overview's curve drops every other one (the card keeps all).
export const OVERVIEW_POINTS = 300;

// A job's loss on the overview: its history downsampled, then live points appended; past
// twice OVERVIEW_POINTS every other point is dropped (the card keeps every point).
export function addToCurve(curve, step, loss) {
  const count = curve.steps.length;
  if (count && step <= curve.steps[count - 1]) return;
  curve.steps.push(step);
  curve.loss.push(loss);
  if (curve.steps.length > 2 * OVERVIEW_POINTS) {
    const keep = (_, i, all) => i % 2 === 0 || i === all.length - 1;
    curve.steps = curve.steps.filter(keep);
    curve.loss = curve.loss.filter(keep);
  }
}

// The value nearest to index `at` (itself, then one step either side, and so on) that is not a
// gap; undefined when the series has none. Curves of jobs that report at different steps are
// joined on one x axis, so most indexes of a given curve are gaps.
export function nearestValue(values, at) {
  for (let d = 0; at - d >= 0 || at + d < values.length; d += 1) {
    for (const index of [at - d, at + d]) {
      const value = values[index];
      if (value !== undefined && value !== null) return value;
    }
  }
  return undefined;
}
