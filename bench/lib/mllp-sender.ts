/**
 * A minimal MLLP sender for the load generator: one connection, one message
 * in flight, ACK read by byte framing. Kept inside bench/ so the harness does
 * not depend on the client under test; it is deliberately simple (no
 * retries), and every wait is bounded.
 */
import net from 'node:net';

const VT = 0x0b;
const FS = 0x1c;
const CR = 0x0d;

export class MllpSender {
  readonly #socket: net.Socket;
  readonly #timeoutMs: number;
  #buf: Buffer = Buffer.alloc(0);
  #pending?: { resolve(b: Buffer): void; reject(e: Error): void; timer: NodeJS.Timeout };
  #closed?: Error;

  private constructor(socket: net.Socket, timeoutMs: number) {
    this.#socket = socket;
    this.#timeoutMs = timeoutMs;
    socket.setNoDelay(true);
    socket.on('data', (chunk) => this.#onData(chunk));
    socket.on('error', (e) => this.#fail(e));
    socket.on('close', () => this.#fail(new Error('connection closed')));
  }

  /** Connects to host:port; rejects after timeoutMs. */
  static connect(host: string, port: number, opts: { timeoutMs?: number } = {}): Promise<MllpSender> {
    const timeoutMs = opts.timeoutMs ?? 10_000;
    return new Promise((resolve, reject) => {
      const s = net.connect({ host, port });
      const t = setTimeout(() => {
        s.destroy();
        reject(new Error(`connect to ${host}:${port} timed out`));
      }, timeoutMs);
      s.once('connect', () => {
        clearTimeout(t);
        s.removeAllListeners('error');
        resolve(new MllpSender(s, timeoutMs));
      });
      s.once('error', (e) => {
        clearTimeout(t);
        reject(e);
      });
    });
  }

  /** Sends one already framed message and resolves with the ACK payload (without framing). */
  sendFrame(frame: Buffer): Promise<Buffer> {
    if (this.#closed) return Promise.reject(this.#closed);
    if (this.#pending) return Promise.reject(new Error('one message at a time'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.#fail(new Error(`no ACK within ${this.#timeoutMs} ms`)), this.#timeoutMs);
      this.#pending = { resolve, reject, timer };
      this.#socket.write(frame);
    });
  }

  /** Sends an unframed payload. */
  send(payload: Buffer): Promise<Buffer> {
    return this.sendFrame(Buffer.concat([Buffer.from([VT]), payload, Buffer.from([FS, CR])]));
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.#socket.destroyed) return resolve();
      this.#socket.once('close', () => resolve());
      this.#socket.end();
      setTimeout(() => this.#socket.destroy(), 1000).unref();
    });
  }

  #onData(chunk: Buffer): void {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk;
    for (;;) {
      const start = this.#buf.indexOf(VT);
      if (start < 0) {
        this.#buf = Buffer.alloc(0);
        return;
      }
      const end = this.#buf.indexOf(FS, start + 1);
      if (end < 0 || end + 1 >= this.#buf.length) return;
      const ack = this.#buf.subarray(start + 1, end);
      this.#buf = this.#buf.subarray(end + (this.#buf[end + 1] === CR ? 2 : 1));
      const p = this.#pending;
      if (!p) continue; // an unsolicited frame: nothing is waiting for it
      this.#pending = undefined;
      clearTimeout(p.timer);
      p.resolve(Buffer.from(ack));
    }
  }

  #fail(e: Error): void {
    this.#closed ??= e;
    const p = this.#pending;
    if (p) {
      this.#pending = undefined;
      clearTimeout(p.timer);
      p.reject(e);
    }
    if (!this.#socket.destroyed) this.#socket.destroy();
  }
}

/** MSA-1 of an ACK payload ('AA', 'AE'...), or '' when there is no MSA segment. */
export function ackCode(ack: Buffer): string {
  const text = ack.toString('latin1');
  const i = text.indexOf('MSA');
  if (i < 0) return '';
  return text.slice(i + 4, i + 6);
}
