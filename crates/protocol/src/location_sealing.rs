//! Encrypting a watch's fixes to its family, and opening them in the family's
//! apps (issue 13; `docs/end-to-end-encryption.md` §3). Only the watch and the
//! apps compile this (feature `e2e`); the cloud handles sealed batches through
//! [`crate::sealed_report`] without the code or the keys to open them.
//!
//! The scheme, from kept crates only:
//! - per watch start and key epoch, one HPKE (RFC 9180) base-mode setup to the
//!   family's location key: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, export
//!   only (`hpke` crate), announced in a signed [`SetupRecord`];
//! - per batch, a 32-byte key exported from that context under the batch's
//!   sequence number, and ChaCha20-Poly1305 (`ring`) with the batch's version
//!   as the nonce and the whole header as associated data. A key is used for
//!   one sequence number only, and a nonce once per key.

use std::collections::HashMap;

use hpke::aead::{AeadCtxR, AeadCtxS, ExportOnlyAead};
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};

use crate::report::{Fix, FixError, Record};
use crate::safe_zones::{ZoneEvent, ZoneEventKind, ZoneId};
use crate::sealed_report::{
    AEAD_TAG_LEN, ChainHash, EncappedKey, LocationPublicKey, SEALED_FIX_LEN, SealedBatch,
    SealedHeader, SetupId, SetupRecord,
};
use crate::signing::Canonical;

type Kem = X25519HkdfSha256;
type SenderContext = AeadCtxS<ExportOnlyAead, HkdfSha256, Kem>;
type ReceiverContext = AeadCtxR<ExportOnlyAead, HkdfSha256, Kem>;

/// HPKE `info`: binds a setup to one watch and one key epoch.
fn setup_info(device_id: &str, epoch: u32) -> Vec<u8> {
    Canonical::new("waymark/fixes/v1")
        .str(device_id)
        .u64(epoch.into())
        .finish()
}

/// The exporter context of one batch's key.
fn batch_export_context(seq: u64) -> [u8; 24] {
    let mut ctx = [0; 24];
    ctx[..16].copy_from_slice(b"waymark/batch/v1");
    ctx[16..].copy_from_slice(&seq.to_be_bytes());
    ctx
}

fn nonce(version: u32) -> Nonce {
    let mut n = [0; 12];
    n[8..].copy_from_slice(&version.to_be_bytes());
    Nonce::assume_unique_for_key(n)
}

/// ChaCha20-Poly1305 under a 32-byte key (every sealed thing in Waymark).
pub(crate) fn aead_key(secret: &[u8; 32]) -> LessSafeKey {
    // A 32-byte key is always valid for ChaCha20-Poly1305.
    LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, secret).expect("32-byte key"))
}

/// The private half of a family location key (one per key epoch). Held only
/// by the family's computers.
#[derive(Clone)]
pub struct LocationSecretKey(<Kem as hpke::Kem>::PrivateKey);

impl LocationSecretKey {
    /// A new random key pair.
    pub fn generate() -> (Self, LocationPublicKey) {
        let (sk, pk) = Kem::gen_keypair();
        (Self(sk), public_bytes(&pk))
    }

    pub fn public_key(&self) -> LocationPublicKey {
        public_bytes(&Kem::sk_to_pk(&self.0))
    }

    /// The key's 32 bytes, for the family's key file.
    pub fn to_bytes(&self) -> [u8; 32] {
        let mut out = [0; 32];
        out.copy_from_slice(&self.0.to_bytes());
        out
    }

    /// For the other HPKE uses of the same kind of key (epoch key blobs).
    pub(crate) fn hpke_key(&self) -> &<Kem as hpke::Kem>::PrivateKey {
        &self.0
    }

    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        // Every 32-byte string is an X25519 private key (it is clamped on use).
        Self(<Kem as hpke::Kem>::PrivateKey::from_bytes(bytes).expect("32-byte X25519 key"))
    }
}

impl std::fmt::Debug for LocationSecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LocationSecretKey(…)")
    }
}

fn public_bytes(pk: &<Kem as hpke::Kem>::PublicKey) -> LocationPublicKey {
    let mut out = [0; 32];
    out.copy_from_slice(&pk.to_bytes());
    LocationPublicKey(out)
}

/// Why a watch could not start sealing to a family key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealError {
    /// The family's public key is not a usable X25519 key.
    BadFamilyKey,
}

