/**
 * The `mllp` plugin's connection pool: at most `size` connections to one
 * receiver, kept open between messages. One message at a time on each
 * connection, so an ACK always belongs to the message just sent; a
 * connection that timed out, lost its peer or answered something that was
 * not the expected ACK is closed and replaced by a new one on demand.
 */
import { MllpClient, type MllpClientOptions } from '../../core/sdk.js';

type Waiter = (client: MllpClient | null) => void;

export class MllpPool {
  readonly #host: string;
  readonly #port: number;
  readonly #size: number;
  readonly #opts: MllpClientOptions;
  readonly #idle: MllpClient[] = [];
  readonly #waiters: Waiter[] = [];
  /** Connections open, opening or in use. */
  #open = 0;
  #closed = false;
  /** Connections opened so far (for tests and health: reuse means this stays small). */
  opened = 0;

  constructor(host: string, port: number, size: number, opts: MllpClientOptions) {
    this.#host = host;
    this.#port = port;
    this.#size = size;
    this.#opts = opts;
  }

  /** A connection of its own for one exchange; give it back with `release`. Rejects with MLLP_E_CONNECT when none can be opened. */
  async take(): Promise<MllpClient> {
    for (;;) {
      if (this.#closed) throw new Error('mllp pool closed');
      let c: MllpClient | undefined;
      while ((c = this.#idle.pop()) !== undefined) {
        if (!c.broken) return c;
        // The receiver closed it while idle.
        this.#open--;
        void c.close();
      }
      if (this.#open < this.#size) {
        this.#open++;
        try {
          const client = await MllpClient.connect(this.#host, this.#port, this.#opts);
          this.opened++;
          return client;
        } catch (e) {
          this.#open--;
          this.#wake(null);
          throw e;
        }
      }
      const handed = await new Promise<MllpClient | null>((resolve) => this.#waiters.push(resolve));
      if (handed) return handed;
      // null: a slot came free; loop to reuse an idle one or open one.
    }
  }

  /** Gives a connection back: kept for the next message when `healthy`, else closed. */
  release(client: MllpClient, healthy: boolean): void {
    if (!healthy || client.broken || this.#closed) {
      this.#open--;
      void client.close();
      this.#wake(null);
      return;
    }
    const w = this.#waiters.shift();
    if (w) w(client);
    else this.#idle.push(client);
  }

  #wake(client: MllpClient | null): void {
    this.#waiters.shift()?.(client);
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const w of this.#waiters.splice(0)) w(null);
    await Promise.all(this.#idle.splice(0).map((c) => c.close()));
  }
}
