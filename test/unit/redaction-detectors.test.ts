import { describe, expect, it } from 'vitest';
import { Redactor } from '../../src/redaction/redactor.js';
import { hashIdentifier, redactionSchema } from '../../src/redaction/options.js';
import { cardValid, dateValid, luhnValid, mbiValid, nanpValid, ssnValid } from '../../src/redaction/validate.js';

const redactor = Redactor.create();
/** [kind, masked text] for each identifier found on a line. */
const found = (text: string, r = redactor) => r.detectText(text).map((s) => [s.kind, text.slice(s.start, s.end)]);

/** [what, line, identifiers expected as [kind, text]] */
const TABLE: [string, string, string[][]][] = [
  // SSN: the SSA's structural rules
  ['SSN with dashes', 'patient 078-05-1120 seen', [['ssn', '078-05-1120']]],
  ['SSN voided by publication is still masked', 'SSN 123-45-6789', [['ssn', '123-45-6789']]],
  ['SSN with spaces', 'id 219 09 9999 ok', [['ssn', '219 09 9999']]],
  ['SSN area 000 is not one', 'x 000-12-3456 y', []],
  ['SSN area 666 is not one', 'x 666-12-3456 y', []],
  ['SSN area 9xx is not one (ITIN)', 'x 912-12-3456 y', []],
  ['SSN group 00 is not one', 'x 078-00-1120 y', []],
  ['SSN serial 0000 is not one', 'x 078-05-0000 y', []],
  ['SSN mixed separators is not one', 'x 078-05 1120 y', []],
  ['bare nine digits are not an SSN without a label', 'inode 078051120 size', []],
  ['bare nine digits after an SSN label', 'SSN: 078051120', [['ssn', '078051120']]],
  ['a labelled SSN is masked even if structurally invalid', 'SSN: 000-12-3456', [['ssn', '000-12-3456']]],
  ['spaced digits in a row of numbers are columns', '  1 root 20 0 168 12 3456 S', []],
  ['HICN: SSN with a letter suffix', 'HICN 078-05-1120A', [['ssn', '078-05-1120A']]],
  // MRN and account numbers, label-driven
  ['MRN colon', 'MRN: 12345678', [['mrn', '12345678']]],
  ['MRN hash', 'MRN # A1234567', [['mrn', 'A1234567']]],
  ['MRN without separator (a strong label)', 'MRN 00123456 admitted', [['mrn', '00123456']]],
  ['Medical Record Number', 'Medical Record Number: 55-1234-9', [['mrn', '55-1234-9']]],
  ['JSON key mrn', '{"mrn": "7733441", "ok": true}', [['mrn', '7733441']]],
  ['Patient ID', 'Patient ID=P0099812', [['mrn', 'P0099812']]],
  ['Pt ID', 'Pt ID: 62385359', [['mrn', '62385359']]],
  ['MR#', 'MR#: 88363748', [['mrn', '88363748']]],
  ['Acct #', 'Acct #: 4417-2290', [['account', '4417-2290']]],
  ['a snake_case key ending in a label', '"billing_acct_no": "900874777"', [['account', '900874777']]],
  ['Account No.', 'Account No. 99018833', [['account', '99018833']]],
  ['account needs a separator', 'account 12345 locked', []],
  ['account name without digits', 'pam_unix(sshd:account): account root', []],
  ['MRN followed by words', 'MRN lookup failed', []],
  // Dates of birth
  ['DOB US', 'DOB: 03/14/1961', [['dob', '03/14/1961']]],
  ['DOB ISO in JSON', '"dob":"1961-03-14"', [['dob', '1961-03-14']]],
  ['D.O.B. European', 'D.O.B. 14.03.1961', [['dob', '14.03.1961']]],
  ['Date of Birth long form', 'Date of Birth: March 14, 1961', [['dob', 'March 14, 1961']]],
  ['Born day month year', 'Born on 14 Mar 1961 in Ohio', [['dob', '14 Mar 1961']]],
  ['birth_date column style key', 'birth_date=19610314', [['dob', '19610314']]],
  ['DOB with a format hint', 'DOB (mm/dd/yyyy): 3/4/61', [['dob', '3/4/61']]],
  ['an impossible date is not a DOB', 'DOB: 02/30/1961', []],
  ['a date without a birth label is not masked', 'Mar 14 10:22:01 host sshd[1]: 2024-03-14', []],
  // Phone and fax
  ['NANP parentheses', 'call (212) 555-1234 now', [['phone', '(212) 555-1234']]],
  ['NANP dashes with +1', 'cell +1-212-555-1234', [['phone', '+1-212-555-1234']]],
  ['NANP dots', 'fax 212.555.1234', [['phone', '212.555.1234']]],
  ['E.164 spaced', 'tel +44 20 7946 0958', [['phone', '+44 20 7946 0958']]],
  ['E.164 compact', 'to +4930123456', [['phone', '+4930123456']]],
  ['area code N11 is not a number', '211-555-1234', []],
  ['exchange starting 1 is not a number', '212-155-1234', []],
  ['bare ten digits need a label', 'ts 2125551234', []],
  ['bare ten digits after a phone label', 'Phone: 2125551234', [['phone', '2125551234']]],
  ['time zone offset is not E.164', 'Date: Tue Nov 24 10:00:00 2026 +0100', []],
  // E-mail
  ['e-mail', 'from jane.doe+x@mail.example.org.', [['email', 'jane.doe+x@mail.example.org']]],
  ['systemd unit is not an e-mail', 'Started getty@tty1.service', []],
  ['a commit author is not a patient', 'Author: Dana Whitfield <dana@ops.example.com>', []],
  ['a copyright notice is not a patient', 'pps_core: (C) 2005-2007 Rodolfo Giometti <giometti@linux.it>', []],
  ['a no-reply address is not a patient', 'by 29139614+renovate[bot]@users.noreply.github.com', []],
  // Health plan numbers
  ['MBI with dashes', 'MBI 1EG4-TE5-MK73', [['hpbn', '1EG4-TE5-MK73']]],
  ['MBI compact', 'bene 1EG4TE5MK73 ok', [['hpbn', '1EG4TE5MK73']]],
  ['MBI with a forbidden letter (S) is not one', 'x 1SG4-TE5-MK73 y', []],
  ['MBI with a letter where a digit must be', 'x 1EGA-TE5-MK73 y', []],
  ['MBI starting with 0 is not one', 'x 0EG4-TE5-MK73 y', []],
  ['Member ID', 'Member ID: XKZ123456789', [['hpbn', 'XKZ123456789']]],
  // Payment cards
  ['Visa with spaces', 'card 4111 1111 1111 1111 exp', [['card', '4111 1111 1111 1111']]],
  ['Amex with dashes', 'amex 3782-822463-10005', [['card', '3782-822463-10005']]],
  ['Mastercard compact', 'mc=5555555555554444;', [['card', '5555555555554444']]],
  ['Luhn failure is not a card', 'card 4111 1111 1111 1112', []],
  ['Luhn pass without an issuer prefix is not a card', 'n 1234567812345670', []],
  ['numbers in a row of columns are not a card', 'Mem: 4096 4096 8192 2048 1', []],
  [
    'a card printed 4-4-4-4-3 next to an address',
    'Nguyen  164.153.229.163  4691 1474 9816 9645 977',
    [
      ['ip', '164.153.229.163'],
      ['card', '4691 1474 9816 9645 977'],
    ],
  ],
  [
    'two cards side by side',
    '5548 6925 5471 8819  5176 6521 7606 1203',
    [
      ['card', '5548 6925 5471 8819'],
      ['card', '5176 6521 7606 1203'],
    ],
  ],
  // IP addresses
  ['public IPv4', 'from 8.8.4.4 port 22', [['ip', '8.8.4.4']]],
  ['private IPv4 is not masked', 'inet 10.0.0.5/24 brd 10.0.0.255', []],
  ['netmask is not an address', 'netmask 255.255.255.0', []],
  ['documentation ranges are not masked', 'via 192.0.2.1 and 2001:db8::5', []],
  ['version number is not an address', 'kernel v5.10.0.1-amd64 and 1.2.3.4.5', []],
  ['public IPv6', 'from 2001:4860:4860::8888 port 22', [['ip', '2001:4860:4860::8888']]],
  ['link-local IPv6 is not masked', 'fe80::1c2:3ff:fe4:5', []],
  ['MAC address and clock are not IPv6', 'ether 02:42:ac:11:00:02 at 12:30:45', []],
  ['C++ scope is not IPv6', 'Bad::Bed and std::vector', []],
  // URLs with identifiers
  ['URL query parameter', 'GET https://ehr.example.com/chart?patient=12345&view=full', [['url', '12345']]],
  ['URL path segment after a named one', 'https://fhir.example.com/r4/Patient/9912/_history', [['url', '9912']]],
  ['FHIR search by identifier', 'GET https://portal.example.com/Patient?identifier=987329', [['url', '987329']]],
  ['URL without identifiers', 'see https://example.com/docs/page?lang=en', []],
];