/// A watch's sealing state for one key epoch, made at start (or when the
/// family switches epoch). Holds no secret that outlives the process.
pub struct WatchSealer {
    device_id: String,
    epoch: u32,
    setup_id: SetupId,
    context: SenderContext,
}

impl WatchSealer {
    /// Sets up HPKE to the family's key; the record must reach the cloud
    /// (signed by the device key) before the batches that name it.
    pub fn start(
        device_id: &str,
        epoch: u32,
        family: &LocationPublicKey,
    ) -> Result<(Self, SetupRecord), SealError> {
        let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(&family.0)
            .map_err(|_| SealError::BadFamilyKey)?;
        let (enc, context) = hpke::setup_sender::<ExportOnlyAead, HkdfSha256, Kem>(
            &OpModeS::Base,
            &pk,
            &setup_info(device_id, epoch),
        )
        .map_err(|_| SealError::BadFamilyKey)?;
        let mut enc_bytes = [0; 32];
        enc_bytes.copy_from_slice(&enc.to_bytes());
        let enc = EncappedKey(enc_bytes);
        let setup_id = SetupId::of(&enc);
        let record = SetupRecord {
            device_id: device_id.to_owned(),
            epoch,
            setup_id,
            enc,
        };
        let sealer = Self {
            device_id: device_id.to_owned(),
            epoch,
            setup_id,
            context,
        };
        Ok((sealer, record))
    }

    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// Encrypts `fixes` as batch `seq`. `version` must differ from every
    /// earlier sealing of the same `seq` under this sealer (the watch counts
    /// its repairs of a queued batch); `prev_hash` is the previous batch's
    /// [`SealedBatch::chain_hash`].
    pub fn seal(&self, seq: u64, version: u32, prev_hash: ChainHash, fixes: &[Fix]) -> SealedBatch {
        let records: Vec<Record> = fixes.iter().copied().map(Record::Fix).collect();
        self.seal_records(seq, version, prev_hash, &records)
    }

    /// [`seal`](Self::seal) for fixes and zone events. Each record is 25
    /// bytes. A fix: latitude, longitude, accuracy (f64, big-endian), battery
    /// (0–100). A zone event: the zone id (16 bytes), 8 zero bytes, and its
    /// kind as a last byte no battery can have ([`ZONE_EVENT_TAGS`]).
    pub fn seal_records(
        &self,
        seq: u64,
        version: u32,
        prev_hash: ChainHash,
        records: &[Record],
    ) -> SealedBatch {
        let header = SealedHeader {
            device_id: self.device_id.clone(),
            seq,
            epoch: self.epoch,
            setup_id: self.setup_id,
            version,
            times: records.iter().map(Record::t).collect(),
            prev_hash,
        };
        let mut plaintext = Vec::with_capacity(records.len() * SEALED_FIX_LEN + AEAD_TAG_LEN);
        for r in records {
            match r {
                Record::Fix(f) => {
                    plaintext.extend_from_slice(&f.lat.to_bits().to_be_bytes());
                    plaintext.extend_from_slice(&f.lon.to_bits().to_be_bytes());
                    plaintext.extend_from_slice(&f.acc.to_bits().to_be_bytes());
                    plaintext.push(f.bat);
                }
                Record::Zone(e) => {
                    plaintext.extend_from_slice(&e.zone_id.0);
                    plaintext.extend_from_slice(&[0; 8]);
                    plaintext.push(event_tag(e.kind));
                }
            }
        }
        let mut secret = [0; 32];
        self.context
            .export(&batch_export_context(seq), &mut secret)
            .expect("32 bytes is within HPKE's export limit");
        aead_key(&secret)
            .seal_in_place_append_tag(nonce(version), Aad::from(header.aad()), &mut plaintext)
            .expect("a batch is far below ChaCha20-Poly1305's length limit");
        SealedBatch {
            header,
            ciphertext: plaintext,
        }
    }
}

