//! 128 random bits as 26 characters a person can read aloud and type back:
//! Crockford base32 in groups of five, as the recovery key and invitation
//! codes show them. Parsing forgives case, spaces, dashes, O for 0 and I/L
//! for 1, and refuses anything that is not exactly 128 bits.

use rand::RngCore;

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const CHARS: usize = 26;

/// 128 fresh random bits from the operating system.
pub fn random_128() -> [u8; 16] {
    let mut r = [0; 16];
    rand::rngs::OsRng.fill_bytes(&mut r);
    r
}

/// `XXXXX-XXXXX-XXXXX-XXXXX-XXXXX-X`.
pub fn display(bits: &[u8; 16]) -> String {
    let value = u128::from_be_bytes(*bits);
    let chars: Vec<char> = (0..CHARS)
        .rev()
        .map(|i| ALPHABET[((value >> (5 * i)) & 31) as usize] as char)
        .collect();
    chars
        .chunks(5)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// The 128 bits a person typed, if they are exactly that.
pub fn parse(input: &str) -> Option<[u8; 16]> {
    let mut value: u128 = 0;
    let mut n = 0;
    for c in input.chars() {
        let c = match c.to_ascii_uppercase() {
            ' ' | '-' => continue,
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        };
        let digit = ALPHABET.iter().position(|&a| a as char == c)? as u128;
        n += 1;
        if n > CHARS {
            return None;
        }
        // 26 characters hold 130 bits: the first may carry only 3.
        if n == 1 && digit > 7 {
            return None;
        }
        value = (value << 5) | digit;
    }
    (n == CHARS).then(|| value.to_be_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_shown_parses_back_and_typos_do_not() {
        for _ in 0..100 {
            let bits = random_128();
            let shown = display(&bits);
            assert_eq!(shown.len(), 31);
            assert_eq!(parse(&shown), Some(bits));
            assert_eq!(parse(&shown.to_lowercase().replace('-', " ")), Some(bits));
            assert_eq!(parse(&shown[..30]), None);
            assert_eq!(parse(&format!("{shown}0")), None);
        }
        assert_eq!(parse("U0000-00000-00000-00000-00000-0"), None);
        assert_eq!(parse("80000-00000-00000-00000-00000-0"), None);
        assert_eq!(parse("7ZZZZ-ZZZZZ-ZZZZZ-ZZZZZ-ZZZZZ-Z"), Some([0xff; 16]));
    }
}
