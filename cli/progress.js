'use strict';
// Progress display for long CLI commands: a bar with rate and ETA, redrawn in
// place on a terminal (stderr), and nothing at all when stderr is not a TTY
// (logs get the command's one-line summary instead).

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** 1536 -> "1.50 KiB". */
function formatBytes(n) {
  if (!Number.isFinite(n)) return '?';
  if (Math.abs(n) < 1024) return `${n} B`;
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i += 1;
  }
  const digits = Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2;
  return `${v.toFixed(digits)} ${UNITS[i]}`;
}

const pad2 = (n) => String(n).padStart(2, '0');

/** Seconds -> "m:ss" or "h:mm:ss"; "--:--" when unknown. */
function formatClock(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}:${pad2(m)}:${pad2(s % 60)}` : `${m}:${pad2(s % 60)}`;
}

/** Milliseconds -> "0.4 s" / "12 s" / "3:05". */
function formatElapsed(ms) {
  const s = ms / 1000;
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 60) return `${Math.round(s)} s`;
  return formatClock(s);
}

const RENDER_INTERVAL_MS = 100;
const JSON_INTERVAL_MS = 1000;

class Progress {
  /**
   * @param {string} label e.g. "backup"
   * @param {{ stream?: NodeJS.WriteStream, total?: number | null, now?: () => number, json?: boolean, off?: boolean }} [options]
   *   json: one JSON line per second on the stream (restic's `backup --json`), whatever the stream is;
   *   off: no bar even on a terminal (--no-progress, --quiet).
   */
  constructor(label, options = {}) {
    this.label = label;
    this.stream = options.stream || process.stderr;
    this.json = Boolean(options.json) && !options.off;
    this.enabled = !options.off && (this.json || Boolean(this.stream.isTTY));
    this.now = options.now || (() => performance.now());
    this.total = options.total ?? null;
    this.bytes = 0;
    this.percentage = null;
    this.startedAt = this.now();
    this.lastRender = -Infinity;
    this.drawn = false;
    this.timer = null;
    if (this.enabled) {
      // Keeps the clock and rate moving between updates; never keeps the process alive.
      this.timer = setInterval(() => this.render(), 500);
      this.timer.unref();
    }
  }

  /** Record progress: { bytes?, total?, percentage? } (percentage 0..100 or null). */
  update({ bytes, total, percentage } = {}) {
    if (Number.isFinite(bytes)) this.bytes = bytes;
    if (Number.isFinite(total)) this.total = total;
    if (percentage !== undefined) this.percentage = Number.isFinite(percentage) ? percentage : null;
    if (this.enabled && this.now() - this.lastRender >= RENDER_INTERVAL_MS) this.render();
  }

  /** Adds `n` bytes (for byte counters on a stream). */
  add(n) {
    this.update({ bytes: this.bytes + n });
  }

  /** 0..1, or null when neither a total nor a percentage is known. */
  fraction() {
    if (this.percentage !== null) return Math.min(1, Math.max(0, this.percentage / 100));
    if (this.total !== null && this.total > 0) return Math.min(1, this.bytes / this.total);
    if (this.total === 0) return 1;
    return null;
  }

  /** The status line for a terminal `width` columns wide (pure; used by render()). */
  line(width = 80) {
    const elapsedS = Math.max(0.001, (this.now() - this.startedAt) / 1000);
    const rate = this.bytes / elapsedS;
    const frac = this.fraction();
    const done = formatBytes(this.bytes);
    const rateText = `${formatBytes(Math.round(rate))}/s`;
    if (frac === null) {
      return `${this.label} ${done}  ${rateText}  ${formatClock(elapsedS)}`.slice(0, Math.max(1, width - 1));
    }
    let eta;
    if (frac >= 1) eta = 0;
    else if (this.total !== null && this.percentage === null && rate > 0) eta = (this.total - this.bytes) / rate;
    else if (frac > 0) eta = (elapsedS * (1 - frac)) / frac;
    else eta = NaN;
    const pct = `${String(Math.floor(frac * 100)).padStart(3)}%`;
    const amount = this.total !== null ? `${done} / ${formatBytes(this.total)}` : done;
    const tail = ` ${pct}  ${amount}  ${rateText}  ETA ${formatClock(eta)}`;
    const barWidth = Math.min(40, width - 1 - this.label.length - 3 - tail.length);
    if (barWidth < 5) return `${this.label}${tail}`.slice(0, Math.max(1, width - 1));
    const filled = Math.round(frac * barWidth);
    return `${this.label} [${'#'.repeat(filled)}${'-'.repeat(barWidth - filled)}]${tail}`;
  }

  render() {
    if (!this.enabled) return;
    if (this.json) {
      if (this.now() - this.lastRender < JSON_INTERVAL_MS) return;
      this.lastRender = this.now();
      this.stream.write(`${JSON.stringify(this.status())}\n`);
      return;
    }
    this.lastRender = this.now();
    const width = this.stream.columns || 80;
    this.stream.write(`\r${this.line(width)}\x1b[K`);
    this.drawn = true;
  }

  /** The JSON progress line: what restic's `backup --json` status messages carry, in our names. */
  status() {
    const frac = this.fraction();
    return {
      type: 'progress',
      operation: this.label,
      bytes: this.bytes,
      total: this.total,
      percentage: frac === null ? null : Math.round(frac * 10000) / 100,
      elapsedMs: Math.round(this.elapsedMs()),
    };
  }

  /** Stops redrawing and clears the bar, so the summary line starts clean (JSON: one last line). */
  finish() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.json && this.enabled) {
      this.enabled = false;
      this.stream.write(`${JSON.stringify(this.status())}\n`);
      return;
    }
    if (this.enabled && this.drawn) this.stream.write('\r\x1b[K');
    this.drawn = false;
  }

  elapsedMs() {
    return this.now() - this.startedAt;
  }
}

module.exports = { Progress, formatBytes, formatClock, formatElapsed };