/// Why a sealed batch or setup could not be opened. None of these is ever
/// shown as a location.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    /// No key of this epoch is held here (a computer added after it, or
    /// removed before it).
    NoEpochKey,
    /// The batch names a setup this app has not been given.
    UnknownSetup,
    /// The setup record's id is not derived from its key.
    InconsistentSetup,
    /// The setup belongs to another watch or epoch than the batch says.
    SetupMismatch,
    /// The ciphertext or its header was changed after sealing.
    Altered,
    /// The ciphertext's length does not match the header's fix count.
    Length,
    /// The plaintext holds a value no watch reports.
    BadFix(FixError),
    /// A record that is neither a fix nor a zone event.
    BadRecord,
}

/// The last byte of a zone event's record: arrived, left, not arrived by.
pub const ZONE_EVENT_TAGS: [u8; 3] = [0xE1, 0xE2, 0xE3];

fn event_tag(kind: ZoneEventKind) -> u8 {
    match kind {
        ZoneEventKind::Arrived => ZONE_EVENT_TAGS[0],
        ZoneEventKind::Left => ZONE_EVENT_TAGS[1],
        ZoneEventKind::NotArrivedBy => ZONE_EVENT_TAGS[2],
    }
}

fn event_kind(tag: u8) -> Option<ZoneEventKind> {
    match tag {
        0xE1 => Some(ZoneEventKind::Arrived),
        0xE2 => Some(ZoneEventKind::Left),
        0xE3 => Some(ZoneEventKind::NotArrivedBy),
        _ => None,
    }
}

struct OpenSetup {
    device_id: String,
    epoch: u32,
    context: ReceiverContext,
}

/// The family app's side: every epoch key it holds and every setup it has
/// accepted. Opening is symmetric cryptography only (one HPKE export and one
/// AEAD open per batch); the X25519 work happens once per setup.
#[derive(Default)]
pub struct FamilyOpener {
    keys: HashMap<u32, LocationSecretKey>,
    setups: HashMap<SetupId, OpenSetup>,
}

impl FamilyOpener {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add_epoch_key(&mut self, epoch: u32, key: LocationSecretKey) {
        self.keys.insert(epoch, key);
    }

