// vapord's live page: an overview of every recent job's loss, the job list and one card per
// watched job (its live chart, a real trainer's named scalars and log tail), kept current by the
// WebSocket feed (/ws). No framework; uPlot (loaded before this file) draws the charts.
import { OVERVIEW_POINTS, Points, addToCurve, nearestValue, smooth } from './curves.js';
import { formatBytes, formatEta, formatLoss, formatNumber, formatPercent } from './format.js';

const HISTORY_POINTS = 2000;   // points fetched when a job is first watched (downsampled beyond)
const TOKEN_KEY = 'vapor.api-token';
const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 10000;
const SUCCESS_TOAST_MS = 8000;
const CHART_HEIGHT = 280;
const SCALAR_CHART_HEIGHT = 140;
const OVERVIEW_HEIGHT = 260;
const OVERVIEW_MAX_JOBS = 12;      // the most recent jobs the overview draws
const OVERVIEW_RECENT_MS = 3600 * 1000;  // finished jobs stay on the overview this long
const LOG_TAIL_BYTES = 8192;       // the tail of a real job's log its card shows
const LOG_POLL_MS = 2000;
const FINISHED = new Set(['complete', 'failed', 'stopped']);
const COLORS = { loss: '#1d4ed8', accuracy: '#15803d', nonfinite: '#b91c1c' };
// One colour per job on the overview, per scalar in a card (Tableau 10, readable on white).
const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1',
                 '#ff9da7', '#9c755f', '#bab0ac'];
// A named scalar whose name ends in "loss" (val_loss, test_loss) shares the loss axis.
const onLossAxis = (name) => name.endsWith('loss');

const jobs = new Map();     // id → JobSummary, kept current from the feed
const rows = new Map();     // id → the job's <tr>
const watches = new Map();  // id → Watch (a chart panel and its points)

const $ = (selector, root = document) => root.querySelector(selector);

// ---------------------------------------------------------------------------------------------
// Formatting

function setNumber(cell, value, flag, format) {
  const shown = formatNumber(value, flag, format);
  cell.textContent = shown.text;
  cell.classList.toggle('nonfinite-value', shown.bad);
}

// ---------------------------------------------------------------------------------------------
// Drawing, at most once a frame

const dirtyRows = new Set();
const dirtyCharts = new Set();
let frame = 0;

function schedule() {
  if (!frame) frame = requestAnimationFrame(flush);
}
function rowChanged(id) {
  dirtyRows.add(id);
  schedule();
}
function chartChanged(watch) {
  dirtyCharts.add(watch);
  schedule();
}
let overviewDirty = false;
function overviewChanged() {
  overviewDirty = true;
  schedule();
}
function flush() {
  frame = 0;
  for (const id of dirtyRows) renderRow(id);
  dirtyRows.clear();
  for (const watch of dirtyCharts) renderChart(watch);
  dirtyCharts.clear();
  if (overviewDirty) renderOverview();
  overviewDirty = false;
}

// ---------------------------------------------------------------------------------------------
// The job list

function setJob(summary) {
  jobs.set(summary.id, summary);
  if (!rows.has(summary.id)) addRow(summary.id);
  rowChanged(summary.id);
  overviewChanged();
}

function addRow(id) {
  const row = $('#job-row').content.firstElementChild.cloneNode(true);
  row.dataset.jobId = id;
  $('.watch', row).addEventListener('click', () => toggleWatch(id));
  $('.start', row).addEventListener('click', (e) => control(id, 'start', e.currentTarget));
  $('.stop', row).addEventListener('click', (e) => control(id, 'stop', e.currentTarget));
  // Rows stay in id order, whatever order jobs become known in.
  const body = $('#jobs tbody');
  const next = [...body.children].find((other) => Number(other.dataset.jobId) > id);
  body.insertBefore(row, next || null);
  rows.set(id, row);
  $('#no-jobs').hidden = true;
}

function removeJob(id) {
  rows.get(id)?.remove();
  rows.delete(id);
  jobs.delete(id);
  if (watches.has(id)) unwatch(id);
  overviewChanged();
}

