/**
 * The JSON Schemas in schemas/ (used by editors through the `$schema` line)
 * are generated from the code; this fails when they drift.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { generatedSchemas } from '../../core/cli/cmd-schemas.js';

describe('schemas/ are in sync with the code', () => {
  for (const [name, schema] of Object.entries(generatedSchemas())) {
    it(`${name} matches (regenerate with: npm run build && npm run schemas)`, () => {
      const committed = JSON.parse(readFileSync(`schemas/${name}`, 'utf8')) as unknown;
      expect(committed).toEqual(JSON.parse(JSON.stringify(schema)));
    });
  }
});
