/**
 * The file source across a kill -9: a 200-message file is being processed by
 * a real `hisbridge start --config <site.yaml>` process whose site file
 * declares the file listener (the gd-ehr simulator runs here in the test
 * process); the process is killed with SIGKILL mid-file and started again on
 * the same data directory. Every message must be stored once, authorized at
 * the simulator once, and ACKed once in the ack file; the file ends in done/.
 * dist/ comes from the global setup's build.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { authorizationEffects as effects, useCrashRig } from '../helpers/crash.js';
import { idNumber, registration } from './file-fixtures.js';

const N = 200;
const KILL_AT = 60;

const ROUTE = `name: file-authorize
match:
  events: [ADT^A04]
ack: on-receive
steps:
  - plugin: gd-ehr-authorize
    config:
      idNumber: \${PID-3[5=NI].1}
      patientName: \${PID-5.1}\${PID-5.2}
      consent: { value: "\${ZCN-1}", accept: ["Y"] }
delivery:
  orderingKey: \${PID-3[5=PI].1}
  retry: { max: 1000, initial: 50ms, maxDelay: 400ms }
`;

/** The file source's "file done" log lines (JSON) of one run. */
function fileDoneLines(stdout: string): Record<string, unknown>[] {
  return stdout.split('\n').filter((l) => l.includes('"file done"')).map((l) => JSON.parse(l) as Record<string, unknown>);
}

function progressLines(dataDir: string): number {
  const dir = path.join(dataDir, 'sources', 'lis-drop', 'progress');
  if (!existsSync(dir)) return 0;
  return readdirSync(dir).reduce((s, f) => s + readFileSync(path.join(dir, f), 'utf8').split('\n').filter(Boolean).length, 0);
}

describe('file source: kill -9 in the middle of a 200-message file', () => {
  const rig = useCrashRig({
    route: ROUTE,
    siteLines: [
      'simulators: false',
      'log: { level: info }',
      'listeners: [{ name: mllp, port: 0 }, { name: lis-drop, type: file, dir: inbox, pattern: "*.hl7", charset: gb18030, poll: 50ms, ack: true }]',
      'http: { port: 0 }',
      'store: { synchronous: FULL }',
    ],
    env: { HISBRIDGE_LOG_LEVEL: 'info' },
  });

  it('stores, authorizes and ACKs every message exactly once, and the file ends in done/', async () => {
    const { sim } = rig;
    const inbox = path.join(rig.dir, 'inbox');
    const data = rig.dataDir;
    const controlIds = Array.from({ length: N }, (_, i) => `K${String(i).padStart(5, '0')}`);
    const first = await rig.spawn();
    // The listener made its directory (relative to the site file) at start.
    expect(existsSync(path.join(inbox, '.work'))).toBe(true);
    const tmp = path.join(inbox, '.big.hl7.part');
    writeFileSync(tmp, controlIds.map((id, i) => registration(id, 3000 + i)).join(''));
    renameSync(tmp, path.join(inbox, 'big.hl7'));

    const killBy = Date.now() + 30_000;
    while (progressLines(data) < KILL_AT && Date.now() < killBy) await new Promise((r) => setTimeout(r, 2));
    first.child.kill('SIGKILL');
    expect(await first.exited).toBe('SIGKILL');
    const recordedAtKill = progressLines(data);
    const db0 = new Database(path.join(data, 'hisbridge.db'), { readonly: true });
    const storedAtKill = (db0.prepare(`SELECT count(*) AS n FROM messages WHERE source = 'lis-drop'`).get() as { n: number }).n;
    db0.close();
    // Killed in the middle: the file is still claimed, some messages stored, not all.
    expect(recordedAtKill).toBeGreaterThanOrEqual(KILL_AT);
    expect(storedAtKill).toBeLessThan(N);
    expect(existsSync(path.join(inbox, 'done', 'big.hl7'))).toBe(false);
    expect(readdirSync(path.join(inbox, '.work')).flatMap((d) => readdirSync(path.join(inbox, '.work', d)))).toHaveLength(1);

    const second = await rig.spawn();
    const doneBy = Date.now() + 60_000;
    while (!existsSync(path.join(inbox, 'done', 'big.hl7')) && Date.now() < doneBy) await new Promise((r) => setTimeout(r, 50));
    expect(existsSync(path.join(inbox, 'done', 'big.hl7'))).toBe(true);
    const wanted = controlIds.map((_, i) => idNumber(3000 + i));
    const effBy = Date.now() + 60_000;
    while (!wanted.every((id) => effects(sim.calls).has(id)) && Date.now() < effBy) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 300)); // a late repeat would show up here
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
    // The restart resumed after the recorded messages (the progress log), not from the start of the file; a message
    // committed but not yet recorded at the kill was answered duplicate by the engine (the second safety net).
    const doneLines = fileDoneLines(second.stdout());
    expect(doneLines).toHaveLength(1);
    const info = doneLines[0] as { messages: number; resumedPast: number; duplicates: number; resumed: boolean; listener: string };
    expect(info).toMatchObject({ listener: 'lis-drop', messages: N, resumed: true });
    expect(info.resumedPast).toBe(recordedAtKill);
    expect(info.duplicates).toBe(storedAtKill - recordedAtKill);
    // Neither run logged a patient's ID number or name.
    for (const out of [first.stdout(), second.stdout()]) {
      expect(out).not.toContain(idNumber(3000));
      expect(out).not.toContain('测试患者');
    }

    const db = new Database(path.join(data, 'hisbridge.db'), { readonly: true });
    const rows = db.prepare(`SELECT control_id AS id, count(*) AS n FROM messages WHERE source = 'lis-drop' GROUP BY control_id`).all() as { id: string; n: number }[];
    const perMessage = db.prepare(`SELECT m.control_id AS id, count(d.id) AS n FROM messages m LEFT JOIN deliveries d ON d.message_id = m.id WHERE m.source = 'lis-drop' GROUP BY m.id`).all() as { id: string; n: number }[];
    db.close();
    expect(rows.map((r) => r.id).sort()).toEqual(controlIds);
    expect(rows.filter((r) => r.n !== 1)).toEqual([]);
    expect(perMessage.filter((r) => r.n !== 1)).toEqual([]);

    const e = effects(sim.calls);
    const lost = wanted.filter((id) => !e.has(id));
    const twice = [...e.values()].filter((k) => k > 1).length;
    expect(lost).toEqual([]);
    expect(twice).toBe(0);

    // One ACK per message, in file order, each AA with its own control id.
    const acks = readFileSync(path.join(inbox, 'ack', 'big.hl7.ack'), 'utf8').split('\n').filter(Boolean);
    expect(acks.map((a) => /MSA\|(\w+)\|([^|\r]+)/.exec(a)?.slice(1, 3).join(' '))).toEqual(controlIds.map((id) => `AA ${id}`));
    expect(readdirSync(path.join(data, 'sources', 'lis-drop', 'progress'))).toEqual([]);
    console.log(`file source crash test: killed after ${recordedAtKill} progress records (${storedAtKill} messages stored at the kill), resumed past ${info.resumedPast}, ${info.duplicates} answered duplicate, ${N} stored once each, ${e.size} authorized once, ${lost.length} lost`);
  }, 150_000);
});
