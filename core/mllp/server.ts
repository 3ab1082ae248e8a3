/**
 * MLLP listener on node:net. One decoder and one FIFO per connection; frames of
 * a connection are handled strictly one at a time, in order, and the next
 * handler starts only after the previous reply was handed to the socket.
 * Nothing a peer sends (garbage, oversized or truncated frames, resets) and
 * nothing a handler throws may crash the process or stall other connections.
 *
 * Log lines carry connection ids, remote address/port, counts and catalogue
 * codes; never payload bytes.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import type { Logger } from '../log.js';
import { hbError, isHisbridgeError } from '../errors.js';
import { scrubText } from '../mask.js';
import { DEFAULT_MAX_FRAME_BYTES, MllpFrameDecoder, encodeFrame, type FrameEvent } from './framing.js';
import { Fifo } from './fifo.js';
import { concatYielding } from '../cooperative.js';
import type {
  MllpBadFrameEvent, MllpConnection, MllpConnectionStats, MllpServer, MllpServerOptions, MllpServerStats,
} from './types.js';

export type {
  MllpBadFrameEvent, MllpConnection, MllpConnectionStats, MllpServer, MllpServerOptions, MllpServerStats,
} from './types.js';

type Item = { kind: 'frame'; frame: Buffer } | { kind: 'frame-parts'; parts: Buffer[]; bytes: number } | { kind: 'bad'; event: MllpBadFrameEvent };

interface ConnState {
  info: MllpConnection;
  socket: net.Socket;
  decoder: MllpFrameDecoder;
  queue: Fifo<Item>;
  busy: boolean;
  closed: boolean;
  /** The peer half-closed: finish the queue, then end our side. */
  readEnded: boolean;
  /** Socket paused because its queue is over maxQueuedFrames. */
  queueFull: boolean;
  socketPaused: boolean;
  idleWaiters: (() => void)[];
  closeWaiters: (() => void)[];
  stats: MllpConnectionStats;
  openedAt: number;
  /** Last completed frame or written reply (epoch ms): what the idle timer measures. */
  lastActivity: number;
  idleTimer: NodeJS.Timeout | undefined;
  /** Runs while a frame is open; `frameMark` is the decoder's framesEnded when it was started. */
  frameTimer: NodeJS.Timeout | undefined;
  frameMark: number;
  /** The frame timer fired: never read from this socket again. */
  frameTimedOut: boolean;
}

const DEFAULT_IDLE_TIMEOUT_MS = 10 * 60 * 1000;
const DEFAULT_MAX_QUEUED = 64;
const DEFAULT_CLOSE_GRACE_MS = 5000;
const DEFAULT_FRAME_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_CONNECTIONS = 512;
/** A frame bigger than this is joined from its pieces over several event-loop turns (issue 11). */
const JOIN_IN_TURNS_ABOVE = 1024 * 1024;
/** At most one warn line about refused connections per listener in this period. */
const REFUSED_LOG_EVERY_MS = 10_000;

/** Creates (does not start) an MLLP listener. Options are checked here, not on the first connection. */
export function createMllpServer(opts: MllpServerOptions): MllpServer {
  return new Server(opts);
}

function positiveInt(v: number | undefined, dflt: number, name: string, allowZero = false): number {
  const n = v ?? dflt;
  if (!Number.isInteger(n) || n < (allowZero ? 0 : 1)) throw new RangeError(`${name} must be ${allowZero ? 'a non-negative' : 'a positive'} integer (got ${v})`);
  return n;
}

function errDetail(err: unknown): string {
  if (isHisbridgeError(err)) return `${err.code}: ${scrubText(err.message)}`;
  if (err instanceof Error) return scrubText(err.message);
  return scrubText(String(err));
}

