//! Turning a short code a person reads on one screen and types on another
//! into a strong key between the two devices, through a relay that must not
//! learn it (issue 13; `docs/end-to-end-encryption.md` §4 and §5).
//!
//! Used twice: a watch shows its pairing code and the parent's app types it
//! (the family's keys then reach the watch), and a trusted family computer
//! shows an approval code and a new computer types it (the family's keys then
//! reach that computer). The cloud relays every message.
//!
//! SPAKE2 (RustCrypto `spake2`, Ed25519 group) gives a relay in the middle
//! one online guess per exchange and nothing to guess offline; both sides
//! then confirm the key (HMAC-SHA256 over the transcript, `ring`) before
//! anything is sent under it, so a wrong code fails on both screens. The
//! identities bound into the exchange are the two devices' keys, so a relay
//! cannot put its own key in their place.

use ring::aead::{Aad, LessSafeKey, Nonce};
use ring::{hkdf, hmac};
use sha2::{Digest, Sha256};
use spake2::{Ed25519Group, Identity, Password, Spake2};

use crate::approval::ApprovalCode;
use crate::pairing::PairingCode;
use crate::signing::Canonical;

/// A code a person reads on one screen and types on another: its canonical
/// characters, with the exchange's purpose, are SPAKE2's password.
pub trait ShownCode {
    fn canonical(&self) -> &str;
}

impl ShownCode for PairingCode {
    fn canonical(&self) -> &str {
        self.as_str()
    }
}

impl ShownCode for ApprovalCode {
    fn canonical(&self) -> &str {
        self.as_str()
    }
}

/// What the exchange is for: bound into the key, so a message of one kind of
/// exchange is useless in the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A watch (shows the code) and a family app (types it).
    PairWatch,
    /// A trusted family computer (shows the code) and a new one (types it).
    ApproveComputer,
}

impl Purpose {
    fn label(self) -> &'static str {
        match self {
            Self::PairWatch => "waymark/pair-watch/v1",
            Self::ApproveComputer => "waymark/approve-computer/v1",
        }
    }
}

/// Why an exchange failed. A wrong code and a relay that interfered look the
/// same, on purpose: both mean "start again with a new code".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeError {
    /// The other side used another code, or the relay changed a message.
    WrongCodeOrTampered,
    /// A message that is not an exchange message at all.
    Malformed,
}

/// Who is who in one exchange: the device showing the code and the one the
/// code is typed on, each named by its public key (or the watch by its id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parties {
    pub purpose: Purpose,
    pub shower: Vec<u8>,
    pub typer: Vec<u8>,
}

impl Parties {
    /// A watch pairing: the watch, by its id, shows the code; whichever
    /// family computer answers types it (the bundle names the family).
    pub fn pair_watch(device_id: &str) -> Self {
        Self {
            purpose: Purpose::PairWatch,
            shower: device_id.as_bytes().to_vec(),
            typer: crate::pairing::FAMILY_IDENTITY.to_vec(),
        }
    }

    fn password(&self, code: &impl ShownCode) -> Password {
        Password::new(
            Canonical::new(self.purpose.label())
                .str(code.canonical())
                .finish(),
        )
    }
}

/// The typer's answer: its SPAKE2 message and its key confirmation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub message: Vec<u8>,
    pub confirmation: [u8; 32],
}

/// The showing side, between sending its first message and the answer.
pub struct Shower {
    parties: Parties,
    spake: Spake2<Ed25519Group>,
    first: Vec<u8>,
}

impl Shower {
    /// Starts an exchange; the message goes out (through the relay) with the
    /// offer or request the code belongs to.
    pub fn start(parties: Parties, code: &impl ShownCode) -> (Self, Vec<u8>) {
        let (spake, first) = Spake2::<Ed25519Group>::start_a(
            &parties.password(code),
            &Identity::new(&parties.shower),
            &Identity::new(&parties.typer),
        );
        let shower = Self {
            parties,
            spake,
            first: first.clone(),
        };
        (shower, first)
    }

