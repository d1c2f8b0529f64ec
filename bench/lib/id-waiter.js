/** Waits for ids announced on a LISTEN connection; an id announced before anyone waits for it is kept. */
export class IdWaiter {
  #arrived = new Set();
  #waiting = new Map();

  constructor(client, channel) {
    client.on('notification', (n) => {
      if (n.channel !== channel || !n.payload) return;
      for (const id of n.payload.split(',')) {
        const resolve = this.#waiting.get(id);
        if (resolve) {
          this.#waiting.delete(id);
          resolve();
        } else this.#arrived.add(id);
      }
    });
  }

  wait(id, timeoutMs = 30_000) {
    if (this.#arrived.delete(id)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id);
        reject(new Error(`job ${id} not done within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiting.set(id, () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
