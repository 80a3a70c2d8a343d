// Codes as a person types them: the same forgiving rules as the protocol
// crate's `PairingCode::parse` and `ApprovalCode::parse` (case, spaces and
// dashes ignored; O is 0, I and L are 1; a pasted `waymark-pair:` prefix is
// dropped). A watch's pairing code has 12 characters (a 4-character locator,
// then the secret); the approval code a family computer shows has 10.

const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
export const CODE_CHARS = 12;
export const APPROVAL_CODE_CHARS = 10;
const QR_PREFIX = "waymark-pair:";

/** The code's canonical characters, or null if it cannot be one of `chars`. */
export function normaliseCode(input: string, chars: number = CODE_CHARS): string | null {
  let s = input.trim();
  if (s.toLowerCase().startsWith(QR_PREFIX)) s = s.slice(QR_PREFIX.length);
  let out = "";
  for (const raw of s.toUpperCase()) {
    if (raw === " " || raw === "-" || (raw >= "\u2010" && raw <= "\u2015")) continue;
    const c = raw === "O" ? "0" : raw === "I" || raw === "L" ? "1" : raw;
    if (!ALPHABET.includes(c)) return null;
    out += c;
    if (out.length > chars) return null;
  }
  return out.length === chars ? out : null;
}

/** Groups what has been typed so far as the screen shows it: `7KQM-3XWD-9PRB`. */
export function groupCode(input: string, chars: number = CODE_CHARS): string {
  const typed = [...input.toUpperCase()].filter((c) => /[0-9A-Z]/.test(c)).slice(0, chars);
  const parts = [typed.slice(0, 4), typed.slice(4, 8), typed.slice(8, chars)].filter((p) => p.length > 0);
  return parts.map((p) => p.join("")).join("-");
}

/** What is wrong with a typed pairing code, for the field's hint; null when it is fine. */
export function codeProblem(input: string): string | null {
  if (input.trim() === "") return "Type the code the watch shows.";
  const letters = [...input].filter((c) => /[0-9a-z]/i.test(c));
  if (letters.some((c) => c.toUpperCase() === "U")) return "Waymark codes never contain the letter U. Check the watch.";
  if (letters.length < CODE_CHARS) return `The code has ${CODE_CHARS} letters and digits; ${letters.length} typed so far.`;
  if (normaliseCode(input) === null) return "That does not look like a Waymark pairing code. Check the watch.";
  return null;
}
