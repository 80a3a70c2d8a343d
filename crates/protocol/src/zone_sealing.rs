//! A family's safe zones on their way to a watch (issue 16 on the design of
//! issue 13; `docs/end-to-end-encryption.md` §13): sealed with HPKE to the
//! watch's own X25519 key and signed by a family computer of the roster the
//! watch trusts, over a version number. The cloud relays the set; it can
//! neither read it nor change, forge or replay one.

use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, OpModeR, OpModeS, Serializable};
use serde::{Deserialize, Serialize};

use crate::family_roster::{FamilyKeyPair, TrustedRoster};
use crate::family_time::FamilyTimeZone;
use crate::location_sealing::LocationSecretKey;
use crate::safe_zones::{Zone, ZoneError};
use crate::sealed_report::{EncappedKey, LocationPublicKey};
use crate::signing::{Canonical, b64, unb64};
pub use crate::zone_relay::{FAMILY_COPY, SealedZoneSet};

type Kem = X25519HkdfSha256;

/// Every zone a watch is to check, as a family computer last saved them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneSet {
    /// One more each time the family changes its zones.
    pub version: u64,
    /// The time zone its schedules are read in. (A watch's stored set from
    /// before time zones were sealed has none: it was read in UTC.)
    #[serde(default = "FamilyTimeZone::utc")]
    pub time_zone: FamilyTimeZone,
    pub zones: Vec<Zone>,
}

impl ZoneSet {
    /// SHA-256 of the set as sealed: what a family computer remembers of
    /// the newest set it checked, to know it again byte for byte.
    pub fn digest(&self) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        Sha256::digest(serde_json::to_vec(self).expect("zones serialise")).into()
    }
}

/// A set as it comes out of the envelope, before its time zone is looked
/// up: an unknown name is its own refusal, not "altered".
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenedSet {
    version: u64,
    time_zone: String,
    zones: Vec<Zone>,
}

/// Why a watch refuses a zone set (it reports the refusal; the apps show it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneSetError {
    /// Not signed by a computer of the roster the watch trusts.
    UnknownSigner,
    BadSignature,
    /// Not newer than the set the watch has: replayed.
    Replayed,
    /// Sealed to another watch or key, or altered.
    NotForThisWatch,
    /// It opened, but a zone in it breaks a rule.
    InvalidZone(ZoneError),
    /// It opened, but its time zone is not in this build's database.
    UnknownTimeZone,
}

fn context(watch_id: &str, version: u64, recipient: &LocationPublicKey) -> Vec<u8> {
    Canonical::new("waymark/zone-set/v1")
        .str(watch_id)
        .u64(version)
        .bytes(&recipient.0)
        .finish()
}

impl SealedZoneSet {
    fn signing_bytes(&self) -> Vec<u8> {
        Canonical::new("waymark/zone-set-signature/v1")
            .str_bytes(&context(&self.watch_id, self.version, &self.recipient))
            .bytes(&self.enc.0)
            .str(&self.ciphertext)
            .finish()
    }

    /// Seals `set` for one watch (its zone key, learnt at pairing) and signs
    /// it with this family computer's key.
    pub fn seal(
        set: &ZoneSet,
        watch_id: &str,
        watch_key: &LocationPublicKey,
        by: &FamilyKeyPair,
    ) -> Self {
        let plaintext = serde_json::to_vec(set).expect("zones serialise");
        Self::seal_plaintext(&plaintext, set.version, watch_id, watch_key, by)
    }

    fn seal_plaintext(
        plaintext: &[u8],
        version: u64,
        watch_id: &str,
        watch_key: &LocationPublicKey,
        by: &FamilyKeyPair,
    ) -> Self {
        let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(&watch_key.0)
            .expect("a watch's zone key is 32 bytes");
        let info = context(watch_id, version, watch_key);
        let (enc, ciphertext) = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, Kem>(
            &OpModeS::Base,
            &pk,
            &info,
            plaintext,
            &info,
        )
        .expect("X25519 encapsulation to a valid key");
        let mut enc_bytes = [0; 32];
        enc_bytes.copy_from_slice(&enc.to_bytes());
        let mut sealed = Self {
            watch_id: watch_id.to_owned(),
            version,
            recipient: *watch_key,
            enc: EncappedKey(enc_bytes),
            ciphertext: b64(&ciphertext),
            signer: by.signing_public(),
            signature: String::new(),
        };
        sealed.signature = by.sign(&sealed.signing_bytes());
        sealed
    }

