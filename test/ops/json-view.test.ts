/**
 * Stored JSON events (issue 13) in the operator views: masked pretty-printed
 * JSON in the console (real HTTP, audited reveal) and in `hisbridge messages
 * show`; the HL7 tree only for HL7 messages.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonForView, jsonViewText, MAX_VIEW_NODES } from '../../core/ops/console/json-view.js';
import { run as messages } from '../../core/cli/cmd-messages.js';
import type { TestEngine } from '../helpers/engine.js';
import { CONSOLE_PASSWORD, CONSOLE_USER, startOpsEngine } from './fixtures.js';
import { delivery, message, openStore, tempDir } from '../helpers/store.js';

const ID_NUMBER = '44010619900307123X';
const PHONE = '13812345678';
const event = {
  specVersion: '1', eventId: 'EV-77', eventType: 'ADT^A04', source: { system: 'HIS', facility: 'H1' }, occurredAt: '2025-03-12T09:30:15+08:00',
  patient: { id: 'PAT778899', idNumber: ID_NUMBER, name: '欧阳娜娜', gender: 'F', phone: PHONE, birthDate: '19900307' },
  body: { consent: 'Y', dept: '内科', note: `call ${PHONE} about ${ID_NUMBER}`, contact: { name: '张伟', relation: 'father' }, address: '广州市天河路1号', pdf: 'A'.repeat(5000) },
};
const raw = Buffer.from(JSON.stringify(event));
const PHI = [ID_NUMBER, PHONE, '欧阳娜娜', '张伟', 'PAT778899', '19900307', '天河路'];

describe('jsonForView', () => {
  it('masks a person object whole (except gender), identifier/name/phone/address keys anywhere, and ID/phone shapes in free text', () => {
    const text = jsonViewText(raw);
    for (const v of PHI) expect(text, v).not.toContain(v);
    const shown = JSON.parse(text) as typeof event;
    expect(shown.patient.gender).toBe('F');
    expect(shown.body.consent).toBe('Y');
    expect(shown.body.dept).toBe('内科');
    // Everything of a person (contact) but gender is masked.
    expect(shown.body.contact.relation).toBe('f****r');
    expect(shown.eventType).toBe('ADT^A04');
    expect(shown.body.address).toBe('***');
    expect(shown.body.pdf).toMatch(/… \(5000 characters\)$/);
    // Pretty-printed.
    expect(text).toContain('\n  "patient": {\n');
  });

  it('shows the plain values when revealed, long texts still summarised', () => {
    const shown = JSON.parse(jsonViewText(raw, true)) as typeof event;
    expect(shown.patient).toEqual(event.patient);
    expect(shown.body.note).toBe(event.body.note);
    expect(shown.body.pdf).toMatch(/… \(5000 characters\)$/);
  });

  it('keeps a "__proto__" key as a key, masked like any other', () => {
    const v = jsonForView(JSON.parse(`{"__proto__":{"idNumber":"${ID_NUMBER}"},"a":1}`)).value as Record<string, unknown>;
    expect(Object.keys(v)).toEqual(['__proto__', 'a']);
    expect(JSON.stringify(v)).not.toContain(ID_NUMBER);
    expect(JSON.stringify(v)).toContain('"__proto__":{"idNumber":"');
  });

  it('bounds the work: at most MAX_VIEW_NODES values shown, the rest counted; bad JSON gets a note', () => {
    const many = { items: Array.from({ length: MAX_VIEW_NODES * 2 }, (_, i) => i) };
    const v = jsonForView(many);
    expect(v.hidden).toBeGreaterThan(MAX_VIEW_NODES - 10);
    expect(jsonViewText(Buffer.from(JSON.stringify(many)))).toMatch(/more values not shown$/);
    const broken = Buffer.from('{"idNumber":"' + ID_NUMBER);
    expect(jsonViewText(broken)).toBe(`(the stored body is not valid JSON: ${broken.length} bytes)`);
  });
});

/** Runs a command in-process and collects what it printed. */
async function capture(fn: () => Promise<number>): Promise<{ code: number; out: string }> {
  const o = process.stdout.write.bind(process.stdout);
  let out = '';
  process.stdout.write = ((s: string) => ((out += s), true)) as typeof process.stdout.write;
  try {
    return { code: await fn(), out };
  } finally {
    process.stdout.write = o;
  }
}

describe('hisbridge messages show on a JSON event', () => {
  it('prints the event masked (no HL7 parse), unmasked with --unmask, and as "event" in --json', async () => {
    const t = tempDir();
    try {
      const store = openStore(t.dir);
      const { messageId } = await store.accept(message({ format: 'json', raw, controlId: 'EV-77', patientId: 'PAT778899' }), [delivery()]);
      store.close();
      const masked = await capture(() => messages(['show', String(messageId), '--data-dir', t.dir]));
      expect(masked.code).toBe(0);
      for (const v of PHI) expect(masked.out, v).not.toContain(v);
      expect(masked.out).toContain('"consent": "Y"');
      const plain = await capture(() => messages(['show', String(messageId), '--data-dir', t.dir, '--unmask']));
      expect(plain.out).toContain(ID_NUMBER);
      const json = JSON.parse((await capture(() => messages(['show', String(messageId), '--data-dir', t.dir, '--json']))).out) as { event: string; hl7?: string; format: string };
      expect(json.format).toBe('json');
      expect(json.hl7).toBeUndefined();
      expect(JSON.parse(json.event).body.consent).toBe('Y');
    } finally {
      t.cleanup();
    }
  });
});

describe('console message view of a JSON event (real HTTP)', () => {
  let t: TestEngine;
  let cookie: string;
  let csrf: string;
  let messageId: number;

  beforeAll(async () => {
    t = await startOpsEngine();
    ({ messageId } = await t.engine.store.accept(message({ source: 'kafka-json', format: 'json', raw, controlId: 'EV-77', patientId: 'PAT778899', type: 'ADT^A04' }), []));
    const res = await fetch(`${t.httpUrl}/console/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: CONSOLE_USER, password: CONSOLE_PASSWORD }) });
    cookie = res.headers.get('set-cookie')!.split(';')[0]!;
    const page = await (await fetch(`${t.httpUrl}/console/dashboard`, { headers: { cookie } })).text();
    csrf = /<meta name="csrf-token" content="([^"]+)">/.exec(page)![1]!;
  }, 30_000);
  afterAll(async () => t?.stop());

  it('shows the event pretty-printed and masked, no HL7 tree; a reveal shows the values and is audited', async () => {
    const detail = await (await fetch(`${t.httpUrl}/console/messages/${messageId}`, { headers: { cookie } })).text();
    expect(detail).toContain('<pre class="json">');
    expect(detail).not.toContain('class="tree"');
    expect(detail).toContain('&quot;consent&quot;: &quot;Y&quot;');
    for (const v of PHI) expect(detail, v).not.toContain(v);
    const r = await fetch(`${t.httpUrl}/console/messages/${messageId}/reveal`, { method: 'POST', headers: { cookie, 'x-csrf-token': csrf } });
    expect(r.status).toBe(200);
    const revealed = (await r.json()) as { html: string };
    expect(revealed.html).toContain(ID_NUMBER);
    expect(revealed.html).toContain('欧阳娜娜');
    const audit = t.engine.store.queryAudit({ plugin: 'console' }).filter((a) => a.operation === 'reveal');
    expect(audit.some((a) => a.messageId === String(messageId))).toBe(true);
  });
});
