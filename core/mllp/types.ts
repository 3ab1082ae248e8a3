/**
 * Public types of the MLLP listener: its options, the connection handlers
 * see, and the server interface the engine drives.
 */
import type { TlsOptions } from 'node:tls';
import type { Logger } from '../log.js';

/** The peer of one accepted connection, as handlers see it. */
export interface MllpConnection {
  /** Unique per server, increasing. */
  readonly id: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** Name of the listener that accepted the connection. */
  readonly listener: string;
}

/** Anything the decoder did not turn into a frame. */
export interface MllpBadFrameEvent {
  kind: 'too-large' | 'garbage' | 'truncated';
  /** First 4 KiB of an oversized frame (only for `too-large`), to read its MSH. */
  head?: Buffer;
  bytes: number;
}

export interface MllpServerOptions {
  /** Listener name, used in logs and in `MllpConnection.listener`. */
  name: string;
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  /** Largest accepted frame payload; default 16 MiB. */
  maxFrameBytes?: number;
  /**
   * Close a connection that completed no frame and got no reply for this
   * long; default 10 min, 0 = never. Bytes of an unfinished frame do not
   * count as activity, so a peer dripping one byte a second is still idle.
   */
  idleTimeoutMs?: number;
  /** Drop a frame started and not finished within this time and close its connection; default 30 s, 0 = never. */
  frameTimeoutMs?: number;
  /** Open connections at most; extra ones are closed at once (rate-limited warn, `refused` event). Default 512. */
  maxConnections?: number;
  /** Frames waiting per connection before its socket is paused; default 64. */
  maxQueuedFrames?: number;
  /**
   * TLS (core/config/tls.ts loadTlsOptions): the listener speaks MLLP inside
   * TLS. With requestCert + rejectUnauthorized, a client without a
   * certificate signed by `ca` is refused at the handshake (logged
   * MLLP_E_TLS_HANDSHAKE with its address). Absent: plain TCP.
   */
  tls?: TlsOptions;
  /** Longest TLS handshake before the socket is dropped; default 30 s. */
  tlsHandshakeTimeoutMs?: number;
  log: Logger;
  /**
   * Handles one frame; resolves to the reply payload (unframed), several
   * payloads (one frame each, written in order: a block of several messages),
   * or null for no reply.
   */
  handler: (frame: Buffer, conn: MllpConnection) => Promise<Buffer | Buffer[] | null>;
  /**
   * Reply for a frame that could not be decoded (e.g. an AR for `too-large`).
   * Replies to `truncated` are dropped: the peer is gone.
   */
  onBadFrame?: (event: MllpBadFrameEvent, conn: MllpConnection) => Buffer | null;
  /** Reply after the handler threw or rejected; default: no reply (the error is logged). */
  onHandlerError?: (err: unknown, frame: Buffer, conn: MllpConnection) => Buffer | null;
}

/** Per-connection totals, reported with the `disconnect` event and in the close log line. */
export interface MllpConnectionStats {
  frames: number;
  replies: number;
  bytesIn: number;
  garbageBytes: number;
  badFrames: number;
  handlerErrors: number;
  /** Frames decoded but never handled because the connection closed first. */
  dropped: number;
  durationMs: number;
}

export interface MllpServerStats {
  connections: number;
  /** Frames decoded and waiting for the handler, all connections. */
  queuedFrames: number;
  /** Connections whose socket is not being read (back-pressure or shutdown). */
  pausedConnections: number;
  framesHandled: number;
  /** Connections refused because `maxConnections` were open, since start. */
  refusedConnections: number;
  /** Connections closed because a frame did not finish within `frameTimeoutMs`, since start. */
  frameTimeouts: number;
}

export interface MllpServer {
  readonly name: string;
  /** Open connections right now. */
  readonly connectionCount: number;
  /** True while the socket is bound and accepting. */
  readonly listening: boolean;
  /** Frames handled since start, all connections. */
  readonly framesHandled: number;
  /** A snapshot for health endpoints and tests. */
  stats(): MllpServerStats;
  /** Starts listening; resolves with the bound address (the real port when 0 was asked). */
  listen(): Promise<{ host: string; port: number }>;
  /**
   * Stops accepting, stops reading, lets frames already queued finish (up to
   * `graceMs`, default 5 s), then closes every connection.
   */
  close(graceMs?: number): Promise<void>;
  /** Engine back-pressure: stop reading from every socket (queued frames are still handled). */
  pauseAll(): void;
  resumeAll(): void;
  on(event: 'connection', listener: (conn: MllpConnection) => void): this;
  on(event: 'disconnect', listener: (conn: MllpConnection, stats: MllpConnectionStats) => void): this;
  /** A connection closed at once because `maxConnections` were open (for the refused-connections metric). */
  on(event: 'refused', listener: (peer: { remoteAddress: string; remotePort: number }) => void): this;
}
