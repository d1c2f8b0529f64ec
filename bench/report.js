/** The report: tables (system × workload, median of the runs with min–max), ratios, and the JSON file. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { summarize } from './lib/stats.js';

/** Each metric: its workload, whether more is better, and how to print it. */
export const metrics = [
  { key: 'W1 tasks/s', workload: 'W1', better: 'higher' },
  { key: 'W2 tasks/s', workload: 'W2', better: 'higher' },
  { key: 'W3 p50 ms', workload: 'W3', better: 'lower' },
  { key: 'W3 p99 ms', workload: 'W3', better: 'lower' },
  { key: 'W4a ms', workload: 'W4', better: 'lower', title: 'W4a crash ms' },
  { key: 'W4b ms', workload: 'W4', better: 'lower', title: 'W4b hard limit ms' },
  { key: 'start ms', workload: 'idle', better: 'lower', title: 'start→ready ms' },
  { key: 'RSS primary MB', workload: 'idle', better: 'lower' },
  { key: 'RSS worker MB', workload: 'idle', better: 'lower', title: 'RSS per worker MB' },
  { key: 'USS worker MB', workload: 'idle', better: 'lower', title: 'USS (own memory) per worker MB' },
  { key: 'PSS total MB', workload: 'idle', better: 'lower', title: 'PSS all processes MB' },
];

const tables = [
  { title: 'Throughput and latency', keys: ['W1 tasks/s', 'W2 tasks/s', 'W3 p50 ms', 'W3 p99 ms'] },
  { title: 'Recovery and footprint', keys: ['W4a ms', 'W4b ms', 'start ms', 'RSS primary MB', 'RSS worker MB', 'USS worker MB', 'PSS total MB'] },
];

export function formatNumber(v) {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  const abs = Math.abs(v);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** One cell: the median, with min–max when there was more than one run; or why there is no figure. */
function cell(entry) {
  if (!entry) return '';
  if (entry.error) return 'error';
  if (entry.na) return 'n/a';
  const s = entry.summary;
  if (!s) return '–';
  return s.runs > 1 ? `${formatNumber(s.median)} (${formatNumber(s.min)}–${formatNumber(s.max)})` : formatNumber(s.median);
}

function renderTable(title, header, rows) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [`${title}`, line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** Adds summaries to every measured metric. */
export function summarizeResults(results) {
  for (const bySystem of Object.values(results)) {
    for (const entry of Object.values(bySystem)) if (entry.values) entry.summary = summarize(entry.values);
  }
}

const med = (results, system, key) => results[system]?.[key]?.summary?.median ?? null;

/** prefork's figures against the physical limits and against the best peer. */
export function computeRatios(results, systems) {
  const out = { limit: [], bestPeer: [] };
  const limits = [
    { key: 'W1 tasks/s', limit: 'raw-ipc' },
    { key: 'W2 tasks/s', limit: 'raw-tcp' },
    { key: 'W2 tasks/s', limit: 'raw-unix' },
    { key: 'W3 p50 ms', limit: 'raw-ipc' },
    { key: 'W3 p99 ms', limit: 'raw-ipc' },
  ];
  for (const { key, limit } of limits) {
    const p = med(results, 'prefork', key);
    const l = med(results, limit, key);
    if (p !== null && l !== null) out.limit.push({ metric: key, prefork: p, against: limit, value: l, ratio: p / l });
  }
  const peers = systems.filter((s) => s.peer).map((s) => s.id);
  for (const m of metrics) {
    const p = med(results, 'prefork', m.key);
    if (p === null) continue;
    let best = null;
    for (const id of peers) {
      const v = med(results, id, m.key);
      if (v === null) continue;
      if (!best || (m.better === 'higher' ? v > best.value : v < best.value)) best = { id, value: v };
    }
    if (best) out.bestPeer.push({ metric: m.key, better: m.better, prefork: p, against: best.id, value: best.value, ratio: p / best.value });
  }
  return out;
}

export function renderReport({ results, systems, ratios, runs, skipped, checks, errors, notes }) {
  const label = Object.fromEntries(systems.map((s) => [s.id, s.label]));
  const parts = [];
  for (const t of tables) {
    const keys = t.keys.filter((k) => systems.some((s) => results[s.id]?.[k]));
    if (keys.length === 0) continue;
    const header = [`${t.title} (median of ${runs} run${runs > 1 ? 's' : ''}${runs > 1 ? ', min–max' : ''})`, ...keys.map((k) => metrics.find((m) => m.key === k).title ?? k)];
    const rows = systems.filter((s) => keys.some((k) => results[s.id]?.[k])).map((s) => [s.label, ...keys.map((k) => cell(results[s.id]?.[k]))]);
    parts.push(renderTable('', header, rows).trimStart());
  }
  const fmtRatio = (r) => `${r.ratio >= 10 ? formatNumber(r.ratio) : r.ratio < 0.1 ? r.ratio.toPrecision(2) : r.ratio.toFixed(2)}×`;
  if (ratios.limit.length > 0) {
    parts.push(
      ['prefork / physical limit (throughput: share of the limit reached; latency: times the limit)',
        ...ratios.limit.map((r) => `  ${r.metric.padEnd(11)} ${formatNumber(r.prefork).padStart(9)} / ${formatNumber(r.value).padStart(9)} (${label[r.against]}) = ${fmtRatio(r)}`)].join('\n'),
    );
  }
  if (ratios.bestPeer.length > 0) {
    parts.push(
      ['prefork / best peer (throughput: >1 is faster than the peer; times, latency and memory: <1 is better)',
        ...ratios.bestPeer.map((r) => `  ${r.metric.padEnd(14)} ${formatNumber(r.prefork).padStart(9)} / ${formatNumber(r.value).padStart(9)} (${label[r.against]}) = ${fmtRatio(r)}`)].join('\n'),
    );
  }
  // The same reason for several systems or metrics is printed once.
  const na = new Map();
  for (const s of systems) {
    for (const [key, entry] of Object.entries(results[s.id] ?? {})) {
      if (!entry.na) continue;
      const byReason = na.get(entry.na) ?? new Map();
      na.set(entry.na, byReason);
      byReason.set(s.label, [...(byReason.get(s.label) ?? []), key]);
    }
  }
  if (na.size > 0) {
    const lines = [...na].map(([reason, bySystem]) => `  ${[...bySystem].map(([sys, keys]) => `${sys} ${keys.join(', ')}`).join('; ')}: ${reason}`);
    parts.push(['n/a:', ...lines].join('\n'));
  }
  if (skipped.length > 0) parts.push(['skipped:', ...skipped.map((s) => `  ${s.label}: ${s.reason}`)].join('\n'));
  const badChecks = checks.filter((c) => !c.ok);
  if (checks.length > 0) parts.push(
    badChecks.length === 0
      ? `checks: ${checks.length} W2 row counts verified (nothing lost or doubled)`
      : ['checks FAILED:', ...badChecks.map((c) => `  ${label[c.system]} run ${c.run}: ${c.rows} rows, ${c.distinct} distinct, ${c.expected} expected`)].join('\n'),
  );
  if (errors.length > 0) parts.push(['errors:', ...errors.map((e) => `  ${label[e.system] ?? e.system} ${e.workload} run ${e.run}: ${e.message}`)].join('\n'));
  if (notes.length > 0) parts.push(['notes:', ...notes.map((n) => `  ${n}`)].join('\n'));
  return parts.join('\n\n');
}

export function writeJson(report) {
  const dir = fileURLToPath(new URL('./results/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const file = `${dir}${report.startedAt.replace(/[:.]/g, '-')}.json`;
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  return file;
}