class Server extends EventEmitter implements MllpServer {
  readonly name: string;
  readonly #opts: MllpServerOptions;
  readonly #log: Logger;
  readonly #maxFrameBytes: number;
  readonly #idleTimeoutMs: number;
  readonly #maxQueued: number;
  readonly #frameTimeoutMs: number;
  readonly #maxConnections: number;
  readonly #conns = new Set<ConnState>();
  #server: net.Server | null = null;
  #nextId = 1;
  #paused = false;
  #closing: Promise<void> | null = null;
  /** Set before the first await of close(): from then on nothing new is read. */
  #stopping = false;
  #framesHandled = 0;
  #refused = 0;
  /** Refused since the last warn line, and when that line was written. */
  #refusedUnlogged = 0;
  #refusedLoggedAt = 0;
  #refusedLogTimer: NodeJS.Timeout | undefined;
  #frameTimeouts = 0;

  constructor(opts: MllpServerOptions) {
    super();
    this.name = opts.name;
    this.#opts = opts;
    this.#maxFrameBytes = positiveInt(opts.maxFrameBytes, DEFAULT_MAX_FRAME_BYTES, 'maxFrameBytes');
    this.#idleTimeoutMs = positiveInt(opts.idleTimeoutMs, DEFAULT_IDLE_TIMEOUT_MS, 'idleTimeoutMs', true);
    this.#maxQueued = positiveInt(opts.maxQueuedFrames, DEFAULT_MAX_QUEUED, 'maxQueuedFrames');
    this.#frameTimeoutMs = positiveInt(opts.frameTimeoutMs, DEFAULT_FRAME_TIMEOUT_MS, 'frameTimeoutMs', true);
    this.#maxConnections = positiveInt(opts.maxConnections, DEFAULT_MAX_CONNECTIONS, 'maxConnections');
    // The engine already binds `listener` on its child logger; avoid a duplicate key.
    this.#log = 'listener' in opts.log.bindings() ? opts.log : opts.log.child({ listener: opts.name });
  }

  get connectionCount(): number {
    return this.#conns.size;
  }

  get listening(): boolean {
    return this.#server?.listening === true && !this.#stopping;
  }

  get framesHandled(): number {
    return this.#framesHandled;
  }

  stats(): MllpServerStats {
    let queuedFrames = 0;
    let pausedConnections = 0;
    for (const c of this.#conns) {
      queuedFrames += c.queue.length;
      if (c.socketPaused) pausedConnections++;
    }
    return {
      connections: this.#conns.size, queuedFrames, pausedConnections, framesHandled: this.#framesHandled,
      refusedConnections: this.#refused, frameTimeouts: this.#frameTimeouts,
    };
  }

  listen(): Promise<{ host: string; port: number }> {
    if (this.#server) return Promise.reject(new Error(`MLLP listener ${this.name} is already started`));
    const server = this.#createServer();
    // node:net closes connections over the cap itself, right after accept, and reports each with 'drop'.
    server.maxConnections = this.#maxConnections;
    server.on('drop', (d?: { remoteAddress?: string; remotePort?: number }) => this.#onRefused(d));
    this.#server = server;
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => {
        this.#server = null;
        reject(err);
      };
      server.once('error', onError);
      server.listen(this.#opts.port, this.#opts.host, () => {
        server.off('error', onError);
        server.on('error', (err) => this.#log.error({ code: 'MLLP_E_SOCKET', err: { message: err.message } }, 'mllp listener error'));
        const addr = server.address() as net.AddressInfo;
        resolve({ host: addr.address, port: addr.port });
      });
    });
  }