describe('redaction detectors', () => {
  it.each(TABLE)('%s', (_what, line, expected) => {
    expect(found(line)).toEqual(expected);
  });

  it('masks in place with the kind, keeping the length', () => {
    const line = 'pt MRN: 12345678 tel (212) 555-1234 dob 1/2/1960';
    const out = redactor.redactLine(line);
    expect(out).toBe('pt MRN: [MRN]*** tel [PHONE]******* dob [DOB]***');
    expect(out.length).toBe(line.length);
  });

  it('turns detectors off, adds deployment patterns and labels', () => {
    const r = Redactor.create({
      disable: ['ip', 'ssn'],
      patterns: [{ kind: 'empid', regex: 'EMP-(\\d{6})', group: 1 }],
      labels: { mrn: ['Enc No'] },
      emailAllow: ['staff.example.org'],
    });
    expect(found('8.8.8.8 078-05-1120 a@example.com b@it.staff.example.org EMP-123456 Enc No 77812', r)).toEqual([
      ['email', 'a@example.com'],
      ['empid', '123456'],
      ['mrn', '77812'],
    ]);
  });

  it('matches known identifiers by salted hash only, across separators', () => {
    const salt = '00112233445566778899aabbccddeeff';
    const r = Redactor.create({
      known: { salt, sha256: [hashIdentifier(salt, 'ZX-99-8812'), hashIdentifier(salt, 'Jane Q Public'), hashIdentifier(salt, 'Zoë Ng')] },
    });
    expect(r.config.known!.sha256.every((h) => /^[0-9a-f]{64}$/.test(h))).toBe(true);
    expect(found('ticket zx 99 8812 and JANE Q. PUBLIC, not ZX-99-8813', r)).toEqual([
      ['id', 'zx 99 8812'],
      ['id', 'JANE Q. PUBLIC'],
    ]);
    // Composed or decomposed, the same name.
    expect(found('seen: Zoe\u0308 Ng today', r)).toEqual([['id', 'Zoe\u0308 Ng']]);
    // The same value under another salt does not match.
    expect(hashIdentifier('ff'.repeat(16), 'ZX-99-8812')).not.toBe(hashIdentifier(salt, 'ZX-99-8812'));
  });

  it('refuses bad options with the path to them', () => {
    const bad = (o: unknown) => redactionSchema.safeParse(o).error?.issues.map((i) => i.path.join('.'));
    expect(bad({ patterns: [{ kind: 'x', regex: '(' }] })).toEqual(['patterns.0.regex']);
    expect(bad({ patterns: [{ kind: 'x', regex: 'a*' }] })).toEqual(['patterns.0.regex']);
    expect(bad({ disable: ['ssn', 'names'] })).toEqual(['disable.1']);
    expect(bad({ ipAllow: ['10.0.0.5/8'] })).toEqual(['ipAllow.0']);
    expect(bad({ known: { salt: 'abcd', sha256: [] } })).toEqual(['known.salt']);
    expect(bad({ fill: '' })).toEqual(['fill']);
  });
});