    /// Checks the typer's confirmation; on success returns the channel and
    /// the shower's own confirmation, which the typer must see before it
    /// trusts anything sent under the key.
    pub fn finish(self, answer: &Answer) -> Result<(Channel, [u8; 32]), CodeError> {
        let raw = self
            .spake
            .finish(&answer.message)
            .map_err(|_| CodeError::Malformed)?;
        let keys = Keys::derive(&self.parties, &raw, &self.first, &answer.message);
        hmac::verify(&keys.confirm_typer, &keys.transcript, &answer.confirmation)
            .map_err(|_| CodeError::WrongCodeOrTampered)?;
        let mine = tag(&keys.confirm_shower, &keys.transcript);
        Ok((Channel::new(&keys, Side::Shower), mine))
    }
}

/// The typing side, after answering and before the shower's confirmation.
pub struct Typer {
    keys: Keys,
    channel: Channel,
}

impl Typer {
    /// Answers the shower's first message with the code the person typed.
    pub fn answer(
        parties: Parties,
        code: &impl ShownCode,
        first: &[u8],
    ) -> Result<(Self, Answer), CodeError> {
        let (spake, message) = Spake2::<Ed25519Group>::start_b(
            &parties.password(code),
            &Identity::new(&parties.shower),
            &Identity::new(&parties.typer),
        );
        let raw = spake.finish(first).map_err(|_| CodeError::Malformed)?;
        let keys = Keys::derive(&parties, &raw, first, &message);
        let confirmation = tag(&keys.confirm_typer, &keys.transcript);
        let channel = Channel::new(&keys, Side::Typer);
        Ok((
            Self { keys, channel },
            Answer {
                message,
                confirmation,
            },
        ))
    }

    /// Seals a message to go with the answer, before the shower confirmed.
    /// Only for values whose secrecy does not matter (a watch's family
    /// bundle is public keys): the shower opens it only after checking the
    /// typer's confirmation, so what it trusts still came from the code.
    pub fn seal_with_answer(&mut self, plaintext: &[u8], context: &[u8]) -> Vec<u8> {
        self.channel.seal(plaintext, context)
    }

    pub fn confirm(self, shower_confirmation: &[u8; 32]) -> Result<Channel, CodeError> {
        hmac::verify(
            &self.keys.confirm_shower,
            &self.keys.transcript,
            shower_confirmation,
        )
        .map_err(|_| CodeError::WrongCodeOrTampered)?;
        Ok(self.channel)
    }
}

#[derive(Clone, Copy)]
enum Side {
    Shower,
    Typer,
}

struct Keys {
    transcript: Vec<u8>,
    transcript_hash: [u8; 32],
    confirm_shower: hmac::Key,
    confirm_typer: hmac::Key,
    to_typer: [u8; 32],
    to_shower: [u8; 32],
}

impl Keys {
    fn derive(parties: &Parties, raw: &[u8], first: &[u8], second: &[u8]) -> Self {
        let transcript = Canonical::new(parties.purpose.label())
            .str_bytes(&parties.shower)
            .str_bytes(&parties.typer)
            .str_bytes(first)
            .str_bytes(second)
            .finish();
        let transcript_hash: [u8; 32] = Sha256::digest(&transcript).into();
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &transcript_hash).extract(raw);
        let expand = |label: &str| -> [u8; 32] {
            let mut out = [0; 32];
            prk.expand(&[label.as_bytes()], hkdf::HKDF_SHA256)
                .and_then(|okm| okm.fill(&mut out))
                .expect("32 bytes is within HKDF-SHA256's limit");
            out
        };
        Self {
            confirm_shower: hmac::Key::new(hmac::HMAC_SHA256, &expand("confirm shower")),
            confirm_typer: hmac::Key::new(hmac::HMAC_SHA256, &expand("confirm typer")),
            to_typer: expand("shower to typer"),
            to_shower: expand("typer to shower"),
            transcript,
            transcript_hash,
        }
    }
}

