/**
 * An AbortController made on first use: most tasks never look at their signal nor get aborted, and making
 * one per task (an AbortSignal is a full EventTarget) is a noticeable share of a short task's cost.
 */
export class LazyAbortController {
  #controller: AbortController | undefined;

  get signal(): AbortSignal {
    return (this.#controller ??= new AbortController()).signal;
  }

  abort(reason?: unknown): void {
    (this.#controller ??= new AbortController()).abort(reason);
  }
}
