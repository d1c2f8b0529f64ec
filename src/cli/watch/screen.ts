/**
 * A frame redrawn in place on a terminal, with plain ANSI escapes: the cursor goes home, every line is
 * rewritten and cleared to its end, and whatever the previous frame left below is cleared. No flicker, no
 * alternate screen (the last frame stays visible after Ctrl-C), the cursor hidden while it runs.
 */
export const ansi = {
  home: '\x1b[H',
  clearScreen: '\x1b[2J',
  clearToLineEnd: '\x1b[K',
  clearBelow: '\x1b[J',
  hideCursor: '\x1b[?25l',
  showCursor: '\x1b[?25h',
} as const;

export interface FrameOutput {
  write(text: string): unknown;
  readonly columns?: number;
  readonly rows?: number;
}

export class Screen {
  #started = false;
  readonly #out: FrameOutput;
  readonly #restore = () => this.#out.write(ansi.showCursor);

  constructor(out: FrameOutput) {
    this.#out = out;
  }

  draw(lines: readonly string[]): void {
    if (!this.#started) {
      this.#started = true;
      // Even on an exit that skips `stop()`, give the cursor back.
      process.once('exit', this.#restore);
      this.#out.write(ansi.hideCursor + ansi.clearScreen);
    }
    const width = this.#out.columns || Infinity;
    const height = this.#out.rows || Infinity;
    let shown = lines.map((l) => fit(l, width));
    if (shown.length > height - 1) {
      const hidden = shown.length - (height - 2);
      shown = [...shown.slice(0, Math.max(0, height - 2)), fit(`… ${hidden} more line${hidden === 1 ? '' : 's'} (enlarge the terminal)`, width)];
    }
    this.#out.write(ansi.home + shown.map((l) => l + ansi.clearToLineEnd).join('\n') + '\n' + ansi.clearBelow);
  }

  /** Shows the cursor again; the last frame stays on the screen. */
  stop(): void {
    if (!this.#started) return;
    this.#started = false;
    process.off('exit', this.#restore);
    this.#restore();
  }
}

/** Cuts a line to the terminal's width, so that a long line cannot wrap and push the frame down. */
function fit(line: string, width: number): string {
  return line.length <= width ? line : `${line.slice(0, Math.max(0, width - 1))}…`;
}