fn tag(key: &hmac::Key, transcript: &[u8]) -> [u8; 32] {
    let mut out = [0; 32];
    out.copy_from_slice(hmac::sign(key, transcript).as_ref());
    out
}

/// The confirmed key: messages sealed one way can be opened only the other
/// way, in order, once each.
pub struct Channel {
    transcript_hash: [u8; 32],
    send: LessSafeKey,
    receive: LessSafeKey,
    sent: u64,
    received: u64,
}

fn counter_nonce(n: u64) -> Nonce {
    let mut bytes = [0; 12];
    bytes[4..].copy_from_slice(&n.to_be_bytes());
    Nonce::assume_unique_for_key(bytes)
}

impl Channel {
    fn new(keys: &Keys, side: Side) -> Self {
        let key = crate::location_sealing::aead_key;
        let (send, receive) = match side {
            Side::Shower => (key(&keys.to_typer), key(&keys.to_shower)),
            Side::Typer => (key(&keys.to_shower), key(&keys.to_typer)),
        };
        Self {
            transcript_hash: keys.transcript_hash,
            send,
            receive,
            sent: 0,
            received: 0,
        }
    }

    /// SHA-256 of everything exchanged: what a watch signs in its pairing
    /// confirmation, so the cloud can bind it only to the exchange that ran.
    pub fn transcript_hash(&self) -> [u8; 32] {
        self.transcript_hash
    }

    pub fn seal(&mut self, plaintext: &[u8], context: &[u8]) -> Vec<u8> {
        let mut buf = plaintext.to_vec();
        self.send
            .seal_in_place_append_tag(counter_nonce(self.sent), Aad::from(context), &mut buf)
            .expect("a message is far below ChaCha20-Poly1305's length limit");
        self.sent += 1;
        buf
    }

