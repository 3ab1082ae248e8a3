/**
 * The `mllp` plugin's simulator: a small MLLP receiver (a LIS, a PACS) that
 * records what it gets and answers each message with an ACK. What it answers
 * is set by the `mllpReceiver:` section (`answer: AA | AE | AR | hang`, `text`)
 * or, in tests, through the returned object: `answers([...])` queues answers
 * for the next messages (then `answer` applies again); `hang` never answers,
 * so the sender's timeout fires.
 */
import { buildAck, createMllpServer, decodeHl7, encodeText, parseHl7, type Logger, type RunningSimulator } from '../../core/sdk.js';

export type ReceiverAnswer = 'AA' | 'AE' | 'AR' | 'CA' | 'CE' | 'CR' | 'hang';

export interface ReceivedMessage {
  /** MSH-10. */
  controlId: string;
  /** MSH-9.1^MSH-9.2. */
  type: string;
  /** The message as decoded (its MSH-18, else the receiver's charset). */
  text: string;
  /** The frame's bytes as received. */
  bytes: Buffer;
  /** What it was answered. */
  answer: ReceiverAnswer;
  /** Connection number (1, 2 ...): reuse of a connection shows as the same number. */
  connection: number;
}

export interface MllpReceiver extends RunningSimulator {
  readonly host: string;
  readonly port: number;
  /** Every message received, in order. */
  readonly received: ReceivedMessage[];
  /** Connections accepted so far. */
  readonly connections: number;
  /** The answer given when no queued one is left. */
  answer: ReceiverAnswer;
  /** Queues answers for the next messages, in order. */
  answers(list: ReceiverAnswer[]): void;
}

export interface ReceiverSite {
  answer?: ReceiverAnswer;
  /** MSA-3 / ERR text of AE and AR answers. */
  text?: string;
  /** Charset of frames without MSH-18 (default utf-8). */
  charset?: string;
}

export async function startMllpReceiver(opts: { host: string; port: number; site: Record<string, unknown>; log: Logger }): Promise<MllpReceiver> {
  const site = opts.site as ReceiverSite;
  const received: ReceivedMessage[] = [];
  const queue: ReceiverAnswer[] = [];
  const hanging = new Set<() => void>();
  /** The hung answer of each connection, released when that connection closes. */
  const hangingOn = new Map<number, () => void>();
  let answer: ReceiverAnswer = site.answer ?? 'AA';
  let connections = 0;
  let acks = 0;
  const connNo = new Map<number, number>();
  const server = createMllpServer({
    name: 'mllp-receiver',
    host: opts.host,
    port: opts.port,
    log: opts.log,
    async handler(frame, conn) {
      const decoded = decodeHl7(frame, site.charset ?? 'utf-8');
      const msg = parseHl7(decoded.text);
      const a = queue.shift() ?? answer;
      received.push({
        controlId: msg.get('MSH-10'),
        type: `${msg.get('MSH-9.1')}^${msg.get('MSH-9.2')}`,
        text: decoded.text,
        bytes: Buffer.from(frame),
        answer: a,
        connection: connNo.get(conn.id) ?? 0,
      });
      if (a === 'hang') {
        // No answer until the sender hangs up (or the simulator closes).
        return new Promise<null>((resolve) => {
          const done = () => {
            hanging.delete(done);
            hangingOn.delete(conn.id);
            resolve(null);
          };
          hanging.add(done);
          hangingOn.set(conn.id, done);
        });
      }
      const text = a.endsWith('A') ? undefined : (site.text ?? (a.endsWith('R') ? 'refused by the receiver simulator' : 'receiver simulator busy'));
      const ack = buildAck(msg, {
        code: a,
        controlId: `SIMACK${++acks}`,
        ...(text !== undefined ? { text, error: { hl7Code: a.endsWith('R') ? '207' : '206', text } } : {}),
      });
      return encodeText(ack, decoded.charset);
    },
  });
  server.on('connection', (conn) => connNo.set(conn.id, ++connections));
  server.on('disconnect', (conn) => {
    hangingOn.get(conn.id)?.();
    connNo.delete(conn.id);
  });
  const bound = await server.listen();
  return {
    host: bound.host,
    port: bound.port,
    url: `mllp://${bound.host}:${bound.port}`,
    received,
    get connections() {
      return connections;
    },
    get answer() {
      return answer;
    },
    set answer(a: ReceiverAnswer) {
      answer = a;
    },
    answers(list) {
      queue.push(...list);
    },
    async close() {
      for (const h of [...hanging]) h();
      await server.close(500);
    },
  };
}