  /**
   * Plain TCP, or TLS when `tls` is set. Either way every accepted socket goes
   * through #accept (framing, ordering, timeouts); with TLS it is handed over
   * only after a successful handshake, so a refused client never reaches it.
   */
  #createServer(): net.Server {
    const onSocket = (socket: net.Socket): void => this.#accept(socket);
    if (!this.#opts.tls) return net.createServer({ allowHalfOpen: true, noDelay: true }, onSocket);
    const server = tls.createServer(
      { ...this.#opts.tls, allowHalfOpen: true, noDelay: true, handshakeTimeout: this.#opts.tlsHandshakeTimeoutMs ?? 30_000 },
      onSocket,
    );
    // The peer's address, read while the TCP socket is open: a refused TLS socket may already be torn down.
    const peers = new WeakMap<net.Socket, { address: string; port: number }>();
    server.on('connection', (raw: net.Socket) => peers.set(raw, { address: raw.remoteAddress ?? '', port: raw.remotePort ?? 0 }));
    server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: tls.TLSSocket) => {
      const raw = (socket as unknown as { _parent?: net.Socket })._parent;
      const peer = (raw && peers.get(raw)) ?? { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 };
      // The reason is OpenSSL's code (no certificate, self-signed, unknown CA...), never data from the peer.
      // A certificate that fails verification shows as a hang-up with the verdict on the socket.
      const verdict = socket.authorizationError ? String((socket.authorizationError as NodeJS.ErrnoException).code ?? socket.authorizationError) : '';
      const reason = verdict || err.code || scrubText(err.message).slice(0, 120);
      this.#log.warn(
        { code: 'MLLP_E_TLS_HANDSHAKE', remoteAddress: peer.address, remotePort: peer.port, reason },
        hbError('MLLP_E_TLS_HANDSHAKE', { detail: reason }).message,
      );
      // With a tlsClientError listener node leaves the socket open (a stalled handshake would hold it forever).
      socket.destroy();
      raw?.destroy();
    });
    return server;
  }

  /** Stops reading from every socket and stops handing queued frames to the handler until resumeAll(). */
  pauseAll(): void {
    this.#paused = true;
    for (const c of this.#conns) this.#updateFlow(c);
  }

  resumeAll(): void {
    this.#paused = false;
    for (const c of this.#conns) {
      this.#updateFlow(c);
      void this.#drain(c);
    }
  }

  close(graceMs = DEFAULT_CLOSE_GRACE_MS): Promise<void> {
    this.#stopping = true;
    this.#closing ??= this.#shutdown(graceMs);
    return this.#closing;
  }

  async #shutdown(graceMs: number): Promise<void> {
    clearTimeout(this.#refusedLogTimer);
    this.#flushRefusedLog();
    const server = this.#server;
    const serverClosed = server
      ? new Promise<void>((resolve) => server.close(() => resolve()))
      : Promise.resolve();
    const deadline = Date.now() + Math.max(0, graceMs);
    for (const c of this.#conns) this.#updateFlow(c);
    const conns = [...this.#conns];
    await raceDeadline(Promise.all(conns.map((c) => this.#whenIdle(c))), deadline);
    // Reading is paused, so the peer's FIN would go unseen: close once our replies are flushed.
    for (const c of conns) {
      if (c.closed) continue;
      if (c.socket.writable) {
        c.socket.once('finish', () => c.socket.destroy());
        c.socket.end();
      } else c.socket.destroy();
    }
    await raceDeadline(Promise.all(conns.map((c) => this.#whenClosed(c))), deadline);
    for (const c of conns) if (!c.closed) c.socket.destroy();
    await serverClosed;
  }

  #accept(socket: net.Socket): void {
    const info: MllpConnection = {
      id: this.#nextId++,
      remoteAddress: socket.remoteAddress ?? '',
      remotePort: socket.remotePort ?? 0,
      listener: this.name,
    };
    const c: ConnState = {
      info,
      socket,
      decoder: new MllpFrameDecoder({ maxFrameBytes: this.#maxFrameBytes, joinAbove: JOIN_IN_TURNS_ABOVE }),
      queue: new Fifo<Item>(),
      busy: false,
      closed: false,
      readEnded: false,
      queueFull: false,
      socketPaused: false,
      idleWaiters: [],
      closeWaiters: [],
      stats: { frames: 0, replies: 0, bytesIn: 0, garbageBytes: 0, badFrames: 0, handlerErrors: 0, dropped: 0, durationMs: 0 },
      openedAt: Date.now(),
      lastActivity: Date.now(),
      idleTimer: undefined,
      frameTimer: undefined,
      frameMark: -1,
      frameTimedOut: false,
    };
    if (this.#stopping) {
      socket.destroy();
      return;
    }
    this.#conns.add(c);
    socket.setNoDelay(true);
    this.#armIdle(c, this.#idleTimeoutMs);
    socket.on('data', (chunk: Buffer) => this.#onData(c, chunk));
    socket.on('end', () => this.#onEnd(c));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // Resets and broken pipes are ordinary peer behaviour; 'close' follows and cleans up.
      const routine = err.code === 'ECONNRESET' || err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED';
      this.#log[routine ? 'debug' : 'warn'](
        { code: 'MLLP_E_SOCKET', conn: info.id, remoteAddress: info.remoteAddress, remotePort: info.remotePort, errno: err.code },
        hbError('MLLP_E_SOCKET', { detail: err.code ?? scrubText(err.message) }).message,
      );
    });
    socket.on('close', () => this.#onClose(c));
    this.#updateFlow(c);
    this.#log.info(
      { conn: info.id, remoteAddress: info.remoteAddress, remotePort: info.remotePort, connections: this.#conns.size },
      'mllp connection open',
    );
    this.#emitSafely('connection', info);
  }

  #onData(c: ConnState, chunk: Buffer): void {
    c.stats.bytesIn += chunk.length;
    this.#onEvents(c, c.decoder.push(chunk));
    this.#watchFrame(c);
  }

  #onEnd(c: ConnState): void {
    c.readEnded = true;
    this.#onEvents(c, c.decoder.end());
    this.#watchFrame(c);
    this.#maybeFinish(c);
  }

  /**
   * Starts the frame timer when a frame opens, and stops it when no frame is
   * open. A frame that ends and a next one that opens in the same chunk get a
   * fresh timer; bytes dripping into the same frame do not.
   */
  #watchFrame(c: ConnState): void {
    if (this.#frameTimeoutMs === 0 || c.closed) return;
    if (!c.decoder.inFrame) {
      if (c.frameTimer) clearTimeout(c.frameTimer);
      c.frameTimer = undefined;
      return;
    }
    if (c.frameTimer && c.frameMark === c.decoder.framesEnded) return;
    if (c.frameTimer) clearTimeout(c.frameTimer);
    c.frameMark = c.decoder.framesEnded;
    c.frameTimer = setTimeout(() => this.#onFrameTimeout(c), this.#frameTimeoutMs);
    c.frameTimer.unref();
  }

  #onFrameTimeout(c: ConnState): void {
    c.frameTimer = undefined;
    if (c.closed || !c.decoder.inFrame) return;
    // We stopped reading (back-pressure, full queue): the frame is late because of us, not the peer.
    if (c.socketPaused) {
      c.frameTimer = setTimeout(() => this.#onFrameTimeout(c), this.#frameTimeoutMs);
      c.frameTimer.unref();
      return;
    }
    this.#frameTimeouts++;
    const bytes = c.decoder.pendingBytes;
    this.#log.warn(
      { code: 'MLLP_E_FRAME_TIMEOUT', conn: c.info.id, remoteAddress: c.info.remoteAddress, remotePort: c.info.remotePort, bytes, ms: this.#frameTimeoutMs },
      hbError('MLLP_E_FRAME_TIMEOUT', { ms: this.#frameTimeoutMs, count: bytes }).message,
    );
    // The open frame is dropped unanswered; frames already complete are still answered, then the connection closes.
    c.decoder.end();
    c.readEnded = true;
    c.frameTimedOut = true;
    this.#updateFlow(c);
    const close = setTimeout(() => c.socket.destroy(), DEFAULT_CLOSE_GRACE_MS);
    close.unref();
    void this.#whenIdle(c).then(() => {
      if (c.closed) return;
      c.socket.once('finish', () => c.socket.destroy());
      if (c.socket.writable) c.socket.end();
      else c.socket.destroy();
    });
  }

  /** node:net dropped a connection over maxConnections. One warn line per period, with the count. */
  #onRefused(d?: { remoteAddress?: string; remotePort?: number }): void {
    this.#refused++;
    this.#refusedUnlogged++;
    this.#emitSafely('refused', { remoteAddress: d?.remoteAddress ?? '', remotePort: d?.remotePort ?? 0 });
    const now = Date.now();
    if (now - this.#refusedLoggedAt >= REFUSED_LOG_EVERY_MS) {
      this.#flushRefusedLog(d?.remoteAddress);
    } else if (!this.#refusedLogTimer) {
      this.#refusedLogTimer = setTimeout(() => {
        this.#refusedLogTimer = undefined;
        this.#flushRefusedLog();
      }, this.#refusedLoggedAt + REFUSED_LOG_EVERY_MS - now);
      this.#refusedLogTimer.unref();
    }
  }

  #flushRefusedLog(lastAddress?: string): void {
    if (this.#refusedUnlogged === 0) return;
    const count = this.#refusedUnlogged;
    this.#refusedUnlogged = 0;
    this.#refusedLoggedAt = Date.now();
    this.#log.warn(
      { code: 'MLLP_E_TOO_MANY_CONNECTIONS', refused: count, refusedTotal: this.#refused, limit: this.#maxConnections, connections: this.#conns.size, ...(lastAddress ? { remoteAddress: lastAddress } : {}) },
      hbError('MLLP_E_TOO_MANY_CONNECTIONS', { count, limit: this.#maxConnections }).message,
    );
  }

  #onEvents(c: ConnState, events: FrameEvent[]): void {
    if (events.length === 0) return;
    const where = { conn: c.info.id, remoteAddress: c.info.remoteAddress, remotePort: c.info.remotePort };
    for (const ev of events) {
      switch (ev.kind) {
        case 'frame':
          c.stats.frames++;
          c.lastActivity = Date.now();
          c.queue.push({ kind: 'frame', frame: ev.frame });
          break;
        case 'frame-parts':
          c.stats.frames++;
          c.lastActivity = Date.now();
          c.queue.push({ kind: 'frame-parts', parts: ev.parts, bytes: ev.bytes });
          break;
        case 'garbage':
          c.stats.garbageBytes += ev.bytes;
          this.#log.warn({ code: 'MLLP_E_GARBAGE', ...where, bytes: ev.bytes }, hbError('MLLP_E_GARBAGE', { count: ev.bytes }).message);
          if (this.#opts.onBadFrame) c.queue.push({ kind: 'bad', event: { kind: 'garbage', bytes: ev.bytes } });
          break;
        case 'too-large':
          c.stats.badFrames++;
          c.lastActivity = Date.now();
          this.#log.warn(
            { code: 'MLLP_E_FRAME_TOO_LARGE', ...where, bytes: ev.bytes, limit: this.#maxFrameBytes },
            hbError('MLLP_E_FRAME_TOO_LARGE', { limit: this.#maxFrameBytes }).message,
          );
          c.queue.push({ kind: 'bad', event: { kind: 'too-large', head: ev.head, bytes: ev.bytes } });
          break;
        case 'truncated':
          c.stats.badFrames++;
          this.#log.warn({ code: 'MLLP_E_TRUNCATED', ...where, bytes: ev.bytes }, hbError('MLLP_E_TRUNCATED', { count: ev.bytes }).message);
          if (this.#opts.onBadFrame) c.queue.push({ kind: 'bad', event: { kind: 'truncated', bytes: ev.bytes } });
          break;
      }
    }
    this.#updateFlow(c);
    void this.#drain(c);
  }

  /** Pauses or resumes one socket from the three reasons to stop reading. */
  #updateFlow(c: ConnState): void {
    if (c.closed) return;
    if (c.queue.length > this.#maxQueued) c.queueFull = true;
    else if (c.queue.length <= this.#maxQueued >> 1) c.queueFull = false;
    const pause = this.#paused || c.queueFull || this.#stopping || c.frameTimedOut;
    if (pause && !c.socketPaused) {
      c.socketPaused = true;
      c.socket.pause();
    } else if (!pause && c.socketPaused) {
      c.socketPaused = false;
      c.socket.resume();
    }
  }

  async #drain(c: ConnState): Promise<void> {
    if (c.busy) return;
    c.busy = true;
    try {
      let item: Item | undefined;
      // While paused (engine back-pressure) frames already read stay queued, unanswered: memory stays bounded by the read-ahead.
      while (!c.closed && !this.#paused && (item = c.queue.shift()) !== undefined) {
        this.#updateFlow(c);
        // A big frame's pieces are joined over several event-loop turns (issue 11), in queue order.
        const reply = item.kind === 'frame' ? await this.#handle(c, item.frame) : item.kind === 'frame-parts' ? await this.#handle(c, await concatYielding(item.parts, item.bytes)) : this.#badFrameReply(c, item.event);
        if (reply && item.kind === 'bad' && item.event.kind === 'truncated') continue;
        if (Array.isArray(reply)) {
          for (const r of reply) if (!c.closed) await this.#write(c, encodeFrame(r));
        } else if (reply && !c.closed) await this.#write(c, encodeFrame(reply));
      }
    } catch (err) {
      // Only a bug in this file can land here; keep the process and the other connections alive.
      this.#log.error({ code: 'MLLP_E_HANDLER', conn: c.info.id, detail: errDetail(err) }, 'mllp connection loop failed');
      c.socket.destroy();
    } finally {
      c.busy = false;
    }
    this.#updateFlow(c);
    this.#maybeFinish(c);
  }

  async #handle(c: ConnState, frame: Buffer): Promise<Buffer | Buffer[] | null> {
    try {
      const reply = await this.#opts.handler(frame, c.info);
      this.#framesHandled++;
      return reply;
    } catch (err) {
      this.#framesHandled++;
      c.stats.handlerErrors++;
      this.#log.error(
        { code: 'MLLP_E_HANDLER', conn: c.info.id, remoteAddress: c.info.remoteAddress, remotePort: c.info.remotePort },
        hbError('MLLP_E_HANDLER', { detail: errDetail(err) }).message,
      );
      if (!this.#opts.onHandlerError) return null;
      try {
        return this.#opts.onHandlerError(err, frame, c.info);
      } catch (err2) {
        this.#log.error({ code: 'MLLP_E_HANDLER', conn: c.info.id }, `onHandlerError failed: ${errDetail(err2)}`);
        return null;
      }
    }
  }

  #badFrameReply(c: ConnState, event: MllpBadFrameEvent): Buffer | null {
    if (!this.#opts.onBadFrame) return null;
    try {
      return this.#opts.onBadFrame(event, c.info);
    } catch (err) {
      this.#log.error({ code: 'MLLP_E_HANDLER', conn: c.info.id, kind: event.kind }, `onBadFrame failed: ${errDetail(err)}`);
      return null;
    }
  }

  /** Writes one reply and waits for the socket buffer to drain when it is full, so a peer that never reads cannot grow our memory. */
  #write(c: ConnState, data: Buffer): Promise<void> {
    if (c.closed || !c.socket.writable) return Promise.resolve();
    c.stats.replies++;
    c.lastActivity = Date.now();
    if (c.socket.write(data)) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        c.socket.off('drain', done);
        c.socket.off('close', done);
        resolve();
      };
      c.socket.on('drain', done);
      c.socket.on('close', done);
    });
  }

  /**
   * The idle timer: measured from the last completed frame or reply, not from
   * the last byte (node's socket timeout), so an open frame fed one byte at a
   * time does not keep a connection alive.
   */
  #armIdle(c: ConnState, ms: number): void {
    if (this.#idleTimeoutMs === 0 || c.closed) return;
    c.idleTimer = setTimeout(() => this.#onIdleTimer(c), Math.max(1, ms));
    c.idleTimer.unref();
  }

  #onIdleTimer(c: ConnState): void {
    c.idleTimer = undefined;
    if (c.closed) return;
    const left = c.lastActivity + this.#idleTimeoutMs - Date.now();
    if (left > 0) return this.#armIdle(c, left);
    // Not idle when we are the slow side: a frame in the handler or reading paused by us.
    if (c.busy || c.queue.length > 0 || c.socketPaused) return this.#armIdle(c, this.#idleTimeoutMs);
    this.#log.info(
      { code: 'MLLP_E_IDLE_TIMEOUT', conn: c.info.id, remoteAddress: c.info.remoteAddress, remotePort: c.info.remotePort, ms: this.#idleTimeoutMs },
      hbError('MLLP_E_IDLE_TIMEOUT', { ms: this.#idleTimeoutMs }).message,
    );
    c.socket.destroy();
  }

  /** Ends our side once the peer half-closed (or we are shutting down) and every queued reply is written. */
  #maybeFinish(c: ConnState): void {
    if (c.busy || c.queue.length > 0) return;
    const waiters = c.idleWaiters.splice(0);
    for (const w of waiters) w();
    if (c.readEnded && !c.closed && c.socket.writable) c.socket.end();
  }

  #whenIdle(c: ConnState): Promise<void> {
    if (c.closed || (!c.busy && c.queue.length === 0)) return Promise.resolve();
    return new Promise((resolve) => c.idleWaiters.push(resolve));
  }

  #whenClosed(c: ConnState): Promise<void> {
    if (c.closed) return Promise.resolve();
    return new Promise((resolve) => c.closeWaiters.push(resolve));
  }

  /** A throwing event listener is the caller's bug; it must not take the socket callbacks down with it. */
  #emitSafely(event: 'connection' | 'disconnect' | 'refused', ...args: unknown[]): void {
    try {
      this.emit(event, ...args);
    } catch (err) {
      this.#log.error({ code: 'MLLP_E_HANDLER', event }, `${event} listener failed: ${errDetail(err)}`);
    }
  }

  #onClose(c: ConnState): void {
    if (c.closed) return;
    c.closed = true;
    if (c.idleTimer) clearTimeout(c.idleTimer);
    if (c.frameTimer) clearTimeout(c.frameTimer);
    c.stats.dropped = c.queue.length;
    c.queue.clear();
    c.stats.durationMs = Date.now() - c.openedAt;
    this.#conns.delete(c);
    const s = c.stats;
    this.#log[s.dropped > 0 ? 'warn' : 'info'](
      {
        conn: c.info.id, remoteAddress: c.info.remoteAddress, remotePort: c.info.remotePort,
        frames: s.frames, replies: s.replies, bytesIn: s.bytesIn, garbageBytes: s.garbageBytes, badFrames: s.badFrames,
        handlerErrors: s.handlerErrors, dropped: s.dropped, durationMs: s.durationMs, connections: this.#conns.size,
      },
      'mllp connection closed',
    );
    for (const w of c.idleWaiters.splice(0)) w();
    for (const w of c.closeWaiters.splice(0)) w();
    this.#emitSafely('disconnect', c.info, { ...s });
  }
}

/** Waits for `p` but not past `deadline` (epoch ms); never rejects. */
async function raceDeadline(p: Promise<unknown>, deadline: number): Promise<void> {
  const ms = deadline - Date.now();
  if (ms <= 0) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    p.catch(() => undefined),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]);
  clearTimeout(timer);
}
