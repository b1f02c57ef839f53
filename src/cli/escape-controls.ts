/**
 * The one place where text that comes from a user or from Redis (lock names, ids, prefixes, error
 * messages) is made safe for a terminal. A lock name often carries a tenant or job id taken from
 * user input: printed raw, `\x1b[2J` clears the operator's screen, `\x1b]52;c;...\x07` writes their
 * clipboard, a `\n` prints a forged row, `\u202e` turns the rest of the line around.
 *
 * Every character that a terminal acts on or does not show is written as a visible escape instead:
 * - control characters (Unicode Cc: C0 U+0000-U+001F, DEL U+007F, C1 U+0080-U+009F): `\n`, `\r`,
 *   `\t`, else `\xHH` (ESC is `\x1b`);
 * - format characters (Unicode Cf: the bidi embeddings, overrides and isolates U+202A-U+202E and
 *   U+2066-U+2069, the marks U+200E/U+200F/U+061C, the zero-width U+200B-U+200D, U+2060 and U+FEFF,
 *   the soft hyphen, the invisible tag characters U+E0000-U+E007F, ...) and the line and paragraph
 *   separators U+2028/U+2029 (Zl, Zp): `\u{HHHH}`.
 * A backslash is doubled, so that the escape is unambiguous: a name that really contains the four
 * characters `\x1b` is shown as `\\x1b`, never as an escaped ESC.
 * Everything else (letters of any script, emoji, spaces) is left as it is.
 */
const UNSAFE = /[\\\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu;

const NAMED: Readonly<Record<string, string>> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** `text` with every control, format and separator character shown as a visible escape (see above). */
export function escapeControls(text: string): string {
  return text.replace(UNSAFE, (c) => {
    const named = NAMED[c];
    if (named !== undefined) return named;
    const code = c.codePointAt(0)!;
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`;
  });
}