function renderRow(id) {
  const job = jobs.get(id);
  const row = rows.get(id);
  if (!job || !row) return;
  row.className = `state-${job.state}`;
  row.dataset.state = job.state;
  $('.name', row).textContent = job.name;
  $('.model', row).textContent = job.model || '';
  $('.badge', row).textContent = job.state;
  $('.reason', row).textContent = job.reason ? job.reason : '';
  const progress = $('progress', row);
  progress.value = job.progress || 0;
  progress.setAttribute('aria-label', `progress of ${job.name}`);
  $('.percent', row).textContent = formatPercent(job.progress || 0);
  $('.epoch', row).textContent = `${job.epoch}/${job.epochs}`;
  $('.step', row).textContent = `${job.step}/${job.steps}`;
  setNumber($('.loss', row), job.loss, job.loss_nonfinite, formatLoss);
  setNumber($('.accuracy', row), job.accuracy, job.accuracy_nonfinite, formatPercent);
  $('.eta', row).textContent = job.state === 'running' ? formatEta(job.eta_seconds) : '—';

  const watchButton = $('.watch', row);
  watchButton.setAttribute('aria-pressed', String(watches.has(id)));
  watchButton.setAttribute('aria-label', `Watch ${job.name}`);
  const start = $('.start', row);
  start.hidden = job.state !== 'queued';
  start.setAttribute('aria-label', `Start ${job.name}`);
  const stop = $('.stop', row);
  stop.hidden = job.state !== 'running';
  stop.setAttribute('aria-label', `Stop ${job.name}`);

  const watch = watches.get(id);
  if (watch) renderPanelHeader(watch);
}

// Fetches a job the feed mentions before the page knows it (one submitted since the hello).
const fetching = new Set();
async function fetchJob(id) {
  if (fetching.has(id)) return;
  fetching.add(id);
  try {
    const response = await fetch(`/api/v1/jobs/${id}`);
    if (response.ok) setJob(await response.json());
  } catch {
    // The feed will mention it again; the next hello lists it anyway.
  } finally {
    fetching.delete(id);
  }
}

// ---------------------------------------------------------------------------------------------
// Points of a watched job: ascending by step, one per step

// ---------------------------------------------------------------------------------------------
// The overview: the loss of every running or recently finished job on one chart, a colour
// per job, to compare runs; clicking a curve opens its job's card.

const overview = { curves: new Map(), ids: [], chart: null, resize: null };

// The jobs the overview draws: running ones and those finished within OVERVIEW_RECENT_MS,
// the newest OVERVIEW_MAX_JOBS, in id order.
function overviewMembers() {
  const now = Date.now();
  return [...jobs.values()]
    .filter((job) => job.step > 0 && (job.state === 'running' ||
      (FINISHED.has(job.state) && job.finished_at &&
       now - Date.parse(job.finished_at) < OVERVIEW_RECENT_MS)))
    .sort((a, b) => a.id - b.id)
    .slice(-OVERVIEW_MAX_JOBS)
    .map((job) => job.id);
}

async function loadCurve(id, curve) {
  try {
    const response = await fetch(`/api/v1/jobs/${id}/metrics?max_points=${OVERVIEW_POINTS}`);
    if (!response.ok) return;
    const body = await response.json();
    if (overview.curves.get(id) !== curve) return;  // left the overview meanwhile
    const first = curve.steps.length ? curve.steps[0] : Infinity;
    const older = body.points.filter((point) => point.step < first);
    curve.steps = older.map((point) => point.step).concat(curve.steps);
    curve.loss = older.map((point) => (point.loss_nonfinite ? null : point.loss))
      .concat(curve.loss);
    overviewChanged();
  } catch {
    // Live points still draw; the next page load fetches the history again.
  }
}

