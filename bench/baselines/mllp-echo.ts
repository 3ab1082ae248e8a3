/**
 * Baseline servers for the ingress scenarios, run as a child process:
 *   node mllp-echo.js           raw node:net MLLP server, hand-written framing,
 *                               ACK built with string operations (the ceiling
 *                               for Node on this machine);
 *   node mllp-echo.js --parse   the same, plus a full node-hl7-client parse and
 *                               five field reads per message (what a naive
 *                               engine built on that library pays).
 * Listens on 127.0.0.1, port 0 unless --port is given; prints `PORT <n>`.
 */
import net from 'node:net';
import { parseArgs } from 'node:util';
import { Message } from 'node-hl7-client';

const VT = 0x0b;
const FS = 0x1c;
const CR = 0x0d;

const { values } = parseArgs({ options: { parse: { type: 'boolean' }, port: { type: 'string' } } });
const parse = values.parse === true;

function ackFor(text: string): string {
  const end = text.indexOf('\r');
  const msh = (end < 0 ? text : text.slice(0, end)).split('|');
  const trigger = (msh[8] ?? '').split('^')[1] ?? '';
  return `MSH|^~\\&|${msh[4] ?? ''}|${msh[5] ?? ''}|${msh[2] ?? ''}|${msh[3] ?? ''}|${msh[6] ?? ''}||ACK^${trigger}|A${msh[9] ?? ''}|P|2.5\rMSA|AA|${msh[9] ?? ''}`;
}

function handle(payload: Buffer): string {
  const text = payload.toString('utf8');
  if (parse) {
    const m = new Message({ text });
    // Read what a registration route needs, as the planning measurement did.
    m.get('MSH.10').toString();
    m.get('MSH.9.1').toString();
    m.get('PID.3').toRaw();
    m.get('PID.5.1').toString();
    m.get('PV1.3').toRaw();
  }
  return ackFor(text);
}

const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  // Framing state belongs to the connection, never to the server.
  let buf = Buffer.alloc(0);
  socket.on('data', (chunk) => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    for (;;) {
      const start = buf.indexOf(VT);
      if (start < 0) {
        buf = Buffer.alloc(0);
        return;
      }
      const end = buf.indexOf(FS, start + 1);
      if (end < 0 || end + 1 >= buf.length) {
        if (start > 0) buf = buf.subarray(start);
        return;
      }
      const payload = buf.subarray(start + 1, end);
      buf = buf.subarray(end + (buf[end + 1] === CR ? 2 : 1));
      let ack: string;
      try {
        ack = handle(payload);
      } catch {
        ack = 'MSH|^~\\&|||||||ACK|ERR|P|2.5\rMSA|AE|';
      }
      socket.write(Buffer.concat([Buffer.from([VT]), Buffer.from(ack, 'utf8'), Buffer.from([FS, CR])]));
    }
  });
  socket.on('error', () => socket.destroy());
});

server.listen(Number(values.port ?? 0), '127.0.0.1', () => {
  const addr = server.address() as net.AddressInfo;
  process.stdout.write(`PORT ${addr.port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
