/**
 * The structural rules of the identifier formats the detectors find: pure functions over the
 * digits or characters of a candidate, so each rule can be tested by itself.
 */

/**
 * A social security number by the SSA's structural rules: area 001-899 except 666, group 01-99,
 * serial 0001-9999. Numbers that are structurally valid but were voided after publication
 * (078-05-1120 from the Woolworth wallet card, 219-09-9999, 123-45-6789 from advertising) still
 * pass: a view that masks something that only looks like an SSN loses nothing, and test data is
 * full of them.
 */
export function ssnValid(digits: string): boolean {
  if (!/^\d{9}$/.test(digits)) return false;
  const area = digits.slice(0, 3);
  return area !== '000' && area !== '666' && area[0] !== '9' && digits.slice(3, 5) !== '00' && digits.slice(5) !== '0000';
}

/** The Luhn (mod 10) check of a digit string. */
export function luhnValid(digits: string): boolean {
  if (!/^\d+$/.test(digits)) return false;
  let sum = 0;
  for (let i = digits.length - 1, dbl = false; i >= 0; i--, dbl = !dbl) {
    let d = digits.charCodeAt(i) - 48;
    if (dbl && (d *= 2) > 9) d -= 9;
    sum += d;
  }
  return sum % 10 === 0;
}

/**
 * A payment card number: 13-19 digits, an issuer prefix of a network that issues cards
 * (Visa 4, Mastercard 51-55 and 2221-2720, Amex 34/37, Discover 6011/644-649/65, JCB 3528-3589,
 * Diners 300-305/36/38-39, UnionPay 62, Maestro 50/56-58/6x) and the Luhn check. The prefix cuts
 * the one-in-ten Luhn passes of arbitrary digit runs (inode numbers, byte counts) further.
 */
export function cardValid(digits: string): boolean {
  if (digits.length < 13 || digits.length > 19 || !luhnValid(digits)) return false;
  const p2 = Number(digits.slice(0, 2));
  const p3 = Number(digits.slice(0, 3));
  const p4 = Number(digits.slice(0, 4));
  if (digits[0] === '4') return [13, 16, 19].includes(digits.length);
  if (p2 >= 51 && p2 <= 55) return digits.length === 16;
  if (p4 >= 2221 && p4 <= 2720) return digits.length === 16;
  if (p2 === 34 || p2 === 37) return digits.length === 15;
  if (p4 === 6011 || (p3 >= 644 && p3 <= 649) || p2 === 65) return digits.length >= 16;
  if (p4 >= 3528 && p4 <= 3589) return digits.length >= 16;
  if ((p3 >= 300 && p3 <= 305) || p2 === 36 || p2 === 38 || p2 === 39) return digits.length >= 14;
  if (p2 === 62) return digits.length >= 16;
  if (p2 === 50 || (p2 >= 56 && p2 <= 58) || digits[0] === '6') return digits.length >= 12;
  return false;
}

/** The letters an MBI may use: A-Z without S, L, O, I, B, Z (they look like digits or each other). */
export const MBI_ALPHA = 'ACDEFGHJKMNPQRTUVWXY';

/**
 * A Medicare Beneficiary Identifier (CMS format, 11 characters, dashes removed):
 * C A AN N A AN N A A N N, where C is 1-9, N is 0-9, A one of MBI_ALPHA and AN either.
 */
export function mbiValid(s: string): boolean {
  return /^[1-9][AC-HJKMNP-RT-Y][AC-HJKMNP-RT-Y\d]\d[AC-HJKMNP-RT-Y][AC-HJKMNP-RT-Y\d]\d[AC-HJKMNP-RT-Y]{2}\d{2}$/.test(s);
}

/**
 * A ten-digit North American number (NANP): area code and exchange are NXX (N 2-9) and not
 * N11 (service codes); area codes have no 9 in the middle (reserved for expansion).
 */
export function nanpValid(digits: string): boolean {
  if (!/^\d{10}$/.test(digits)) return false;
  const nxx = (s: string) => s[0]! >= '2' && !(s[1] === '1' && s[2] === '1');
  return nxx(digits.slice(0, 3)) && digits[1] !== '9' && nxx(digits.slice(3, 6));
}

/** A calendar date that exists (leap years included), with a year from 1875 to 2125. */
export function dateExists(y: number, m: number, d: number): boolean {
  if (!(y >= 1875 && y <= 2125 && m >= 1 && m <= 12 && d >= 1)) return false;
  return d <= new Date(Date.UTC(y, m, 0)).getUTCDate();
}

const MONTHS = 'january february march april may june july august september october november december'.split(' ');

/** "Mar", "March", "Sept." -> 3, or 0. */
export function monthNumber(name: string): number {
  const n = name.toLowerCase().replace(/\.$/, '');
  if (n.length < 3) return 0;
  // A prefix of the full name of at least three letters ("Sept" too).
  return MONTHS.findIndex((f) => f.startsWith(n)) + 1;
}

/** A two-digit year as a birth year: 00-29 -> 2000s, else 1900s. */
const fullYear = (y: string): number => (y.length === 4 ? Number(y) : Number(y) + (Number(y) < 30 ? 2000 : 1900));

/**
 * Whether `s` is a date in one of the common written forms: 03/14/1961, 14.03.1961, 3-14-61,
 * 1961-03-14, 19610314 / 03141961, Mar 14, 1961, 14 March 1961, 14-MAR-1961. Numeric day/month
 * orders are ambiguous: either reading that exists is accepted.
 */
export function dateValid(s: string): boolean {
  let m = /^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4}|\d{2})$/.exec(s);
  if (m) {
    const y = fullYear(m[3]!);
    return dateExists(y, Number(m[1]), Number(m[2])) || dateExists(y, Number(m[2]), Number(m[1]));
  }
  if ((m = /^(\d{4})[/.-](\d{1,2})[/.-](\d{1,2})$/.exec(s))) return dateExists(Number(m[1]), Number(m[2]), Number(m[3]));
  if ((m = /^(\d{4})(\d{2})(\d{2})$/.exec(s)) && dateExists(Number(m[1]), Number(m[2]), Number(m[3]))) return true;
  if ((m = /^(\d{2})(\d{2})(\d{4})$/.exec(s))) {
    return dateExists(Number(m[3]), Number(m[1]), Number(m[2])) || dateExists(Number(m[3]), Number(m[2]), Number(m[1]));
  }
  if ((m = /^([A-Za-z]{3,9}\.?)\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})$/.exec(s))) return dateExists(Number(m[3]), monthNumber(m[1]!), Number(m[2]));
  if ((m = /^(\d{1,2})(?:st|nd|rd|th)?[\s-]+([A-Za-z]{3,9}\.?),?[\s-]+(\d{4}|\d{2})$/.exec(s))) {
    return dateExists(fullYear(m[3]!), monthNumber(m[2]!), Number(m[1]));
  }
  return false;
}
