/**
 * kafka-publish with the map and hl7 steps (issue 17), against a
 * real-protocol broker: `value: "${vars.report}"` writes the JSON a map step
 * built (with a code-table lookup); without `value`, the record is the
 * message as an hl7 step rewrote it.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MllpClient } from '../../core/mllp/client.js';
import { decodeHl7, parseHl7 } from '../../core/hl7/index.js';
import { startEngine, type TestEngine } from '../helpers/engine.js';
import { KafkaTool, startTestBroker, uniq, type TestBroker } from '../helpers/kafka.js';

const ackOf = (b: Buffer) => parseHl7(decodeHl7(b, 'utf-8').text);

describe('kafka-publish with map and hl7 steps', () => {
  let broker: TestBroker;
  let tool: KafkaTool;
  let t: TestEngine;
  let client: MllpClient;
  let root: string;
  const jsonTopic = uniq('mapped');
  const hl7Topic = uniq('rewritten');

  beforeAll(async () => {
    broker = await startTestBroker();
    tool = new KafkaTool(broker.brokers);
    root = mkdtempSync(path.join(tmpdir(), 'hisbridge-kmap-'));
    mkdirSync(path.join(root, 'routes'));
    mkdirSync(path.join(root, 'tables'));
    writeFileSync(path.join(root, 'tables', 'dept.csv'), 'code,platform,name\n0101,NK01,内科\n');
    writeFileSync(path.join(root, 'routes', 'k.yaml'), `routes:
  - name: mapped
    match: { events: ["ADT^A04"] }
    ack: on-complete
    steps:
      - plugin: map
        as: visit
        config:
          fields:
            patient: "\${PID-3.1}"
            dept: "\${PV1-3.1|lookup:dept}"
            deptName: "\${PV1-3.1|lookup:dept.name}"
      - plugin: kafka-publish
        config: { topic: ${jsonTopic}, value: "\${vars.visit}" }
  - name: rewritten
    match: { events: ["ADT^A08"] }
    ack: on-complete
    steps:
      - plugin: hl7
        config:
          set: { MSH-5: EMR, PV1-3.1: "\${PV1-3.1|lookup:dept}" }
          remove: [ZCN]
      - plugin: kafka-publish
        config: { topic: ${hl7Topic} }
`);
    t = await startEngine({ routesDir: path.join(root, 'routes'), siteYaml: `kafka:\n  brokers: "${broker.brokers.join(',')}"\n` });
    client = await MllpClient.connect('127.0.0.1', t.port, { timeoutMs: 30_000 });
  }, 60_000);

  afterAll(async () => {
    client?.close();
    await t?.stop();
    await tool?.close();
    await broker?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  const msg = (trigger: string, cid: string) =>
    `MSH|^~\\&|HIS|H1|HB|HB|20250312093015||ADT^${trigger}^ADT_A01|${cid}|P|2.5|||||CHN|UNICODE UTF-8\rPID|1||PK1^^^H^PI\rPV1|1|O|0101^^^H1\rZCN|Y\r`;

  it('value: "${vars.x}" publishes the JSON a map step built', async () => {
    expect(ackOf(await client.send(msg('A04', 'KM-1'))).get('MSA-1')).toBe('AA');
    const recs = await tool.read(jsonTopic, (r) => r.length >= 1);
    expect(JSON.parse(recs[0]!.value.toString('utf8'))).toEqual({ patient: 'PK1', dept: 'NK01', deptName: '内科' });
  });

  it('without value, the record is the message as the hl7 step rewrote it', async () => {
    expect(ackOf(await client.send(msg('A08', 'KM-2'))).get('MSA-1')).toBe('AA');
    const recs = await tool.read(hl7Topic, (r) => r.length >= 1);
    expect(recs[0]!.value.toString('utf8').split('\r')).toEqual([
      'MSH|^~\\&|HIS|H1|EMR|HB|20250312093015||ADT^A08^ADT_A01|KM-2|P|2.5|||||CHN|UNICODE UTF-8',
      'PID|1||PK1^^^H^PI',
      'PV1|1|O|NK01^^^H1',
      '',
    ]);
  });
});