function renderOverview() {
  const ids = overviewMembers();
  for (const id of overview.curves.keys()) if (!ids.includes(id)) overview.curves.delete(id);
  for (const id of ids) {
    if (overview.curves.has(id)) continue;
    const curve = { steps: [], loss: [] };
    overview.curves.set(id, curve);
    loadCurve(id, curve);
  }
  $('#overview-empty').hidden = ids.length > 0;
  $('#overview').hidden = ids.length === 0;
  const data = uPlot.join(ids.map((id) => {
    const curve = overview.curves.get(id);
    return [curve.steps, curve.loss];
  }));
  const labels = ids.map((id) => jobName(id));
  if (!overview.chart || labels.join('\n') !== overview.chart.series.slice(1)
    .map((series) => series.label).join('\n')) {
    createOverview(ids, labels, data);
  } else if (ids.length) {
    overview.chart.setData(data);
  }
  overview.ids = ids;
  $('#overview').dataset.jobs = ids.join(',');
}

// The series whose curve passes within 24 px of the cursor, vertically, at the cursor's step
// (each job's nearest point there: jobs report at different steps); the closest one wins.
function curveUnderCursor(u) {
  const { idx, top } = u.cursor;
  if (idx === null || idx === undefined || top === null || top === undefined) return undefined;
  let best;
  let bestDistance = 24;
  for (let i = 1; i < u.series.length; i += 1) {
    if (!u.series[i].show) continue;
    const value = nearestValue(u.data[i], idx);
    if (value === undefined) continue;
    const distance = Math.abs(u.valToPos(value, u.series[i].scale) - top);
    if (distance <= bestDistance) {
      best = i;
      bestDistance = distance;
    }
  }
  return best;
}

function createOverview(ids, labels, data) {
  overview.chart?.destroy();
  overview.chart = null;
  if (!ids.length) return;
  const target = $('#overview');
  target.replaceChildren();
  overview.chart = new uPlot({
    width: Math.max(300, target.clientWidth),
    height: OVERVIEW_HEIGHT,
    scales: { x: { time: false } },
    axes: [{ label: 'step' }, { label: 'loss' }],
    cursor: { focus: { prox: 24 } },
    focus: { alpha: 0.3 },
    series: [{ label: 'step' }, ...labels.map((label, index) => ({
      label,
      stroke: PALETTE[ids[index] % PALETTE.length],  // a job keeps its colour
      width: 2,
      spanGaps: true,
      points: { show: false },
    }))],
  }, data, target);
  overview.chart.over.addEventListener('click', () => {
    const series = curveUnderCursor(overview.chart);
    const id = series ? overview.ids[series - 1] : undefined;
    if (id === undefined) return;
    if (!watches.has(id)) watch(id);
    watches.get(id).panel.scrollIntoView({ behavior: 'smooth', block: 'nearest' });
  });
  overview.chart.over.title = 'Click a curve to open its job';
}

// ---------------------------------------------------------------------------------------------
// Watched jobs: a chart panel each

function toggleWatch(id) {
  if (watches.has(id)) unwatch(id); else watch(id);
}

function watch(id) {
  const panel = $('#chart-panel').content.firstElementChild.cloneNode(true);
  const w = {
    id,
    panel,
    points: new Points(),
    chart: null,
    smoothing: 0.6,
    logScale: false,
    loading: false,
    generation: 0,
    resize: null,
    lossScalars: [],         // the *loss scalars drawn on the main chart, in arrival order
    scalarCharts: new Map(), // name → uPlot, one small chart per other scalar
    logTimer: 0,
    logSize: null,
  };
  panel.dataset.jobId = id;
  panel.dataset.points = '0';
  const slider = $('.smoothing', panel);
  slider.addEventListener('input', () => {
    w.smoothing = Number(slider.value);
    $('.smoothing-value', panel).textContent = w.smoothing.toFixed(2);
    chartChanged(w);
  });
  $('.log-scale', panel).addEventListener('change', (e) => {
    w.logScale = e.currentTarget.checked;
    createChart(w);  // a scale's distribution is fixed when a chart is made
  });
  $('.close', panel).addEventListener('click', () => unwatch(id));
  watches.set(id, w);
  $('#charts').append(panel);
  $('#no-charts').hidden = true;
  w.resize = new ResizeObserver(() => {
    if (w.chart) w.chart.setSize({ width: chartWidth(w), height: CHART_HEIGHT });
    for (const [name, chart] of w.scalarCharts) {
      chart.setSize({ width: scalarChartWidth(w, name), height: SCALAR_CHART_HEIGHT });
    }
  });
  w.resize.observe($('.chart', panel));
  createChart(w);
  renderPanelHeader(w);
  rowChanged(id);
  loadHistory(w);
  followLog(w);
}