describe('identifier format rules', () => {
  it.each([
    ['ssnValid', ssnValid, ['078051120', '001010001', '899999999'], ['000123456', '666123456', '900123456', '078001120', '078050000', '07805112']],
    ['luhnValid', luhnValid, ['79927398713', '4111111111111111'], ['79927398710', '4111111111111112', '']],
    [
      'cardValid',
      cardValid,
      ['4111111111111111', '378282246310005', '5555555555554444', '6011111111111117', '2223003122003222'],
      ['4111111111111112', '1234567812345670', '411111111111'],
    ],
    ['mbiValid', mbiValid, ['1EG4TE5MK73', '9AA0AA0AA00', '1A00A00AA00'], ['0EG4TE5MK73', '1SG4TE5MK73', '1EG4TE5MK7', '1EG4TE5MKZ3', 'AEG4TE5MK73']],
    ['nanpValid', nanpValid, ['2125551234', '8005550100'], ['1125551234', '2115551234', '2925551234', '2121551234', '2125111234']],
    [
      'dateValid',
      dateValid,
      ['02/29/1960', '1961-03-14', '14.03.1961', 'Sept 3, 1999', '3rd March 1961', '14-MAR-61'],
      ['02/29/1961', '13/13/1961', '1961-02-30', 'Foo 3, 1999', '00/00/0000'],
    ],
  ] as const)('%s', (_name, fn, good, bad) => {
    for (const g of good) expect([g, fn(g)]).toEqual([g, true]);
    for (const b of bad) expect([b, fn(b)]).toEqual([b, false]);
  });
});
