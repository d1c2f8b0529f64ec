/** Throughput and latency figures from raw timings. */
import { percentile } from './stats.js';

export function perSecond(count, ms) {
  return count / (ms / 1000);
}

export function latencyFigures(samplesMs) {
  return { 'W3 p50 ms': percentile(samplesMs, 50), 'W3 p99 ms': percentile(samplesMs, 99) };
}

export const mb = (bytes) => (bytes === null ? null : bytes / 1_048_576);

