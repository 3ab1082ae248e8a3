/**
 * Child process for the crash test: 8 concurrent "senders" accept messages in
 * a loop and print `messageId controlId` once each accept() resolved, i.e.
 * once the engine would have sent AA. The parent kills it with SIGKILL.
 * stdout to a pipe is synchronous on Linux, so a printed line was written
 * before the next accept started.
 */
import { Store } from '../../core/store/sqlite.js';

const [dir, sync] = process.argv.slice(2);
const store = Store.open(dir!, { synchronous: sync === 'NORMAL' ? 'NORMAL' : 'FULL', groupCommitMs: 1 });
let n = 0;

async function sender(k: number): Promise<void> {
  for (;;) {
    const controlId = `S${k}-${n++}`;
    const raw = Buffer.from(`MSH|^~\\&|HIS|H1|EHR|GD|20260101||ADT^A04|${controlId}|P|2.5\rPID|1||P${n}\r`);
    const r = await store.accept(
      { source: 'mllp', raw, charset: 'utf-8', sendingApp: 'HIS', sendingFacility: 'H1', type: 'ADT^A04', controlId, receivedAt: Date.now(), ackCode: 'AA' },
      [{ route: 'consent', step: 0, plugin: 'gd-ehr-authorize', retry: { max: 3, initialMs: 10, maxDelayMs: 100 }, vars: {} }],
    );
    process.stdout.write(`${r.messageId} ${controlId}\n`);
  }
}

for (let k = 0; k < 8; k++) void sender(k);