    pub fn open(&mut self, sealed: &[u8], context: &[u8]) -> Result<Vec<u8>, CodeError> {
        let mut buf = sealed.to_vec();
        let plain = self
            .receive
            .open_in_place(counter_nonce(self.received), Aad::from(context), &mut buf)
            .map_err(|_| CodeError::WrongCodeOrTampered)?;
        let len = plain.len();
        self.received += 1;
        buf.truncate(len);
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parties() -> Parties {
        Parties {
            purpose: Purpose::PairWatch,
            shower: b"watch-0123".to_vec(),
            typer: b"family".to_vec(),
        }
    }

    fn code(s: &str) -> PairingCode {
        PairingCode::parse(s).unwrap()
    }

    #[test]
    fn a_message_sealed_with_the_answer_opens_after_confirmation() {
        let c = code("7KQ2-M9XH-4TRB");
        let (shower, first) = Shower::start(parties(), &c);
        let (mut typer, answer) = Typer::answer(parties(), &c, &first).unwrap();
        let bundle = typer.seal_with_answer(b"public keys", b"bundle");
        let (mut at_watch, confirmation) = shower.finish(&answer).unwrap();
        assert_eq!(at_watch.open(&bundle, b"bundle").unwrap(), b"public keys");
        let mut at_app = typer.confirm(&confirmation).unwrap();
        // The channel goes on in order after the early message.
        let next = at_app.seal(b"more", b"next");
        assert_eq!(at_watch.open(&next, b"next").unwrap(), b"more");
        // With a wrong code the shower never gets that far.
        let (shower, first) = Shower::start(parties(), &c);
        let (mut typer, answer) =
            Typer::answer(parties(), &code("7KQ2-M9XH-4TRC"), &first).unwrap();
        let _ = typer.seal_with_answer(b"public keys", b"bundle");
        assert!(shower.finish(&answer).is_err());
    }

    #[test]
    fn the_right_code_gives_both_sides_one_channel() {
        let c = code("7KQ2-M9XH-4TRB");
        let (shower, first) = Shower::start(parties(), &c);
        let (typer, answer) = Typer::answer(parties(), &c, &first).unwrap();
        let (mut at_watch, confirmation) = shower.finish(&answer).unwrap();
        let mut at_app = typer.confirm(&confirmation).unwrap();
        assert_eq!(at_watch.transcript_hash(), at_app.transcript_hash());
        let sealed = at_app.seal(b"the family's key", b"bundle");
        assert_eq!(
            at_watch.open(&sealed, b"bundle").unwrap(),
            b"the family's key"
        );
        // Replayed, or opened under another context: refused.
        assert!(at_watch.open(&sealed, b"bundle").is_err());
        let back = at_watch.seal(b"ok", b"ack");
        assert!(at_app.open(&back, b"other").is_err());
    }

    /// A whole exchange; `Ok` when both sides end with one channel.
    fn exchange(
        shower_side: (Parties, &impl ShownCode),
        typer_side: (Parties, &impl ShownCode),
    ) -> Result<(), CodeError> {
        let (shower, first) = Shower::start(shower_side.0, shower_side.1);
        let (typer, answer) = Typer::answer(typer_side.0, typer_side.1, &first)?;
        let (mut at_shower, confirmation) = shower.finish(&answer)?;
        let mut at_typer = typer.confirm(&confirmation)?;
        let sealed = at_typer.seal(b"ping", b"test");
        assert_eq!(at_shower.open(&sealed, b"test")?, b"ping");
        Ok(())
    }

    #[test]
    fn a_wrong_code_fails_on_both_sides() {
        let (right, wrong) = (code("7KQ2M9XH4TRB"), code("7KQ2M9XH4TRV"));
        let (shower, first) = Shower::start(parties(), &right);
        let (typer, answer) = Typer::answer(parties(), &wrong, &first).unwrap();
        assert_eq!(
            shower.finish(&answer).err(),
            Some(CodeError::WrongCodeOrTampered)
        );
        // The watch sends no confirmation then; a forged one is refused too.
        assert_eq!(
            typer.confirm(&[0; 32]).err(),
            Some(CodeError::WrongCodeOrTampered)
        );
        // The right code, typed: one channel.
        assert_eq!(exchange((parties(), &right), (parties(), &right)), Ok(()));
    }

    #[test]
    fn a_relay_in_the_middle_gets_one_guess_and_loses() {
        let real = code("7KQ2M9XH4TRB");
        let guess = code("000000000000");
        // The relay answers the watch itself, with its guess at the code...
        assert_eq!(
            exchange((parties(), &real), (parties(), &guess)),
            Err(CodeError::WrongCodeOrTampered)
        );
        // ...or shows the app a first message of its own, made with its guess.
        assert_eq!(
            exchange((parties(), &guess), (parties(), &real)),
            Err(CodeError::WrongCodeOrTampered)
        );
        // Only the right guess would have worked.
        assert_eq!(exchange((parties(), &real), (parties(), &real)), Ok(()));
    }

    #[test]
    fn the_identities_are_bound() {
        // A relay that swaps in its own key for the typer's (same code).
        let c = code("7KQ2M9XH4TRB");
        let substituted = Parties {
            typer: b"relay's key".to_vec(),
            ..parties()
        };
        assert_eq!(
            exchange((parties(), &c), (substituted, &c)),
            Err(CodeError::WrongCodeOrTampered)
        );
        assert_eq!(exchange((parties(), &c), (parties(), &c)), Ok(()));
    }

    #[test]
    fn a_pairing_exchange_is_useless_for_an_approval() {
        let c = code("7KQ2M9XH4TRB");
        let approval = Parties {
            purpose: Purpose::ApproveComputer,
            ..parties()
        };
        assert_eq!(
            exchange((parties(), &c), (approval.clone(), &c)),
            Err(CodeError::WrongCodeOrTampered)
        );
        assert_eq!(exchange((approval.clone(), &c), (approval, &c)), Ok(()));
    }

    #[test]
    fn garbage_is_malformed() {
        let c = code("7KQ2M9XH4TRB");
        assert_eq!(
            Typer::answer(parties(), &c, b"short").err(),
            Some(CodeError::Malformed)
        );
    }
}