function unwatch(id) {
  const w = watches.get(id);
  if (!w) return;
  watches.delete(id);
  w.generation += 1;  // a history load still in flight is dropped
  w.resize.disconnect();
  w.chart?.destroy();
  for (const chart of w.scalarCharts.values()) chart.destroy();
  clearTimeout(w.logTimer);
  w.panel.remove();
  dirtyCharts.delete(w);
  $('#no-charts').hidden = watches.size > 0;
  rowChanged(id);
}

// Loads a job's points so far (downsampled past HISTORY_POINTS); live points that arrive
// meanwhile are kept, and the overlap is dropped by step.
async function loadHistory(w) {
  const generation = ++w.generation;
  w.loading = true;
  try {
    const response = await fetch(`/api/v1/jobs/${w.id}/metrics?max_points=${HISTORY_POINTS}`);
    if (!response.ok) throw new Error(await errorMessage(response));
    const body = await response.json();
    if (generation !== w.generation) return;
    for (const point of body.points) w.points.add(point);
    chartChanged(w);
  } catch (error) {
    if (generation === w.generation) {
      toast('error', `Could not load the history of ${jobName(w.id)}: ${error.message}`);
    }
  } finally {
    if (generation === w.generation) w.loading = false;
  }
}

function chartWidth(w) {
  return Math.max(300, $('.chart', w.panel).clientWidth);
}

function lossFill(u) {
  const { top, height } = u.bbox;
  if (!Number.isFinite(top) || !Number.isFinite(height)) return 'rgba(29, 78, 216, 0.1)';
  const gradient = u.ctx.createLinearGradient(0, top, 0, top + height);
  gradient.addColorStop(0, 'rgba(29, 78, 216, 0.35)');
  gradient.addColorStop(1, 'rgba(29, 78, 216, 0.02)');
  return gradient;
}

// Marks each non-finite loss with a red line across the plot and its value on top.
function drawNonFinite(u, w) {
  if (!w.points.nonfinite.size) return;
  const { ctx } = u;
  const { left, top, width, height } = u.bbox;
  ctx.save();
  ctx.strokeStyle = COLORS.nonfinite;
  ctx.fillStyle = COLORS.nonfinite;
  ctx.lineWidth = 2 * devicePixelRatio;
  ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
  ctx.font = `${12 * devicePixelRatio}px system-ui, sans-serif`;
  ctx.textBaseline = 'top';
  const edge = 16 * devicePixelRatio;
  for (const [step, kind] of w.points.nonfinite) {
    const x = Math.round(u.valToPos(step, 'x', true));
    if (x < left || x > left + width) continue;
    // The label stays inside the plot when the mark is at an edge.
    ctx.textAlign = x > left + width - edge ? 'right' : x < left + edge ? 'left' : 'center';
    ctx.beginPath();
    ctx.moveTo(x, top);
    ctx.lineTo(x, top + height);
    ctx.stroke();
    ctx.fillText(kind === 'nan' ? 'NaN' : kind, x, top + 2 * devicePixelRatio);
  }
  ctx.restore();
}