    /// Accepts a setup record whose device signature the caller has checked
    /// (`SignedSetupRecord::verify`) against the certificate seen at pairing.
    pub fn add_setup(&mut self, record: &SetupRecord) -> Result<(), OpenError> {
        if !record.is_consistent() {
            return Err(OpenError::InconsistentSetup);
        }
        let key = self.keys.get(&record.epoch).ok_or(OpenError::NoEpochKey)?;
        let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&record.enc.0)
            .map_err(|_| OpenError::InconsistentSetup)?;
        let context = hpke::setup_receiver::<ExportOnlyAead, HkdfSha256, Kem>(
            &OpModeR::Base,
            &key.0,
            &enc,
            &setup_info(&record.device_id, record.epoch),
        )
        .map_err(|_| OpenError::InconsistentSetup)?;
        self.setups.insert(
            record.setup_id,
            OpenSetup {
                device_id: record.device_id.clone(),
                epoch: record.epoch,
                context,
            },
        );
        Ok(())
    }

    /// Decrypts one batch. Its authenticity (the device signature or the
    /// hash chain, `sealed_report::authenticate_chain`) is checked separately
    /// and first; this also refuses anything changed after sealing.
    pub fn open(&self, batch: &SealedBatch) -> Result<Vec<Fix>, OpenError> {
        Ok(self
            .open_records(batch)?
            .into_iter()
            .filter_map(|r| match r {
                Record::Fix(f) => Some(f),
                Record::Zone(_) => None,
            })
            .collect())
    }

    /// [`open`](Self::open), with the batch's zone events too, in the
    /// watch's order.
    pub fn open_records(&self, batch: &SealedBatch) -> Result<Vec<Record>, OpenError> {
        let header = &batch.header;
        let setup = self
            .setups
            .get(&header.setup_id)
            .ok_or(OpenError::UnknownSetup)?;
        if setup.device_id != header.device_id || setup.epoch != header.epoch {
            return Err(OpenError::SetupMismatch);
        }
        let n = header.times.len();
        if batch.ciphertext.len() != n * SEALED_FIX_LEN + AEAD_TAG_LEN {
            return Err(OpenError::Length);
        }
        let mut secret = [0; 32];
        setup
            .context
            .export(&batch_export_context(header.seq), &mut secret)
            .expect("32 bytes is within HPKE's export limit");
        let mut buf = batch.ciphertext.clone();
        let plain = aead_key(&secret)
            .open_in_place(nonce(header.version), Aad::from(header.aad()), &mut buf)
            .map_err(|_| OpenError::Altered)?;
        let mut records = Vec::with_capacity(n);
        for (chunk, &t) in plain.chunks_exact(SEALED_FIX_LEN).zip(&header.times) {
            if chunk[24] > 100 {
                let kind = event_kind(chunk[24]).ok_or(OpenError::BadRecord)?;
                if chunk[16..24] != [0; 8] {
                    return Err(OpenError::BadRecord);
                }
                let zone_id = ZoneId(chunk[..16].try_into().expect("16 bytes"));
                records.push(Record::Zone(ZoneEvent { zone_id, kind, t }));
                continue;
            }
            let f64_at = |i: usize| {
                f64::from_bits(u64::from_be_bytes(
                    chunk[i..i + 8].try_into().expect("8 bytes"),
                ))
            };
            let fix = Fix {
                t,
                lat: f64_at(0),
                lon: f64_at(8),
                acc: f64_at(16),
                bat: chunk[24],
            };
            fix.validate_values().map_err(OpenError::BadFix)?;
            records.push(Record::Fix(fix));
        }
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sealed_report::{Authenticity, SignedSealedBatch, authenticate_chain};

    fn fixes(n: usize, t0: i64) -> Vec<Fix> {
        (0..n)
            .map(|i| Fix {
                t: t0 + i as i64 * 1000,
                lat: 52.520_008 + i as f64 * 1e-5,
                lon: 13.404_954 - i as f64 * 2e-5,
                acc: 4.5,
                bat: 80 - i as u8,
            })
            .collect()
    }

    fn family() -> (FamilyOpener, LocationPublicKey) {
        let (sk, pk) = LocationSecretKey::generate();
        let mut opener = FamilyOpener::new();
        opener.add_epoch_key(0, sk);
        (opener, pk)
    }

    #[test]
    fn the_family_opens_what_the_watch_sealed_exactly() {
        let (mut opener, pk) = family();
        let (sealer, setup) = WatchSealer::start("watch-1", 0, &pk).unwrap();
        opener.add_setup(&setup).unwrap();
        let sent = fixes(5, 1_700_000_000_000);
        let batch = sealer.seal(1, 0, ChainHash::GENESIS, &sent);
        assert_eq!(opener.open(&batch).unwrap(), sent);
        // Nothing of a coordinate is in what the cloud receives.
        let json = serde_json::to_string(&batch).unwrap();
        assert!(!json.contains("52.52") && !json.contains("13.40"), "{json}");
        for f in &sent {
            let bits = f.lat.to_bits().to_be_bytes();
            assert!(!batch.ciphertext.windows(8).any(|w| w == bits));
        }
    }

    #[test]
    fn zone_events_travel_among_fixes_and_look_like_fixes_to_the_cloud() {
        let (mut opener, pk) = family();
        let (sealer, setup) = WatchSealer::start("watch-1", 0, &pk).unwrap();
        opener.add_setup(&setup).unwrap();
        let f = fixes(2, 1_700_000_000_000);
        let event = ZoneEvent {
            zone_id: ZoneId([7; 16]),
            kind: ZoneEventKind::Left,
            t: f[1].t,
        };
        let sent = vec![Record::Fix(f[0]), Record::Fix(f[1]), Record::Zone(event)];
        let batch = sealer.seal_records(1, 0, ChainHash::GENESIS, &sent);
        assert_eq!(opener.open_records(&batch).unwrap(), sent);
        assert_eq!(opener.open(&batch).unwrap(), f, "fixes alone");
        // Same size as three fixes: the cloud cannot count events.
        let three = sealer.seal(2, 0, ChainHash::GENESIS, &fixes(3, 1_700_000_000_000));
        assert_eq!(batch.ciphertext.len(), three.ciphertext.len());
        assert!(!batch.ciphertext.windows(16).any(|w| w == [7; 16]));
    }

    #[test]
    fn any_change_the_cloud_makes_fails_to_open() {
        let (mut opener, pk) = family();
        let (sealer, setup) = WatchSealer::start("watch-1", 0, &pk).unwrap();
        opener.add_setup(&setup).unwrap();
        let batch = sealer.seal(4, 0, ChainHash([3; 32]), &fixes(2, 1_700_000_000_000));
        assert!(opener.open(&batch).is_ok());
        let changes: Vec<fn(&mut SealedBatch)> = vec![
            |b| b.ciphertext[0] ^= 1,
            |b| *b.ciphertext.last_mut().unwrap() ^= 1,
            |b| b.header.times[1] += 1,
            |b| b.header.prev_hash.0[0] ^= 1,
            |b| b.header.version += 1,
            // Renumbered: the key is derived from the sequence number.
            |b| b.header.seq += 1,
        ];
        for change in changes {
            let mut altered = batch.clone();
            change(&mut altered);
            assert_eq!(opener.open(&altered), Err(OpenError::Altered));
        }
        let mut other_watch = batch.clone();
        other_watch.header.device_id = "watch-2".into();
        assert_eq!(opener.open(&other_watch), Err(OpenError::SetupMismatch));
    }

    #[test]
    fn without_the_epoch_key_nothing_opens() {
        let (mut own, pk) = family();
        let (sealer, setup) = WatchSealer::start("watch-1", 0, &pk).unwrap();
        let batch = sealer.seal(1, 0, ChainHash::GENESIS, &fixes(1, 1_700_000_000_000));
        // A computer holding another family's key (or a later epoch's only).
        let (mut stranger, _) = family();
        assert!(stranger.add_setup(&setup).is_ok(), "the setup is public");
        assert_eq!(stranger.open(&batch), Err(OpenError::Altered));
        let mut no_keys = FamilyOpener::new();
        assert_eq!(no_keys.add_setup(&setup), Err(OpenError::NoEpochKey));
        assert_eq!(no_keys.open(&batch), Err(OpenError::UnknownSetup));
        // The family that holds the key opens it.
        own.add_setup(&setup).unwrap();
        assert_eq!(own.open(&batch).unwrap().len(), 1);
    }

    #[test]
    fn a_setup_with_a_chosen_id_is_refused() {
        let (mut opener, pk) = family();
        let (_, mut setup) = WatchSealer::start("watch-1", 0, &pk).unwrap();
        setup.setup_id.0[0] ^= 1;
        assert_eq!(opener.add_setup(&setup), Err(OpenError::InconsistentSetup));
    }

    #[test]
    fn a_restamped_batch_gets_a_new_nonce_and_still_opens() {
        let (mut opener, pk) = family();
        let (sealer, setup) = WatchSealer::start("watch-1", 0, &pk).unwrap();
        opener.add_setup(&setup).unwrap();
        let first = fixes(3, 1_700_000_000_000);
        let mut restamped = first.clone();
        for f in &mut restamped {
            f.t += 3_600_000;
        }
        let a = sealer.seal(9, 0, ChainHash::GENESIS, &first);
        let b = sealer.seal(9, 1, ChainHash::GENESIS, &restamped);
        // Same key (same sequence), different nonce: the keystreams differ.
        assert_ne!(a.ciphertext[..16], b.ciphertext[..16]);
        assert_eq!(opener.open(&b).unwrap(), restamped);
    }

    #[test]
    fn secret_keys_round_trip_and_name_their_public_key() {
        let (sk, pk) = LocationSecretKey::generate();
        let back = LocationSecretKey::from_bytes(&sk.to_bytes());
        assert_eq!(back.public_key(), pk);
        assert_eq!(format!("{back:?}"), "LocationSecretKey(…)");
    }

    #[test]
    fn a_chained_history_is_authenticated_and_opened() {
        let (mut opener, pk) = family();
        let (sealer, setup) = WatchSealer::start("watch-1", 0, &pk).unwrap();
        opener.add_setup(&setup).unwrap();
        let mut prev = ChainHash::GENESIS;
        let mut history = Vec::new();
        for seq in 1..=20u64 {
            let batch = sealer.seal(
                seq,
                0,
                prev,
                &fixes(2, 1_700_000_000_000 + seq as i64 * 10_000),
            );
            prev = batch.chain_hash();
            history.push(SignedSealedBatch {
                batch,
                signature: String::new(),
            });
        }
        let check = authenticate_chain(&history, |_| true);
        assert_eq!(check.signatures_checked, 1);
        for (b, a) in history.iter().zip(&check.batches) {
            assert_ne!(*a, Authenticity::Refused);
            assert_eq!(opener.open(&b.batch).unwrap().len(), 2);
        }
    }
}
