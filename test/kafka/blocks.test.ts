/**
 * A Kafka record holding several HL7 messages or a batch (issue 11, items 2
 * and 3 on the Kafka source): each message is processed on its own and none
 * is silently dropped; a record whose second message can never be accepted
 * goes whole to the dead-letter topic with a reason naming which message;
 * `multiMessageBlocks: reject` dead-letters such records with its own code.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DLQ_HEADERS } from '../../core/kafka/source.js';
import { startEngine, type TestEngine } from '../helpers/engine.js';
import { KafkaTool, startTestBroker, uniq, until, type TestBroker } from '../helpers/kafka.js';
import { tempFiles } from '../helpers/routes.js';

const msg = (id: string, t = '\r') =>
  [`MSH|^~\\&|HIS|H4413020001|HISBRIDGE|GDPLAT|20250312093015||ADT^A28^ADT_A05|${id}|P|2.5||||||UNICODE UTF-8`, 'EVN|A28|20250312093015', 'PID|1||T0000001^^^HOSP^PI||CESHI^YI||19000101|M'].join(t) + t;

describe('kafka records with several messages or a batch', () => {
  let broker: TestBroker;
  let tool: KafkaTool;
  let t: TestEngine;
  const split = uniq('his-multi');
  const strict = uniq('his-strict');
  const group = uniq('hisbridge');

  beforeAll(async () => {
    broker = await startTestBroker();
    tool = new KafkaTool(broker.brokers);
    t = await startEngine({
      routesDir: tempFiles({}),
      siteYaml: [
        'kafka:',
        `  brokers: [${broker.brokers.join(', ')}]`,
        `  groupId: ${group}`,
        '  retry: { max: 3, initial: 100ms, maxDelay: 200ms }',
        '  topics:',
        `    - { name: ${split}, source: kafka-hl7, format: hl7 }`,
        `    - { name: ${strict}, source: kafka-hl7, format: hl7, multiMessageBlocks: reject }`,
      ].join('\n') + '\n',
    });
  }, 60_000);

  afterAll(async () => {
    await t?.stop();
    await tool?.close();
    await broker?.stop();
  });

  const stored = (id: string) => t.engine.store.searchMessages({ controlId: id, limit: 5 }).length;

  it('a batch and a record of two LF-terminated messages: every message stored, offsets committed', async () => {
    await tool.produce(split, [
      { key: 'b', value: `BHS|^~\\&|LIS|H1\r${msg('K-BAT-1')}${msg('K-BAT-2')}BTS|3\r`, partition: 0 },
      { key: 'm', value: msg('K-MUL-1', '\n') + msg('K-MUL-2', '\n'), partition: 0 },
    ]);
    for (const id of ['K-BAT-1', 'K-BAT-2', 'K-MUL-1', 'K-MUL-2']) expect(await until(() => stored(id), (n) => n > 0), id).toBe(1);
    const ends = await tool.ends(split);
    const committed = await until(() => tool.committed(group, split), (c) => c[0] === ends[0]);
    expect(committed[0]).toBe(ends[0]);
    const warn = t.logs.map((l) => JSON.parse(l) as { level: string; problem?: string }).find((l) => l.problem?.includes('BTS-1 says 3'));
    expect(warn?.level).toBe('warn');
  });

  it('a record whose second message has invalid bytes: the first is stored, the record is dead-lettered naming message 2 of 2', async () => {
    const bad = Buffer.concat([Buffer.from(msg('K-BAD-2').replace('CESHI', 'ZZ'), 'utf8')]);
    const at = bad.indexOf('ZZ');
    bad[at] = 0xc3;
    bad[at + 1] = 0x28;
    await tool.produce(split, [{ key: 'bad', value: Buffer.concat([Buffer.from(msg('K-BAD-1'), 'utf8'), bad]) }]);
    const dlq = await tool.read(`${split}.dlq`, (r) => r.length >= 1);
    expect(dlq).toHaveLength(1);
    expect(dlq[0]!.headers[DLQ_HEADERS.reason]).toBe('message 2 of 2: invalid UTF-8 bytes in PID-5');
    expect(dlq[0]!.headers[DLQ_HEADERS.code]).toBe('HL7_E_INVALID_BYTES');
    expect(stored('K-BAD-1')).toBe(1);
    expect(stored('K-BAD-2')).toBe(0);
  });

  it('multiMessageBlocks: reject dead-letters a record of several messages with HL7_E_MULTI_MESSAGE_BLOCK and stores none', async () => {
    await tool.produce(strict, [{ key: 's', value: msg('K-REJ-1') + msg('K-REJ-2') }, { key: 's', value: msg('K-REJ-3') }]);
    expect(await until(() => stored('K-REJ-3'), (n) => n > 0)).toBe(1);
    const dlq = await tool.read(`${strict}.dlq`, (r) => r.length >= 1);
    expect(dlq).toHaveLength(1);
    expect(dlq[0]!.headers[DLQ_HEADERS.code]).toBe('HL7_E_MULTI_MESSAGE_BLOCK');
    expect(stored('K-REJ-1') + stored('K-REJ-2')).toBe(0);
  });
});
