/**
 * A progress bar on a terminal (redrawn in place on one line, at most 10 times a second); elsewhere (a
 * file, a pipe, CI) one plain line per tenth of the way.
 */
import { count, duration } from '../format.js';

export interface ProgressOutput {
  write(text: string): unknown;
  readonly isTTY?: boolean;
  readonly columns?: number;
}

export class Progress {
  readonly #out: ProgressOutput;
  readonly #label: string;
  readonly #total: number;
  readonly #started = Date.now();
  #lastDraw = 0;
  #tenths = 0;
  #finished = false;

  constructor(out: ProgressOutput, label: string, total: number) {
    this.#out = out;
    this.#label = label;
    this.#total = total;
  }

  update(done: number, note = ''): void {
    if (this.#finished || this.#total === 0) return;
    if (this.#out.isTTY) {
      const now = Date.now();
      if (now - this.#lastDraw < 100) return;
      this.#lastDraw = now;
      this.#out.write(`\r${this.#bar(done, note)}\x1b[K`);
      return;
    }
    const tenths = Math.floor((done / this.#total) * 10);
    if (tenths > this.#tenths && tenths < 10) {
      this.#tenths = tenths;
      this.#out.write(`${this.#plain(done, note)}\n`);
    }
  }

  /** The last state, then a new line. */
  finish(done: number, note = ''): void {
    if (this.#finished || this.#total === 0) return;
    this.#finished = true;
    this.#out.write(this.#out.isTTY ? `\r${this.#bar(done, note)}\x1b[K\n` : `${this.#plain(done, note)}\n`);
  }

  #plain(done: number, note: string): string {
    return `prefork: ${this.#label} ${count(done)}/${count(this.#total)} (${Math.floor((done / this.#total) * 100)}%)${note ? ` ${note}` : ''}`;
  }

  #bar(done: number, note: string): string {
    const elapsed = Date.now() - this.#started;
    const rate = elapsed > 0 ? (done / elapsed) * 1000 : 0;
    const eta = rate > 0 && done < this.#total ? ` ETA ${duration(((this.#total - done) / rate) * 1000)}` : '';
    const figures = ` ${count(done)}/${count(this.#total)} ${String(Math.floor((done / this.#total) * 100)).padStart(3)}% ${count(Math.round(rate))}/s${eta}${note ? ` ${note}` : ''}`;
    const label = `${this.#label} `;
    const room = (this.#out.columns || 80) - label.length - figures.length - 3;
    const width = Math.max(10, Math.min(40, room));
    const filled = Math.round((done / this.#total) * width);
    return `${label}[${'█'.repeat(filled)}${'░'.repeat(width - filled)}]${figures}`;
  }
}
