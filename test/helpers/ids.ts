/**
 * Synthetic resident ID numbers (made up, never real people) with a valid
 * ISO 7064 MOD 11-2 check digit, so the PHI scrubbers recognise them.
 */
const WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];

/** The 18-character number for a 17-digit body. */
export function withCheckDigit(body: string): string {
  const sum = [...body].reduce((s, c, i) => s + Number(c) * WEIGHTS[i]!, 0);
  return body + '10X98765432'[sum % 11]!;
}

/** Born 1990-01-01 in 440106, sequence `seq % 1000`. */
export function idNumber(seq: number): string {
  return withCheckDigit(`44010619900101${String(seq % 1000).padStart(3, '0')}`.slice(0, 17));
}

/** Born on day 1 + seq % 28 of 1990-01 in 440106, sequence `seq % 1000`: more distinct numbers for large runs. */
export function idNumberByDay(seq: number): string {
  return withCheckDigit(`440106199001${String(1 + (seq % 28)).padStart(2, '0')}${String(seq % 1000).padStart(3, '0')}`);
}
