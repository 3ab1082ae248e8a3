import { describe, expect, it } from 'vitest';
import { DEFAULT_DELIMITERS, escapeHl7, unescapeHl7, type Hl7Delimiters } from '../../core/hl7/index.js';

const D = DEFAULT_DELIMITERS;
const ODD: Hl7Delimiters = { field: '#', component: ':', repetition: '!', escape: '?', subcomponent: '$' };

describe('unescapeHl7', () => {
  it.each([
    ['a\\F\\b', 'a|b'],
    ['a\\S\\b', 'a^b'],
    ['a\\T\\b', 'a&b'],
    ['a\\R\\b', 'a~b'],
    ['a\\E\\b', 'a\\b'],
    ['line1\\.br\\line2', 'line1\nline2'],
    ['\\F\\\\S\\\\T\\\\R\\\\E\\', '|^&~\\'],
  ])('%s', (input, want) => {
    expect(unescapeHl7(input, D)).toBe(want);
  });

  it('decodes \\X..\\ hex as UTF-8 when valid, else as latin1', () => {
    expect(unescapeHl7('\\XE5BCA0\\', D)).toBe('张');
    expect(unescapeHl7('A\\X0D0A\\B', D)).toBe('A\r\nB');
    expect(unescapeHl7('\\XE9\\t\\XE9\\', D)).toBe('été');
    expect(unescapeHl7('\\xe5bca0\\', D)).toBe('张');
  });

  it('keeps unknown or malformed sequences verbatim', () => {
    expect(unescapeHl7('\\H\\bold\\N\\', D)).toBe('\\H\\bold\\N\\');
    expect(unescapeHl7('\\.sp2\\x', D)).toBe('\\.sp2\\x');
    expect(unescapeHl7('\\C2842\\', D)).toBe('\\C2842\\');
    expect(unescapeHl7('\\X0\\', D)).toBe('\\X0\\');
    expect(unescapeHl7('\\XZZ\\', D)).toBe('\\XZZ\\');
    expect(unescapeHl7('\\\\', D)).toBe('\\\\');
    expect(unescapeHl7('trailing \\', D)).toBe('trailing \\');
    expect(unescapeHl7('\\Q\\\\F\\', D)).toBe('\\Q\\|');
  });

  it('returns the same string when there is no escape character', () => {
    const s = '张三丰 no escapes';
    expect(unescapeHl7(s, D)).toBe(s);
  });

  it('uses the declared escape character and delimiters', () => {
    expect(unescapeHl7('a?F?b?S?c?T?d?R?e?E?f?.br?g', ODD)).toBe('a#b:c$d!e?f\ng');
    expect(unescapeHl7('a\\F\\b', ODD)).toBe('a\\F\\b');
  });

  it('maps \\P\\ to the truncation character only when one is declared', () => {
    expect(unescapeHl7('a\\P\\b', { ...D, truncation: '#' })).toBe('a#b');
    expect(unescapeHl7('a\\P\\b', D)).toBe('a\\P\\b');
  });
});

describe('escapeHl7', () => {
  it('escapes every delimiter, line breaks and lone CR', () => {
    expect(escapeHl7('a|b^c&d~e\\f', D)).toBe('a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f');
    expect(escapeHl7('l1\nl2\r\nl3\rl4', D)).toBe('l1\\.br\\l2\\.br\\l3\\X0D\\l4');
    expect(escapeHl7('x#y', { ...D, truncation: '#' })).toBe('x\\P\\y');
  });

  it('returns the input when nothing needs escaping', () => {
    const s = '欧阳娜娜 plain';
    expect(escapeHl7(s, D)).toBe(s);
  });

  it('uses the declared delimiters', () => {
    expect(escapeHl7('a#b:c$d!e?f|^~&\\', ODD)).toBe('a?F?b?S?c?T?d?R?e?E?f|^~&\\');
  });

  it('round-trips any text through escape then unescape', () => {
    const samples = ['|^~\\&', '\\F\\ literal', 'a\nb', '區億|^', '\\X41\\', '', '\\.br\\'];
    for (const d of [D, ODD, { ...D, truncation: '#' }]) {
      for (const s of samples) expect(unescapeHl7(escapeHl7(s, d), d)).toBe(s);
    }
  });
});
