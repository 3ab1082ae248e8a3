/**
 * Issue 13: Kafka decides commit, dead-letter or retry from the structured
 * outcome of the ingress port, never from ACK text. The module that re-parsed
 * ACKs (core/kafka/outcome.ts) is gone, and the Kafka source neither parses
 * nor builds HL7 ACKs; the other tests in test/kafka show the behaviour is
 * unchanged.
 */
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

describe('kafka decides without ACK text', () => {
  it('core/kafka/outcome.ts is gone and the source reads no ACK', () => {
    expect(existsSync('core/kafka/outcome.ts')).toBe(false);
    for (const f of ['core/kafka/source.ts', 'plugins/source-kafka/index.ts']) {
      const src = readFileSync(f, 'utf8');
      expect(src).not.toMatch(/parseHl7|buildAck|renderAck|ackText|MSA|ERR-3/);
      expect(src).not.toMatch(/outcome\.js/);
    }
  });
});