function createChart(w) {
  w.chart?.destroy();
  w.lossScalars = [...w.points.scalars.keys()].filter(onLossAxis);
  const options = {
    width: chartWidth(w),
    height: CHART_HEIGHT,
    scales: {
      x: { time: false },
      loss: { distr: w.logScale ? 3 : 1 },
      accuracy: { range: [0, 1] },
    },
    axes: [
      { label: 'step' },
      { scale: 'loss', label: w.logScale ? 'loss (log)' : 'loss' },
      {
        scale: 'accuracy',
        side: 1,
        label: 'accuracy',
        grid: { show: false },
        values: (u, ticks) => ticks.map((t) => `${Math.round(t * 100)}%`),
      },
    ],
    series: [
      { label: 'step' },
      {
        label: 'loss (raw)',
        scale: 'loss',
        stroke: 'rgba(29, 78, 216, 0.25)',
        width: 1,
        points: { show: false },
      },
      {
        label: 'loss',
        scale: 'loss',
        stroke: COLORS.loss,
        width: 2,
        fill: lossFill,
        points: { show: false },
      },
      {
        label: 'accuracy',
        scale: 'accuracy',
        stroke: COLORS.accuracy,
        width: 1.5,
        points: { show: false },
        value: (u, v) => (v === null ? '—' : formatPercent(v)),
      },
      ...w.lossScalars.map((name, index) => ({
        label: name,
        scale: 'loss',
        stroke: PALETTE[(index + 1) % PALETTE.length],
        width: 1.5,
        dash: [6, 3],
        spanGaps: true,  // reported once an epoch: a line through its points
        points: { show: false },
      })),
    ],
    hooks: { draw: [(u) => drawNonFinite(u, w)] },
  };
  const target = $('.chart', w.panel);
  target.replaceChildren();
  w.chart = new uPlot(options, chartData(w), target);
  w.panel.dataset.points = String(w.points.steps.length);
  $('.log-scale', w.panel).checked = w.logScale;
}

// Copies: uPlot keeps the arrays it is given, and Points keeps growing its own.
function chartData(w) {
  const p = w.points;
  return [p.steps.slice(), p.loss.slice(), smooth(p.loss, w.smoothing), p.accuracy.slice(),
          ...w.lossScalars.map((name) => p.scalars.get(name).slice())];
}

function renderChart(w) {
  if (!watches.has(w.id)) return;
  const lossScalars = [...w.points.scalars.keys()].filter(onLossAxis);
  if (lossScalars.join() !== w.lossScalars.join()) {
    createChart(w);  // a new *loss scalar: its series joins the chart
  } else {
    w.chart.setData(chartData(w));
  }
  renderScalarCharts(w);
  w.panel.dataset.points = String(w.points.steps.length);
  const note = $('.nonfinite', w.panel);
  const marks = [...w.points.nonfinite].map(([step, kind]) => `step ${step} (${kind})`);
  note.hidden = marks.length === 0;
  note.textContent = marks.length
    ? `Non-finite loss, marked in red: ${marks.slice(0, 5).join(', ')}` +
      (marks.length > 5 ? ` and ${marks.length - 5} more` : '')
    : '';
}

// The named scalars that are not losses (lr, grad_norm, ...): a small chart each, in the order
// they were first reported.
function renderScalarCharts(w) {
  const holder = $('.scalars', w.panel);
  for (const [name, values] of w.points.scalars) {
    if (onLossAxis(name)) continue;
    const data = [w.points.steps.slice(), values.slice()];
    const chart = w.scalarCharts.get(name);
    if (chart) {
      chart.setData(data);
      continue;
    }
    const figure = document.createElement('figure');
    figure.className = 'scalar-chart';
    figure.dataset.scalar = name;
    const caption = document.createElement('figcaption');
    caption.textContent = name;
    const target = document.createElement('div');
    figure.append(caption, target);
    holder.append(figure);
    holder.hidden = false;
    const stroke = PALETTE[(w.scalarCharts.size + 3) % PALETTE.length];
    w.scalarCharts.set(name, new uPlot({
      width: scalarChartWidth(w, name),
      height: SCALAR_CHART_HEIGHT,
      scales: { x: { time: false } },
      legend: { show: false },
      axes: [{}, { size: 56 }],
      series: [{ label: 'step' },
               { label: name, stroke, width: 1.5, spanGaps: true, points: { show: false } }],
    }, data, target));
  }
}

function scalarChartWidth(w, name) {
  const figure = $(`.scalar-chart[data-scalar="${name}"]`, w.panel);
  return Math.max(180, figure ? figure.clientWidth : 240);
}

