/**
 * TEMPORARY HARNESS (issue 13, until the engine implements SourceContext):
 * a SourceContext built on today's Engine (engine.ingest / IngestResult),
 * so source plugins (http, file) can be tested against a real engine with
 * its real store and simulators before the ingress port lands. The lead
 * replaces every use of this file with the engine's own context at merge
 * and deletes it.
 */
import { randomUUID } from 'node:crypto';
import type { Engine } from '../../core/engine/engine.js';
import type { IngestResult, Listener } from '../../core/engine/ingest.js';
import { buildBatchAckEnvelope } from '../../core/hl7/index.js';
import { splitBlock } from '../../core/hl7/batch.js';
import type { BlockOptions, BlockOutcome, FlowControl, IngestOutcome, IngestStatus, InboundMessage, SourceContext, SourceHttpEndpoint, Submit } from '../../core/sdk.js';

const ACKS = new WeakMap<IngestOutcome, Buffer>();

function statusOf(r: IngestResult): IngestStatus {
  if (r.duplicate) return 'duplicate';
  // Passing reasons (sdk.ts IngestStatus): back-pressure under `overload: reject` and shutting down are offered again later.
  if (r.errorCode === 'ENGINE_E_BACKPRESSURE' || r.errorCode === 'ENGINE_E_SHUTTING_DOWN') return 'failed';
  if (r.code === 'AA' || r.code === 'CA') return 'accepted';
  if (r.code === 'AR' || r.code === 'CR') return 'rejected';
  if (r.errorCode) return 'rejected';
  const failed = r.routes.find((x) => x.outcome === 'failed');
  return failed ? 'rejected' : 'failed';
}

function toOutcome(r: IngestResult): IngestOutcome {
  const status = statusOf(r);
  const failed = r.routes.find((x) => x.outcome === 'failed');
  const code = status === 'accepted' ? 'OK' : status === 'duplicate' ? 'DUPLICATE' : (r.errorCode ?? failed?.errorCode ?? 'ENGINE_E_INTERNAL');
  const o: IngestOutcome = {
    status, code, reason: failed?.detail ?? (status === 'accepted' || status === 'duplicate' ? '' : r.ackText.split('\r').find((s) => s.startsWith('MSA'))?.split('|')[3] ?? ''),
    routes: r.routes, reply: { code: r.code },
    ...(r.messageId !== undefined ? { messageId: r.messageId } : {}),
    ...(r.controlId ? { controlId: r.controlId } : {}), ...(r.type ? { type: r.type } : {}),
  };
  ACKS.set(o, r.ack);
  return o;
}

export interface HarnessOptions {
  /** Endpoints mounted through ctx.mountHttp are collected here (the test mounts them on its server). */
  mounted?: SourceHttpEndpoint[];
  config: Record<string, unknown>;
  baseDir?: string;
}

/** A SourceContext and Submit over a running Engine (see the header: temporary). */
export function harnessContext(engine: Engine, opts: HarnessOptions): { ctx: SourceContext; submit: Submit; setPaused(p: boolean): void } {
  const listener = (o: { source: string; defaultCharset?: string; noRoute?: 'AA' | 'AR'; invalidBytes?: 'reject' | 'replace'; multiMessageBlocks?: 'split' | 'reject' }): Listener => ({
    name: o.source, charset: o.defaultCharset ?? 'gb18030', noRoute: o.noRoute ?? 'AA', invalidBytes: o.invalidBytes ?? 'reject', multiMessageBlocks: o.multiMessageBlocks ?? 'split',
  });
  const submit: Submit = async (m: InboundMessage) => toOutcome(await engine.ingest(m.bytes, listener({ source: m.source, defaultCharset: m.charset ?? m.defaultCharset, noRoute: m.noRoute, invalidBytes: m.invalidBytes })));
  let paused = false;
  const subs = new Set<(p: boolean) => void>();
  const flow: FlowControl = {
    get paused() { return paused; },
    onChange(fn) { subs.add(fn); return () => subs.delete(fn); },
  };
  const ctx: SourceContext = {
    log: engine.log.child({ source: String(opts.config.name ?? 'test') }),
    signal: new AbortController().signal,
    config: opts.config,
    baseDir: opts.baseDir ?? process.cwd(),
    dataDir: engine.config.dataDir,
    flow,
    metric() {},
    renderAck(o) {
      const b = ACKS.get(o);
      if (!b) throw new Error('outcome not from this harness');
      return b;
    },
    ...(opts.mounted ? { mountHttp: (eps: SourceHttpEndpoint[]) => { opts.mounted!.push(...eps); } } : {}),
    async submitBlock(bytes: Buffer, bo: BlockOptions): Promise<BlockOutcome> {
      const split = splitBlock(bytes);
      const outcomes: IngestOutcome[] = [];
      const replies: Buffer[] = [];
      let index = 0;
      const one = async (b: Buffer): Promise<IngestOutcome | undefined> => {
        const i = index++;
        if (bo.before && !bo.before(i)) return undefined;
        const o = await submit({ source: bo.source, bytes: b, ...(bo.charset ? { charset: bo.charset } : {}), ...(bo.defaultCharset ? { defaultCharset: bo.defaultCharset } : {}), ...(bo.noRoute ? { noRoute: bo.noRoute } : {}), ...(bo.invalidBytes ? { invalidBytes: bo.invalidBytes } : {}) });
        outcomes.push(o);
        await bo.after?.(i, o);
        return o;
      };
      for (const u of split.units) {
        if (u.kind === 'message') {
          const o = await one(u.bytes);
          if (o) replies.push(ctx.renderAck(o));
          continue;
        }
        const acks: Buffer[] = [];
        for (const m of u.messages) {
          const o = await one(m);
          if (o) acks.push(ctx.renderAck(o));
        }
        const env = buildBatchAckEnvelope(u.batch.header.toString('latin1'), acks.length, { controlId: `B${randomUUID().replace(/-/g, '').slice(0, 19)}` });
        replies.push(Buffer.concat([Buffer.from(env.header, 'latin1'), ...acks, Buffer.from(env.trailer, 'latin1')]));
      }
      return { outcomes, replies, units: split.units.map((u) => ({ kind: u.kind, messages: u.kind === 'message' ? 1 : u.messages.length })) };
    },
  };
  return { ctx, submit, setPaused(p) { if (p !== paused) { paused = p; for (const s of subs) s(p); } } };
}
