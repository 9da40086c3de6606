// Number, time and size formatting for the live page. Pure functions: no DOM, so node:test
// tests them directly (tests/web/unit).

export function formatNumber(value, flag, format) {
  const names = { nan: 'NaN', inf: '+∞', '-inf': '−∞' };
  if (flag) return { text: names[flag] || flag, bad: true };
  if (value === null || value === undefined) return { text: '—', bad: false };
  return { text: format(value), bad: false };
}

export const formatLoss = (v) => (Math.abs(v) >= 1000 || Math.abs(v) < 0.001
  ? v.toExponential(3)
  : v.toPrecision(4));
export const formatPercent = (v) => `${(v * 100).toFixed(1)}%`;

export function formatEta(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '—';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`;
}

export function formatBytes(bytes) {
  if (!Number.isFinite(bytes)) return '';
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