// A real job's card shows the tail of its log (stdout, stderr and vapord's notes), polled
// while it runs and read once more when it has ended.
async function followLog(w) {
  const job = jobs.get(w.id);
  if (!job || job.kind !== 'command' || !watches.has(w.id)) return;
  const box = $('.log', w.panel);
  box.hidden = false;
  try {
    const response = await fetch(`/api/v1/jobs/${w.id}/log?tail_bytes=${LOG_TAIL_BYTES}`);
    const size = response.headers.get('X-Log-Size');
    const text = $('.log-text', w.panel);
    if (response.status === 404) {
      text.textContent = 'No output yet.';
    } else if (!response.ok) {
      text.textContent = `Could not read the log: ${await errorMessage(response)}`;
    } else if (size !== w.logSize) {
      const atEnd = text.scrollTop + text.clientHeight >= text.scrollHeight - 4;
      text.textContent = await response.text();
      $('.log-size', w.panel).textContent = `(${formatBytes(Number(size))})`;
      if (atEnd) text.scrollTop = text.scrollHeight;
      w.logSize = size;
    }
  } catch {
    // The next poll tries again.
  }
  const now = jobs.get(w.id);
  if (watches.has(w.id) && now && !(FINISHED.has(now.state) && w.logReadAfterEnd)) {
    w.logReadAfterEnd = FINISHED.has(now.state);
    w.logTimer = setTimeout(() => followLog(w), LOG_POLL_MS);
  }
}

function renderPanelHeader(w) {
  const job = jobs.get(w.id);
  if (!job) return;
  $('.name', w.panel).textContent = job.name;
  const badge = $('.badge', w.panel);
  badge.textContent = job.state;
  badge.className = `badge state-${job.state}`;
  const loss = formatNumber(job.loss, job.loss_nonfinite, formatLoss).text;
  const accuracy = formatNumber(job.accuracy, job.accuracy_nonfinite, formatPercent).text;
  $('.summary', w.panel).textContent =
    `step ${job.step}/${job.steps} · epoch ${job.epoch}/${job.epochs} · loss ${loss}` +
    ` · accuracy ${accuracy}` + (job.reason ? ` · ${job.reason}` : '');
}

// ---------------------------------------------------------------------------------------------
// The live feed

let socket = null;
let attempt = 0;
let helloCount = 0;
let reconnectTimer = 0;

function setConnection(text, state) {
  const line = $('#connection');
  line.textContent = text;
  line.className = `connection ${state}`;
}

function connect() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(`${scheme}//${location.host}/ws`);
  socket = ws;
  ws.addEventListener('message', (event) => {
    if (socket !== ws) return;
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    onMessage(message);
  });
  ws.addEventListener('close', () => {
    if (socket !== ws) return;
    socket = null;
    reconnectLater();
  });
}

function reconnectLater() {
  attempt += 1;
  const ceiling = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** (attempt - 1));
  const delay = Math.round(ceiling / 2 + Math.random() * ceiling / 2);
  setConnection(`Disconnected; reconnecting in ${(delay / 1000).toFixed(1)} s…`, 'down');
  clearTimeout(reconnectTimer);
  reconnectTimer = setTimeout(connect, delay);
}

function send(message) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
}

function onMessage(message) {
  switch (message.type) {
    case 'hello': return onHello(message);
    case 'point': return onPoint(message);
    case 'state': return onState(message);
    case 'error': return console.warn('vapord feed:', message.message);
    default: return undefined;  // "subscribed", "caught_up" and anything newer
  }
}

function onHello(hello) {
  const reconnected = helloCount > 0;
  helloCount += 1;
  attempt = 0;
  setConnection('Live', 'live');
  const listed = new Set();
  for (const summary of hello.jobs) {
    listed.add(summary.id);
    const before = jobs.get(summary.id);
    // A job that finished while the page was away still gets its toast.
    if (before && before.state !== summary.state) announce(summary, summary.state);
    setJob(summary);
  }
  for (const id of [...jobs.keys()]) if (!listed.has(id)) removeJob(id);
  $('#no-jobs').hidden = jobs.size > 0;
  if (reconnected) fillGaps();
}