    /// The family's own copy, sealed to the epoch key `epoch_key`.
    pub fn seal_for_family(
        set: &ZoneSet,
        epoch_key: &LocationPublicKey,
        by: &FamilyKeyPair,
    ) -> Self {
        Self::seal(set, FAMILY_COPY, epoch_key, by)
    }

    /// What the watch does with a set the cloud hands it: checks who signed
    /// it and that it is newer than `current_version`, opens it with its zone
    /// key, and checks every zone again.
    pub fn open_on_watch(
        &self,
        watch_id: &str,
        zone_key: &LocationSecretKey,
        trusted: &TrustedRoster,
        current_version: u64,
    ) -> Result<ZoneSet, ZoneSetError> {
        self.open(watch_id, zone_key, trusted, current_version + 1)
    }

    /// What a family app does with the family's copy: the same checks, and
    /// not older than `known_version`, the newest this computer has seen (the
    /// cloud may not hand back an older set as the current one).
    pub fn open_in_app(
        &self,
        epoch_key: &LocationSecretKey,
        trusted: &TrustedRoster,
        known_version: u64,
    ) -> Result<ZoneSet, ZoneSetError> {
        self.open(FAMILY_COPY, epoch_key, trusted, known_version)
    }

    /// The family's copy signed by a computer no longer in the roster (it
    /// was removed after it saved): opened only if its own signature holds
    /// and it is, to the byte, the set this computer already checked while
    /// that computer was trusted (`known_version`, `known_digest`). So it
    /// can be signed again by a computer the family still trusts, and a
    /// removed computer can bring in nothing new.
    pub fn open_known_in_app(
        &self,
        epoch_key: &LocationSecretKey,
        known_version: u64,
        known_digest: &[u8; 32],
    ) -> Result<ZoneSet, ZoneSetError> {
        if self.version != known_version {
            return Err(ZoneSetError::UnknownSigner);
        }
        let set = self.open_signed(FAMILY_COPY, epoch_key, known_version)?;
        if set.digest() != *known_digest {
            return Err(ZoneSetError::UnknownSigner);
        }
        Ok(set)
    }

    fn open(
        &self,
        audience: &str,
        key: &LocationSecretKey,
        trusted: &TrustedRoster,
        min_version: u64,
    ) -> Result<ZoneSet, ZoneSetError> {
        if !trusted.roster().contains(&self.signer) {
            return Err(ZoneSetError::UnknownSigner);
        }
        self.open_signed(audience, key, min_version)
    }

    /// Every check but who signed: the signature, the version, the
    /// audience, the envelope and the rules.
    fn open_signed(
        &self,
        audience: &str,
        key: &LocationSecretKey,
        min_version: u64,
    ) -> Result<ZoneSet, ZoneSetError> {
        if !crate::roster::verify(&self.signer, &self.signing_bytes(), &self.signature) {
            return Err(ZoneSetError::BadSignature);
        }
        if self.version < min_version {
            return Err(ZoneSetError::Replayed);
        }
        if self.watch_id != audience || self.recipient != key.public_key() {
            return Err(ZoneSetError::NotForThisWatch);
        }
        let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&self.enc.0)
            .map_err(|_| ZoneSetError::NotForThisWatch)?;
        let ciphertext = unb64(&self.ciphertext).ok_or(ZoneSetError::NotForThisWatch)?;
        let info = context(&self.watch_id, self.version, &self.recipient);
        let plain = hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Kem>(
            &OpModeR::Base,
            key.hpke_key(),
            &enc,
            &info,
            &ciphertext,
            &info,
        )
        .map_err(|_| ZoneSetError::NotForThisWatch)?;
        let set: OpenedSet =
            serde_json::from_slice(&plain).map_err(|_| ZoneSetError::NotForThisWatch)?;
        if set.version != self.version {
            return Err(ZoneSetError::NotForThisWatch);
        }
        for zone in &set.zones {
            zone.validate().map_err(ZoneSetError::InvalidZone)?;
        }
        let time_zone =
            FamilyTimeZone::parse(&set.time_zone).ok_or(ZoneSetError::UnknownTimeZone)?;
        Ok(ZoneSet {
            version: set.version,
            time_zone,
            zones: set.zones,
        })
    }
}

