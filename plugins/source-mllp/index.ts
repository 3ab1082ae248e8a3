/**
 * MLLP source (`listeners: [{ type: mllp, ... }]`, the default type): HL7 v2
 * over MLLP, plain TCP or TLS. Wraps the listener library in
 * core/mllp/server.ts; every frame goes through `ctx.submitBlock` (split,
 * the ingress port, the shared ACK builder) and its replies are written back
 * in order. Back-pressure: pauses and resumes its sockets when the engine's
 * controller says so.
 */
import { mllpListenerSchema, parseMllpListener, loadTlsOptions, errorAckFromHead, hbError, createMllpServer, type MllpServer, type JsonSchema, type RunningSource, type SourceDefinition } from '../../core/sdk.js';

/** A running MLLP listener: what the engine shows in health, the console and `hisbridge start`'s banner. */
export interface RunningMllpSource extends RunningSource {
  readonly name: string;
  readonly host: string;
  /** The bound port (the real one when 0 was asked). */
  readonly port: number;
  readonly server: MllpServer;
}

const source: SourceDefinition = {
  type: 'mllp',
  summary: 'HL7 v2 over MLLP (TCP or TLS): one ACK per message, a batch ACK per batch',
  configSchema: mllpListenerSchema as unknown as JsonSchema,
  async start(ctx): Promise<RunningMllpSource> {
    const l = parseMllpListener(ctx.config, ctx.baseDir);
    const blockOpts = { source: l.name, defaultCharset: l.charset, noRoute: l.noRoute, multiMessageBlocks: l.multiMessageBlocks, invalidBytes: l.invalidBytes };
    const server = createMllpServer({
      name: l.name,
      host: l.host,
      port: l.port,
      maxFrameBytes: l.maxFrameBytes,
      idleTimeoutMs: l.idleTimeoutMs,
      ...(l.tls ? { tls: loadTlsOptions(l.tls) } : {}),
      frameTimeoutMs: l.frameTimeoutMs,
      maxConnections: l.maxConnections,
      log: ctx.log,
      handler: async (frame) => (await ctx.submitBlock(frame, blockOpts)).replies,
      onBadFrame: (ev) => (ev.kind === 'too-large' ? errorAckFromHead(ev.head, hbError('MLLP_E_FRAME_TOO_LARGE', { limit: l.maxFrameBytes }), 'AR') : null),
      onHandlerError: (err, frame) => {
        ctx.log.error({ listener: l.name, err: { message: (err as Error).message } }, 'listener handler failed');
        return errorAckFromHead(frame.subarray(0, 4096), hbError('ENGINE_E_INTERNAL', { detail: 'message handler failed' }), 'AE');
      },
    });
    server.on('refused', () => ctx.metric('connection_refused', { listener: l.name }));
    const addr = await server.listen().catch((e: unknown) => {
      const code = (e as NodeJS.ErrnoException)?.code;
      const detail = code === 'EADDRINUSE' ? 'address already in use' : code === 'EACCES' ? 'permission denied' : code ?? (e instanceof Error ? e.message : String(e));
      throw hbError('ENGINE_E_LISTEN', { what: `listener ${l.name}`, host: l.host, port: l.port, detail }, { cause: e });
    });
    if (ctx.flow.paused) server.pauseAll();
    const unsubscribe = ctx.flow.onChange((paused) => (paused ? server.pauseAll() : server.resumeAll()));
    ctx.log.info({ listener: l.name, host: addr.host, port: addr.port, tls: l.tls ? (l.tls.requestCert ? 'mutual' : 'server') : 'off' }, 'mllp listening');
    return {
      name: l.name,
      host: l.host,
      port: addr.port,
      server,
      async close(graceMs) {
        unsubscribe();
        await server.close(graceMs);
      },
      health() {
        const live = server.listening;
        return {
          live,
          ready: live,
          ...(live ? {} : { detail: `not listening on ${l.host}:${addr.port}` }),
          info: { port: addr.port, connections: server.connectionCount },
        };
      },
    };
  },
};

export default source;