// After a reconnect: replay from the store what each watched job recorded while the page was
// away, each from its own last step (the feed's per-job `since`); a point that is already
// here is dropped by step.
function fillGaps() {
  const since = {};
  for (const w of watches.values()) {
    const job = jobs.get(w.id);
    if (w.loading || w.points.steps.length === 0) {
      if (job && job.step > 0) loadHistory(w);  // nothing to continue from: load it whole
    } else if (job && job.step > w.points.lastStep) {
      since[w.id] = w.points.lastStep;
    }
  }
  if (Object.keys(since).length) send({ type: 'subscribe', job_ids: [], since });
}

function onPoint(point) {
  const job = jobs.get(point.job_id);
  if (!job) {
    fetchJob(point.job_id);
  } else if (point.step > job.step || (!point.replay && point.step === job.step)) {
    // A replayed point is older than what the hello said; it only fills the chart.
    job.step = point.step;
    job.epoch = point.epoch;
    job.progress = point.progress;
    job.eta_seconds = point.eta_seconds;
    for (const key of ['loss', 'accuracy']) {
      job[key] = point[key];
      job[`${key}_nonfinite`] = point[`${key}_nonfinite`];
    }
    if (point.scalars) job.scalars = { ...job.scalars, ...point.scalars };
    rowChanged(job.id);
  }
  const curve = overview.curves.get(point.job_id);
  if (curve) {
    addToCurve(curve, point.step, point.loss_nonfinite ? null : point.loss);
    overviewChanged();
  } else if (job && job.state === 'running') {
    overviewChanged();  // its first point: it joins the overview
  }
  const w = watches.get(point.job_id);
  if (w && w.points.add(point)) {
    if (point.replay) w.points.replayed += 1;
    chartChanged(w);
  }
}

function onState(change) {
  const job = jobs.get(change.job_id);
  if (!job) {
    fetchJob(change.job_id);
    return;
  }
  // A replayed change is history: the hello already said where the job stands (and toasted
  // what changed while the page was away).
  if (change.replay) return;
  job.state = change.to;
  job.reason = change.reason;
  if (FINISHED.has(change.to)) {
    job.eta_seconds = null;
    job.finished_at = change.ts;
  } else if (change.to === 'running' && !job.started_at) {
    job.started_at = change.ts;
  }
  rowChanged(job.id);
  overviewChanged();
  announce(job, change.to);
}

function announce(job, state) {
  if (state === 'complete') toast('success', `${job.name} completed (${job.steps} steps).`);
  if (state === 'failed') {
    toast('error', `${job.name} failed: ${job.reason || 'no reason given'}.`);
  }
  if (state === 'stopped') toast('info', `${job.name} was stopped.`);
}

// ---------------------------------------------------------------------------------------------
// Start and stop, with the API token

function jobName(id) {
  return jobs.get(id)?.name ?? `job ${id}`;
}

async function errorMessage(response) {
  try {
    const body = await response.json();
    return body.error?.message || `HTTP ${response.status}`;
  } catch {
    return `HTTP ${response.status}`;
  }
}

// Asks for the token in a dialog; resolves to it (kept in sessionStorage), or null on cancel.
function askToken(problem) {
  const dialog = $('#token-dialog');
  const input = $('#token-input');
  const note = $('#token-problem');
  note.hidden = !problem;
  note.textContent = problem || '';
  input.value = '';
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => {
      const token = input.value.trim();
      if (dialog.returnValue !== 'save' || !token) return resolve(null);
      sessionStorage.setItem(TOKEN_KEY, token);
      return resolve(token);
    }, { once: true });
    dialog.returnValue = '';
    dialog.showModal();
  });
}

