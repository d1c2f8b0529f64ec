/**
 * A TCP proxy in front of the test PostgreSQL, for faults made for real: refuse new connections (the port
 * stops listening: ECONNREFUSED), delay them, cut the live ones, or cut one right after the client sent a
 * given statement (forwarded first, so the server runs it but the client never hears back).
 *
 * The upstream is taken from a connection string: a TCP host and port, or the Unix socket of the embedded
 * server (`?host=/socket/dir`). Clients reach the proxy at 127.0.0.1 through `url()`.
 */
import net from 'node:net';

type Upstream = { host: string; port: number } | { path: string };

interface Pair {
  client: net.Socket;
  upstream: net.Socket | undefined;
}

export class TcpProxy implements AsyncDisposable {
  /** Connections that reached the proxy (refused ones never do). */
  accepted = 0;
  readonly #upstream: Upstream;
  readonly #base: URL;
  readonly #pairs = new Set<Pair>();
  #server: net.Server | undefined;
  #port = 0;
  #delayMs = 0;
  #cutAfter: string | undefined;

  private constructor(connectionString: string) {
    this.#base = new URL(connectionString);
    this.#upstream = upstreamOf(this.#base);
  }

  static async start(connectionString: string): Promise<TcpProxy> {
    const proxy = new TcpProxy(connectionString);
    await proxy.#listen();
    return proxy;
  }

  get port(): number {
    return this.#port;
  }

  /** The target's connection string, through the proxy; optionally another database or password. */
  url(overrides: { database?: string; password?: string } = {}): string {
    const url = new URL(this.#base.href);
    url.searchParams.delete('host');
    url.hostname = '127.0.0.1';
    url.port = String(this.#port);
    if (overrides.database !== undefined) url.pathname = `/${encodeURIComponent(overrides.database)}`;
    if (overrides.password !== undefined) url.password = encodeURIComponent(overrides.password);
    return url.href;
  }

  /** New connections are refused by the kernel: the port stops listening. Live ones go on. */
  async refuse(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** New connections wait this long before the proxy connects them upstream. */
  delay(ms: number): void {
    this.#delayMs = ms;
  }

  /** Destroys every live connection, both sides. */
  cutAll(): void {
    for (const pair of this.#pairs) destroyPair(pair);
  }

  /**
   * Once: when a client sends bytes containing `text`, they are forwarded, the server side is ended after
   * them (so the server runs the statement), and the client side is destroyed before any answer.
   */
  cutAfterClientSends(text: string): void {
    this.#cutAfter = text;
  }

  /** Listening again (on the same port), with no delay. */
  async restore(): Promise<void> {
    this.#delayMs = 0;
    this.#cutAfter = undefined;
    if (!this.#server) await this.#listen();
  }

  async close(): Promise<void> {
    this.cutAll();
    await this.refuse();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #listen(): Promise<void> {
    const server = net.createServer((socket) => this.#accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#port, '127.0.0.1', () => resolve());
    });
    this.#port = (server.address() as net.AddressInfo).port;
    this.#server = server;
  }

  #accept(client: net.Socket): void {
    this.accepted += 1;
    const pair: Pair = { client, upstream: undefined };
    this.#pairs.add(pair);
    const pending: Buffer[] = [];
    client.on('error', () => {});
    client.on('close', () => {
      pair.upstream?.destroy();
      this.#pairs.delete(pair);
    });
    client.on('data', (chunk: Buffer) => {
      if (this.#cutAfter !== undefined && chunk.includes(this.#cutAfter) && pair.upstream) {
        this.#cutAfter = undefined;
        pair.upstream.end(chunk);
        client.destroy();
        return;
      }
      if (pair.upstream) pair.upstream.write(chunk);
      else pending.push(chunk);
    });
    const connect = () => {
      if (client.destroyed) return;
      const upstream = net.connect(this.#upstream);
      pair.upstream = upstream;
      upstream.on('error', () => client.destroy());
      upstream.on('close', () => client.destroy());
      upstream.on('data', (chunk: Buffer) => client.write(chunk));
      for (const chunk of pending.splice(0)) upstream.write(chunk);
    };
    if (this.#delayMs > 0) setTimeout(connect, this.#delayMs);
    else connect();
  }
}

function destroyPair(pair: Pair): void {
  pair.client.destroy();
  pair.upstream?.destroy();
}

function upstreamOf(url: URL): Upstream {
  const host = url.searchParams.get('host') ?? decodeURIComponent(url.hostname);
  const port = Number(url.port || 5432);
  if (host.startsWith('/')) return { path: `${host}/.s.PGSQL.${port}` };
  return { host: host || 'localhost', port };
}
