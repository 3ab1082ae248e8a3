/**
 * MLLP client for `hisbridge send`, the tests and the benchmark. Pipelining is
 * allowed: replies are matched to requests in FIFO order, which is what MLLP
 * guarantees on one connection. Every failure is a catalogued error; after a
 * timeout or a lost connection the client is broken and refuses new sends,
 * because the FIFO can no longer be trusted to line replies up.
 */
import net from 'node:net';
import tls from 'node:tls';
import { hbError, type HisbridgeError } from '../errors.js';
import { DEFAULT_MAX_FRAME_BYTES, MllpFrameDecoder, encodeFrame, type FrameEvent } from './framing.js';
import { Fifo } from './fifo.js';

export interface MllpClientOptions {
  /**
   * Longest wait for the next ACK while any request is outstanding (default
   * 30 s; 0 = none). The clock restarts on every ACK, so a long pipelined
   * batch is judged on progress, not on its total time.
   */
  timeoutMs?: number;
  /** Longest wait for the TCP connection (default 10 s). */
  connectTimeoutMs?: number;
  /** Largest accepted ACK payload (default 16 MiB). */
  maxFrameBytes?: number;
  /**
   * Speak MLLP inside TLS: `ca` to trust (else the system CAs), and `cert` +
   * `key` for a listener that asks for a client certificate. The server's
   * certificate is always verified against the host name or IP.
   */
  tls?: tls.ConnectionOptions;
}

interface Pending {
  resolve: (ack: Buffer) => void;
  reject: (err: HisbridgeError) => void;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** `ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED` -> `certificate required`. */
function tlsAlert(code: string): string {
  const m = /ALERT_(.+)$/.exec(code);
  return (m ? m[1]! : code.replace(/^ERR_SSL_/, '')).toLowerCase().replace(/_/g, ' ');
}

export class MllpClient {
  readonly #socket: net.Socket;
  readonly #decoder: MllpFrameDecoder;
  readonly #pending = new Fifo<Pending>();
  readonly #timeoutMs: number;
  #timer: NodeJS.Timeout | undefined;
  #broken: HisbridgeError | null = null;
  #closed: Promise<void>;

  private constructor(socket: net.Socket, opts: MllpClientOptions) {
    this.#socket = socket;
    this.#timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#decoder = new MllpFrameDecoder({ maxFrameBytes: opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES });
    this.#closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onEvents(this.#decoder.push(chunk)));
    socket.on('end', () => {
      this.#onEvents(this.#decoder.end());
      this.#fail(hbError('MLLP_E_CLOSED', { pending: this.#pending.length }));
      socket.end();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // Under TLS 1.3 the server checks our certificate after our side of the handshake is done:
      // its refusal arrives as an alert here, and it should say so rather than "connection closed".
      if (err.code?.startsWith('ERR_SSL_')) this.#fail(hbError('MLLP_E_TLS_REFUSED', { pending: this.#pending.length, detail: tlsAlert(err.code) }, { cause: err }));
      else this.#fail(hbError('MLLP_E_CLOSED', { pending: this.#pending.length }, { cause: err }));
    });
    socket.on('close', () => this.#fail(hbError('MLLP_E_CLOSED', { pending: this.#pending.length })));
  }

  /** Opens a connection; refusal, unreachable host or connect timeout reject with MLLP_E_CONNECT. */
  static connect(host: string, port: number, opts: MllpClientOptions = {}): Promise<MllpClient> {
    const target = `${host}:${port}`;
    const connectTimeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    return new Promise((resolve, reject) => {
      const socket = opts.tls
        ? tls.connect({ ...opts.tls, host, port, ...(net.isIP(host) ? {} : { servername: host }) })
        : net.connect({ host, port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(hbError('MLLP_E_CONNECT', { target, detail: `timed out after ${connectTimeoutMs} ms` }));
      }, connectTimeoutMs);
      socket.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(hbError('MLLP_E_CONNECT', { target, detail: err.code ?? err.message }, { cause: err }));
      });
      socket.once(opts.tls ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new MllpClient(socket, opts));
      });
    });
  }

  /** Requests sent and not yet answered. */
  get pending(): number {
    return this.#pending.length;
  }

  /** True after a timeout, a lost connection or close(): every send rejects. */
  get broken(): boolean {
    return this.#broken !== null;
  }

  /**
   * Sends one message (a string is encoded as UTF-8; pass a Buffer for any
   * other charset) and resolves with the ACK payload, unframed. Several sends
   * may be in flight; they resolve in the order they were made.
   */
  send(payload: Buffer | string): Promise<Buffer> {
    if (this.#broken) return Promise.reject(this.#broken);
    const bytes = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
    return new Promise((resolve, reject) => {
      this.#pending.push({ resolve, reject });
      if (this.#pending.length === 1) this.#arm();
      this.#socket.write(encodeFrame(bytes));
    });
  }

  /**
   * Sends one block that holds several messages and resolves with the
   * `replies` frames the listener answers it with (one ACK per message), in
   * order. Only for a peer known to answer that way: an extra or missing
   * frame would shift every later reply.
   */
  sendBlock(payload: Buffer | string, replies: number): Promise<Buffer[]> {
    if (this.#broken) return Promise.reject(this.#broken);
    if (!Number.isInteger(replies) || replies < 1) return Promise.reject(new RangeError(`replies must be a positive integer (got ${replies})`));
    const bytes = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
    const all: Promise<Buffer>[] = [];
    for (let i = 0; i < replies; i++) all.push(new Promise((resolve, reject) => this.#pending.push({ resolve, reject })));
    if (this.#pending.length === replies) this.#arm();
    this.#socket.write(encodeFrame(bytes));
    return Promise.all(all);
  }

  /** Closes the connection; outstanding sends reject with MLLP_E_CLOSED. Never rejects. */
  close(): Promise<void> {
    this.#fail(hbError('MLLP_E_CLOSED', { pending: this.#pending.length }));
    if (!this.#socket.destroyed) {
      this.#socket.end();
      // A peer that never closes its side must not keep us waiting.
      const t = setTimeout(() => this.#socket.destroy(), 1000);
      t.unref();
    }
    return this.#closed;
  }

  #onEvents(events: FrameEvent[]): void {
    for (const ev of events) {
      if (ev.kind === 'frame') {
        const p = this.#pending.shift();
        // An ACK nobody asked for is dropped; it cannot be matched to anything.
        p?.resolve(ev.frame);
      } else if (ev.kind === 'too-large') {
        this.#pending.shift()?.reject(hbError('MLLP_E_FRAME_TOO_LARGE', { limit: this.#decoder.maxFrameBytes }));
      }
    }
    if (events.some((e) => e.kind === 'frame' || e.kind === 'too-large')) {
      if (this.#pending.length > 0) this.#arm();
      else this.#disarm();
    }
  }

  #arm(): void {
    if (this.#timeoutMs <= 0) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#fail(hbError('MLLP_E_TIMEOUT', { ms: this.#timeoutMs }));
      this.#socket.destroy();
    }, this.#timeoutMs);
  }

  #disarm(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Marks the client broken (first reason wins) and rejects everything outstanding. */
  #fail(err: HisbridgeError): void {
    this.#disarm();
    this.#broken ??= err;
    let p: Pending | undefined;
    while ((p = this.#pending.shift()) !== undefined) p.reject(this.#broken);
  }
}