async function control(id, action, button) {
  button.disabled = true;
  try {
    let token = sessionStorage.getItem(TOKEN_KEY) || await askToken(null);
    while (token) {
      const response = await fetch(`/api/v1/jobs/${id}/${action}`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}` },
      });
      if (response.status === 401) {
        sessionStorage.removeItem(TOKEN_KEY);
        token = await askToken(await errorMessage(response));
        continue;
      }
      if (!response.ok) {
        toast('error', `Could not ${action} ${jobName(id)}: ${await errorMessage(response)}`);
      } else {
        setJob(await response.json());
      }
      return;
    }
  } catch (error) {
    toast('error', `Could not ${action} ${jobName(id)}: ${error.message}`);
  } finally {
    button.disabled = false;
  }
}

// ---------------------------------------------------------------------------------------------
// Toasts: success and info fade out; errors stay until dismissed

function toast(kind, text) {
  const item = document.createElement('div');
  item.className = `toast toast-${kind}`;
  item.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  const message = document.createElement('p');
  message.textContent = text;
  const dismiss = document.createElement('button');
  dismiss.type = 'button';
  dismiss.textContent = '×';
  dismiss.setAttribute('aria-label', 'Dismiss');
  dismiss.addEventListener('click', () => item.remove());
  item.append(message, dismiss);
  $('#toasts').append(item);
  if (kind !== 'error') setTimeout(() => item.remove(), SUCCESS_TOAST_MS);
}

// ---------------------------------------------------------------------------------------------
// For tests and the curious, from the browser console

window.vapor = Object.freeze({
  // The steps held for a watched job (ascending), the non-finite ones, how many points a
  // replay filled in and how many duplicates were dropped.
  points(id) {
    const p = watches.get(id)?.points;
    return p ? { steps: [...p.steps], nonfinite: [...p.nonfinite.keys()],
                 replayed: p.replayed, duplicates: p.duplicates } : null;
  },
  // How many points the job's chart currently draws.
  renderedPoints(id) {
    return watches.get(id)?.chart?.data[0].length ?? 0;
  },
  // The named scalars of a watched job's card: those drawn with the loss, those with a small
  // chart of their own, and how many points each small chart draws.
  scalars(id) {
    const w = watches.get(id);
    if (!w) return null;
    const small = {};
    for (const [name, chart] of w.scalarCharts) {
      small[name] = chart.data[1].filter((v) => v !== null && v !== undefined).length;
    }
    return { withLoss: [...w.lossScalars], small,
             mainSeries: w.chart.series.slice(1).map((series) => series.label) };
  },
  // The log tail a real job's card shows.
  logText: (id) => (watches.has(id) ? $('.log-text', watches.get(id).panel).textContent : null),
  // The jobs the overview draws, in series order, and the points of each.
  overview: () => ({
    ids: [...overview.ids],
    labels: overview.chart ? overview.chart.series.slice(1).map((series) => series.label) : [],
    points: Object.fromEntries(overview.ids.map((id) => [id,
                                                        overview.curves.get(id).steps.length])),
  }),
  // Where a job's curve on the overview passes mid-way, in page coordinates.
  overviewCurvePosition(id) {
    const u = overview.chart;
    const index = overview.ids.indexOf(id);
    if (!u || index < 0) return null;
    const values = u.data[index + 1];
    const drawn = values.flatMap((value, at) => (value === null || value === undefined ? []
                                                                                       : [at]));
    if (!drawn.length) return null;
    const last = drawn[Math.floor(drawn.length / 2)];
    const box = u.over.getBoundingClientRect();
    return { x: box.left + u.valToPos(u.data[0][last], 'x'),
             y: box.top + u.valToPos(values[last], u.series[index + 1].scale) };
  },
  // How many hellos arrived: 1 + the number of reconnects.
  connections: () => helloCount,
  // Drops the feed connection as a network failure would; the page reconnects by itself.
  dropConnection() {
    socket?.close();
  },
});

overview.resize = new ResizeObserver(() => {
  const target = $('#overview');
  overview.chart?.setSize({ width: Math.max(300, target.clientWidth), height: OVERVIEW_HEIGHT });
});
overview.resize.observe($('#overview'));
// Finished jobs age out of the overview even when nothing else happens.
setInterval(overviewChanged, 60 * 1000);
connect();