impl ZoneSetError {
    /// The refusal a watch reported as `code`, if this build knows it.
    pub fn from_code(code: &str) -> Option<Self> {
        [
            Self::UnknownSigner,
            Self::BadSignature,
            Self::Replayed,
            Self::NotForThisWatch,
            Self::UnknownTimeZone,
        ]
        .into_iter()
        .chain(ZoneError::ALL.map(Self::InvalidZone))
        .find(|e| e.code() == code)
    }

    /// The code a watch reports a refusal with (in its signed status).
    pub fn code(self) -> &'static str {
        match self {
            Self::UnknownSigner => "zones_unknown_signer",
            Self::BadSignature => "zones_bad_signature",
            Self::Replayed => "zones_replayed",
            Self::NotForThisWatch => "zones_not_for_this_watch",
            Self::InvalidZone(e) => e.code(),
            Self::UnknownTimeZone => "zones_time_zone",
        }
    }

    /// What the app says of a refused set.
    pub fn message(self) -> &'static str {
        match self {
            Self::UnknownSigner => {
                "The zones were not signed by one of your family's computers, so they were refused. Save them again from a family computer."
            }
            Self::BadSignature => {
                "The zones were changed after a family computer signed them, so they were refused. Save them again."
            }
            Self::Replayed => {
                "The cloud handed back an older version of the zones, so it was refused. Save them again."
            }
            Self::NotForThisWatch => {
                "The zones could not be opened with this family's keys, so they were refused. Save them again."
            }
            Self::InvalidZone(e) => e.message(),
            Self::UnknownTimeZone => {
                "The zones' time zone is not one this watch knows, so they were refused. Choose another time zone for the schedules and save again."
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::family_roster::{Roster, RosterEntry};
    use crate::safe_zones::{Point, Schedule, Shape};
    use crate::sealed_report::ChainHash;

    fn zone(radius_m: f64) -> Zone {
        Zone {
            id: crate::safe_zones::ZoneId([1; 16]),
            name: "School".into(),
            shape: Shape::Circle {
                centre: Point {
                    lat: 59.3293,
                    lon: 18.0686,
                },
                radius_m,
            },
            watches: vec!["watch-1".into()],
            schedule: Schedule::Always,
        }
    }

    fn family() -> (FamilyKeyPair, TrustedRoster) {
        let desk = FamilyKeyPair::generate();
        let roster = Roster {
            version: 1,
            computers: vec![RosterEntry {
                name: "Desk".into(),
                member: "acct-1".into(),
                signing: desk.signing_public(),
                sealing: desk.sealing_public(),
            }],
            recovery: None,
            prev: ChainHash::GENESIS,
        }
        .sign(&desk);
        let trusted = TrustedRoster::founding(&roster).unwrap();
        (desk, trusted)
    }

    #[test]
    fn the_watch_opens_the_familys_zones_and_refuses_everything_else() {
        let (desk, trusted) = family();
        let (zone_key, zone_public) = LocationSecretKey::generate();
        let set = ZoneSet {
            version: 2,
            time_zone: FamilyTimeZone::parse("Europe/Stockholm").unwrap(),
            zones: vec![zone(150.0)],
        };
        let sealed = SealedZoneSet::seal(&set, "watch-1", &zone_public, &desk);
        // What the cloud relays names no place.
        let json = serde_json::to_string(&sealed).unwrap();
        assert!(
            !json.contains("School") && !json.contains("59.32"),
            "{json}"
        );
        assert_eq!(
            sealed.open_on_watch("watch-1", &zone_key, &trusted, 1),
            Ok(set.clone())
        );
        // Replayed once the watch has it (or an older version).
        assert_eq!(
            sealed.open_on_watch("watch-1", &zone_key, &trusted, 2),
            Err(ZoneSetError::Replayed)
        );
        // The cloud changes the ciphertext, or bumps the version to make an
        // old set look new: the signature no longer matches.
        let mut altered = sealed.clone();
        altered.ciphertext = b64(b"the cloud's own zones");
        assert_eq!(
            altered.open_on_watch("watch-1", &zone_key, &trusted, 1),
            Err(ZoneSetError::BadSignature)
        );
        let mut bumped = sealed.clone();
        bumped.version = 9;
        assert_eq!(
            bumped.open_on_watch("watch-1", &zone_key, &trusted, 1),
            Err(ZoneSetError::BadSignature)
        );
        // The cloud makes its own set: its key is in no roster.
        let cloud = FamilyKeyPair::generate();
        let forged = SealedZoneSet::seal(&set, "watch-1", &zone_public, &cloud);
        assert_eq!(
            forged.open_on_watch("watch-1", &zone_key, &trusted, 1),
            Err(ZoneSetError::UnknownSigner)
        );
        // Another watch's set, handed to this one.
        let (_, other_public) = LocationSecretKey::generate();
        let elsewhere = SealedZoneSet::seal(&set, "watch-2", &other_public, &desk);
        assert_eq!(
            elsewhere.open_on_watch("watch-1", &zone_key, &trusted, 1),
            Err(ZoneSetError::NotForThisWatch)
        );
    }

    #[test]
    fn a_removed_computers_set_opens_only_as_the_set_already_checked() {
        let (removed, _) = family();
        let (epoch_key, epoch_public) = LocationSecretKey::generate();
        let known = ZoneSet {
            version: 3,
            time_zone: FamilyTimeZone::utc(),
            zones: vec![zone(150.0)],
        };
        let sealed = SealedZoneSet::seal_for_family(&known, &epoch_public, &removed);
        assert_eq!(
            sealed.open_known_in_app(&epoch_key, 3, &known.digest()),
            Ok(known.clone())
        );
        // The removed computer signs other zones under the version this
        // computer knows, or a newer version: refused.
        let other = ZoneSet {
            zones: vec![zone(900.0)],
            ..known.clone()
        };
        let forged = SealedZoneSet::seal_for_family(&other, &epoch_public, &removed);
        assert_eq!(
            forged.open_known_in_app(&epoch_key, 3, &known.digest()),
            Err(ZoneSetError::UnknownSigner)
        );
        let newer = ZoneSet {
            version: 4,
            ..known.clone()
        };
        let newer = SealedZoneSet::seal_for_family(&newer, &epoch_public, &removed);
        assert_eq!(
            newer.open_known_in_app(&epoch_key, 3, &known.digest()),
            Err(ZoneSetError::UnknownSigner)
        );
        // Its signature must still hold.
        let mut altered = sealed.clone();
        altered.ciphertext = b64(b"changed");
        assert_eq!(
            altered.open_known_in_app(&epoch_key, 3, &known.digest()),
            Err(ZoneSetError::BadSignature)
        );
    }

    #[test]
    fn every_refusal_code_reads_back_as_its_refusal() {
        let all = [
            ZoneSetError::UnknownSigner,
            ZoneSetError::BadSignature,
            ZoneSetError::Replayed,
            ZoneSetError::NotForThisWatch,
            ZoneSetError::UnknownTimeZone,
        ]
        .into_iter()
        .chain(ZoneError::ALL.map(ZoneSetError::InvalidZone));
        for e in all {
            assert_eq!(ZoneSetError::from_code(e.code()), Some(e));
        }
        assert_eq!(ZoneSetError::from_code("zones_from_the_future"), None);
    }

    #[test]
    fn a_zone_that_breaks_a_rule_is_refused_after_opening() {
        let (desk, trusted) = family();
        let (zone_key, zone_public) = LocationSecretKey::generate();
        let set = ZoneSet {
            version: 1,
            time_zone: FamilyTimeZone::utc(),
            zones: vec![zone(10.0)],
        };
        let sealed = SealedZoneSet::seal(&set, "watch-1", &zone_public, &desk);
        assert_eq!(
            sealed.open_on_watch("watch-1", &zone_key, &trusted, 0),
            Err(ZoneSetError::InvalidZone(ZoneError::Radius))
        );
        // A time zone this build does not know (a newer database on the
        // computer that saved): refused as such, not taken as UTC.
        let unknown = serde_json::json!({
            "version": 1,
            "time_zone": "Mars/Olympus_Mons",
            "zones": [zone(150.0)],
        });
        let sealed = SealedZoneSet::seal_plaintext(
            unknown.to_string().as_bytes(),
            1,
            "watch-1",
            &zone_public,
            &desk,
        );
        assert_eq!(
            sealed.open_on_watch("watch-1", &zone_key, &trusted, 0),
            Err(ZoneSetError::UnknownTimeZone)
        );
        let honest = ZoneSet {
            version: 1,
            time_zone: FamilyTimeZone::parse("Pacific/Auckland").unwrap(),
            zones: vec![zone(150.0)],
        };
        let sealed = SealedZoneSet::seal(&honest, "watch-1", &zone_public, &desk);
        assert_eq!(
            sealed.open_on_watch("watch-1", &zone_key, &trusted, 0),
            Ok(honest)
        );
    }
}
