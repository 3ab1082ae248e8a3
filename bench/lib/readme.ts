/**
 * Writes the bench table into README.md between two marker lines, so that
 * `npm run bench -- --table --write-readme` regenerates it from
 * bench/results.json and nothing else in the README moves.
 */
export const TABLE_START = '<!-- bench-table:start (written by npm run bench -- --table --write-readme; edit bench/lib/table.ts, not this table) -->';
export const TABLE_END = '<!-- bench-table:end -->';

/** The README text with everything between the markers replaced by `table`; throws when the markers are missing or out of order. */
export function replaceTable(readme: string, table: string): string {
  const start = readme.indexOf(TABLE_START);
  const end = readme.indexOf(TABLE_END);
  if (start < 0 || end < 0) throw new Error(`README has no bench table markers (${TABLE_START} ... ${TABLE_END})`);
  if (end < start) throw new Error('README bench table markers are out of order');
  if (readme.indexOf(TABLE_START, start + 1) >= 0 || readme.indexOf(TABLE_END, end + 1) >= 0) throw new Error('README has more than one bench table');
  return readme.slice(0, start + TABLE_START.length) + '\n' + table.trim() + '\n' + readme.slice(end);
}
