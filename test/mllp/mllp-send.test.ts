/**
 * Interoperability: Debian's `mllp_send` (package python3-hl7), an MLLP client
 * we did not write, drives our listener. CI installs the package; the test
 * fails, not skips, when the tool is missing, so the gap is visible.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import iconv from 'iconv-lite';
import { silentLogger } from '../../core/log.js';
import { createMllpServer, type MllpServer } from '../../core/mllp/server.js';

const MLLP_SEND = '/usr/bin/mllp_send';
const dir = mkdtempSync(path.join(tmpdir(), 'hb-mllp-send-'));
let server: MllpServer | undefined;

afterAll(async () => {
  await server?.close(500);
  rmSync(dir, { recursive: true, force: true });
});

function run(args: string[]): Promise<{ stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(MLLP_SEND, args, { encoding: 'buffer', timeout: 20_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`mllp_send failed: ${err.message} ${stderr.toString()}`));
      else resolve({ stdout, stderr: stderr.toString() });
    });
  });
}

describe('mllp_send (python3-hl7) against our listener', () => {
  it('sends a file of two messages (one GBK-encoded) and gets two matching replies; frames arrive byte-exact', async () => {
    expect(existsSync(MLLP_SEND), 'install python3-hl7 (apt-get install -y python3-hl7)').toBe(true);
    const m1 = ['MSH|^~\\&|HIS|H1|HB|H2|20240101120000||ADT^A04|MS1|P|2.5|||||CHN|UNICODE UTF-8', 'PID|1||P1^^^^PI||TEST^ONE'];
    const m2 = ['MSH|^~\\&|HIS|H1|HB|H2|20240101120001||ADT^A04|MS2|P|2.5|||||CHN|GBK', 'PID|1||P2^^^^PI||億區^測試'];
    const bytes1 = Buffer.from(m1.join('\r'), 'utf8');
    const bytes2 = iconv.encode(m2.join('\r'), 'gbk');
    // --loose files use \r\n line ends; mllp_send turns them into \r and drops the trailing one.
    const file = path.join(dir, 'two.hl7');
    writeFileSync(file, Buffer.concat([Buffer.from(m1.join('\r\n') + '\r\n', 'utf8'), iconv.encode(m2.join('\r\n') + '\r\n', 'gbk')]));

    const received: Buffer[] = [];
    server = createMllpServer({
      name: 'interop',
      host: '127.0.0.1',
      port: 0,
      log: silentLogger(),
      handler: async (frame) => {
        received.push(frame);
        const id = frame.toString('latin1').split('\r')[0]!.split('|')[9];
        return Buffer.from(`MSH|^~\\&|HB|H2|HIS|H1|20240101120002||ACK|A${id}|P|2.5\rMSA|AA|${id}`, 'latin1');
      },
    });
    const { port } = await server.listen();
    const { stdout } = await run(['--loose', '--file', file, '-p', String(port), '127.0.0.1']);

    expect(received).toEqual([bytes1, bytes2]);
    const out = stdout.toString('latin1');
    expect(out.match(/MSA\|AA\|MS\d/g)).toEqual(['MSA|AA|MS1', 'MSA|AA|MS2']);
  });
});
