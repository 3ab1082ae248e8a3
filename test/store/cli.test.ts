import { describe, expect, it } from 'vitest';
import { run as messages } from '../../core/cli/cmd-messages.js';
import { run as dlq } from '../../core/cli/cmd-dlq.js';
import { delivery, freshDirs, message, openStore } from '../helpers/store.js';

/** Runs a command in-process and collects what it printed. */
async function capture(fn: () => Promise<number>): Promise<{ code: number; out: string; err: string }> {
  const o = process.stdout.write.bind(process.stdout);
  const e = process.stderr.write.bind(process.stderr);
  let out = '';
  let err = '';
  process.stdout.write = ((s: string) => ((out += s), true)) as typeof process.stdout.write;
  process.stderr.write = ((s: string) => ((err += s), true)) as typeof process.stderr.write;
  try {
    return { code: await fn(), out, err };
  } finally {
    process.stdout.write = o;
    process.stderr.write = e;
  }
}

const ID_NUMBER = '44010619900307123X';
const HL7 = [
  'MSH|^~\\&|HIS|H1|EHR|GD|20260101120000||ADT^A04^ADT_A01|CTL-9|P|2.5|||||CHN|UNICODE UTF-8',
  `PID|1||PAT778899^^^H1^PI~${ID_NUMBER}^^^CHN^NI||欧阳娜娜^^^^^^L||19900307|F|||广州市天河路1号||13812345678|||||${ID_NUMBER}`,
  'NK1|1|张伟^^^^^^L|FTH||13900001111',
  '',
].join('\r');

const fresh = freshDirs();

async function seed() {
  const dir = fresh();
  const store = openStore(dir);
  const m = await store.accept(message({ raw: Buffer.from(HL7), controlId: 'CTL-9', patientId: 'PAT778899' }), [delivery({ route: 'consent', orderingKey: ID_NUMBER })]);
  await store.accept(message(), [delivery({ route: 'other' })]);
  store.close();
  return { dir, messageId: m.messageId };
}

describe('hisbridge messages', () => {
  it('search lists messages newest first with the patient masked, filters by control id and patient', async () => {
    const { dir, messageId } = await seed();
    const all = await capture(() => messages(['search', '--data-dir', dir, '--json']));
    expect(all.code).toBe(0);
    const rows = JSON.parse(all.out) as { id: number; patientId?: string }[];
    expect(rows.map((r) => r.id)).toEqual([messageId + 1, messageId]);
    expect(all.out).not.toContain('PAT778899');
    expect(rows[1]!.patientId).toBe('PA*****99');
    const byCtl = JSON.parse((await capture(() => messages(['search', '--data-dir', dir, '--control-id', 'CTL-9', '--json']))).out) as unknown[];
    expect(byCtl).toHaveLength(1);
    const byPatient = JSON.parse((await capture(() => messages(['search', '--data-dir', dir, '--patient', 'PAT778899', '--since', '1h', '--json']))).out) as unknown[];
    expect(byPatient).toHaveLength(1);
    const page = JSON.parse((await capture(() => messages(['search', '--data-dir', dir, '--before', String(messageId + 1), '--json']))).out) as { id: number }[];
    expect(page.map((r) => r.id)).toEqual([messageId]);
  });

  it('show masks names, ids, phones and addresses; --unmask shows them and is audited', async () => {
    const { dir, messageId } = await seed();
    const masked = await capture(() => messages(['show', String(messageId), '--data-dir', dir]));
    expect(masked.code).toBe(0);
    for (const secret of ['欧阳娜娜', '张伟', ID_NUMBER, 'PAT778899', '13812345678', '13900001111', '天河路']) expect(masked.out).not.toContain(secret);
    expect(masked.out).toContain('欧***');
    expect(masked.out).toContain('440106********123X');
    expect(masked.out).toContain('138****5678');
    expect(masked.out).toContain('^^^H1^PI');
    expect(masked.out).toContain('consent#0');

    const plain = await capture(() => messages(['show', String(messageId), '--data-dir', dir, '--unmask']));
    expect(plain.out).toContain('欧阳娜娜');
    expect(plain.out).toContain(ID_NUMBER);
    const store = openStore(dir);
    const [row] = store.queryAudit({ operation: 'unmask' });
    expect(row).toMatchObject({ plugin: 'cli', messageId: String(messageId), patientMasked: 'PA*****99', result: 'ok' });
    expect(row!.staffNo).toBeTruthy();
    store.close();
  });

  it('refuses a data dir without a store and an unknown message', async () => {
    const r = await capture(() => messages(['search', '--data-dir', fresh()]));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/no hisbridge store/);
    const { dir } = await seed();
    expect((await capture(() => messages(['show', '999', '--data-dir', dir]))).code).toBe(1);
  });
});

describe('hisbridge dlq', () => {
  it('lists dead deliveries (ordering key scrubbed) and replays them, audited', async () => {
    const { dir } = await seed();
    const store = openStore(dir);
    const jobs = store.claimDue(Date.now(), 10);
    expect(jobs).toHaveLength(2);
    for (const j of jobs) await store.fail(j.id, { code: 'HTTP_E_STATUS', reason: 'HTTP 400 from gd-ehr', retryable: false });
    store.close();

    const list = await capture(() => dlq(['list', '--data-dir', dir]));
    expect(list.code).toBe(0);
    expect(list.out).toContain('HTTP_E_STATUS HTTP 400 from gd-ehr');
    expect(list.out).toContain('(2 dead deliveries)');
    const json = JSON.parse((await capture(() => dlq(['list', '--data-dir', dir, '--route', 'consent', '--json']))).out) as { id: number; orderingKey: string }[];
    expect(json).toHaveLength(1);
    expect(json[0]!.orderingKey).toBe('440106********123X');

    expect((await capture(() => dlq(['replay', '--data-dir', dir]))).code).toBe(1);
    const one = await capture(() => dlq(['replay', String(json[0]!.id), '--data-dir', dir]));
    expect(one.out).toMatch(/requeued 1 /);
    const rest = await capture(() => dlq(['replay', '--all', '--route', 'other', '--data-dir', dir]));
    expect(rest.out).toMatch(/requeued 1 /);

    const after = openStore(dir);
    expect(after.listDead()).toHaveLength(0);
    expect(after.pendingCount()).toBe(2);
    expect(after.queryAudit({ operation: 'dlq-replay' }).map((a) => a.detail)).toEqual(['1 requeued (all of route other)', `1 requeued (ids ${json[0]!.id})`]);
    after.close();
  });
});
