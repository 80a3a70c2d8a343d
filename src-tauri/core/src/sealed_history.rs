//! What the app will draw of a watch's sealed reports, and what it will say
//! instead when the cloud misbehaves (issue 13; `docs/end-to-end-encryption.md`
//! §3): a range of history is authenticated (hash chain, one device
//! signature per unbroken run, against the certificate checked at pairing),
//! then opened with the family's keys; live batches must each continue the
//! chain from the last one shown. Nothing that did not verify is drawn.
//! Fed by the history (`watches.rs`) and the live stream (`live.rs`).

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use waymark_protocol::location_sealing::OpenError;
use waymark_protocol::report::{Fix, Record};
use waymark_protocol::safe_zones::ZoneEvent;
use waymark_protocol::sealed_report::{
    Authenticity, ChainHash, Gap, SignedSealedBatch, SignedSetupRecord, authenticate_chain,
};

use crate::family_keys::FamilyKeys;

/// A watch as this computer checked it at pairing.
pub struct PairedWatch<'a> {
    pub device_id: &'a str,
    /// The device certificate, DER, as verified against the manufacturer CAs.
    pub certificate: &'a [u8],
}

/// A range of history as the app shows it.
#[derive(Debug, Default, PartialEq)]
pub struct HistoryView {
    /// Every fix that verified and opened, oldest first, each once.
    pub fixes: Vec<Fix>,
    /// The safe-zone events among them (issue 16), oldest first, each once.
    pub events: Vec<ZoneEvent>,
    /// Sequence numbers the cloud did not hand over: "N reports missing".
    pub gaps: Vec<Gap>,
    /// Batches changed after the watch signed them: "a report was altered;
    /// it is not shown".
    pub altered: Vec<u64>,
    /// Batches this computer holds no key for (an epoch it was never given).
    pub unreadable: Vec<u64>,
}

/// Authenticates and opens one watch's batches as the cloud returned them
/// (in any order, possibly with another watch's mixed in).
pub fn open_history(
    watch: &PairedWatch<'_>,
    setups: &[SignedSetupRecord],
    batches: &[SignedSealedBatch],
    keys: &FamilyKeys,
) -> HistoryView {
    // The cloud's order is not trusted: one batch per sequence number, in
    // order. Of two under one number, the one the watch signed (the later
    // version if both are: a batch restamped before it was stored).
    let mut by_seq: BTreeMap<u64, &SignedSealedBatch> = BTreeMap::new();
    let mut view = HistoryView::default();
    let signed = |b: &SignedSealedBatch| b.verify(watch.certificate).is_ok();
    for b in batches
        .iter()
        .filter(|b| b.batch.header.device_id == watch.device_id)
    {
        match by_seq.entry(b.batch.header.seq) {
            Entry::Vacant(e) => {
                e.insert(b);
            }
            Entry::Occupied(mut e) => {
                let kept = *e.get();
                if signed(b)
                    && (!signed(kept) || b.batch.header.version > kept.batch.header.version)
                {
                    e.insert(b);
                }
            }
        }
    }
    let ordered: Vec<&SignedSealedBatch> = by_seq.into_values().collect();
    let check = authenticate_chain(&ordered, |b| b.verify(watch.certificate).is_ok());
    view.gaps = check.gaps;

    let mut opener = keys.opener();
    for setup in setups {
        if setup.setup.device_id == watch.device_id && setup.verify(watch.certificate).is_ok() {
            // A setup for an epoch this computer lacks is simply not added.
            let _ = opener.add_setup(&setup.setup);
        }
    }
    for (b, authenticity) in ordered.iter().zip(&check.batches) {
        let seq = b.batch.header.seq;
        if *authenticity == Authenticity::Refused {
            view.altered.push(seq);
            continue;
        }
        match opener.open_records(&b.batch) {
            Ok(records) => {
                for r in records {
                    match r {
                        Record::Fix(f) => view.fixes.push(f),
                        Record::Zone(e) => view.events.push(e),
                    }
                }
            }
            Err(OpenError::NoEpochKey) => view.unreadable.push(seq),
            // A setup the cloud withheld leaves the batch unreadable too.
            Err(OpenError::UnknownSetup) if keys.has_epoch(b.batch.header.epoch) => {
                view.altered.push(seq)
            }
            Err(OpenError::UnknownSetup) => view.unreadable.push(seq),
            Err(_) => view.altered.push(seq),
        }
    }
    view.altered.sort_unstable();
    view.altered.dedup();
    // A batch a watch sealed twice (its queue restored from an older copy)
    // is stored twice under two numbers: each fix is shown once.
    view.fixes.sort_by_key(|f| f.t);
    view.fixes.dedup_by(|a, b| {
        a.t == b.t
            && a.lat.to_bits() == b.lat.to_bits()
            && a.lon.to_bits() == b.lon.to_bits()
            && a.acc.to_bits() == b.acc.to_bits()
            && a.bat == b.bat
    });
    view.events.sort_by_key(|e| e.t);
    view.events.dedup();
    view
}

/// What to do with one batch from the live stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveVerdict {
    /// The next batch after the last one shown: draw it.
    Next,
    /// Newer, but batches are missing before it: draw it and fetch the gap.
    AfterGap(Gap),
    /// Not newer than what is shown: a replay, refused.
    Replayed,
    /// Its signature does not verify, or it does not continue the chain.
    Altered,
}

/// The end of the chain this window has shown for one watch.
#[derive(Debug, Default)]
pub struct LiveChain {
    last: Option<(u64, ChainHash)>,
}

impl LiveChain {
    /// Starts after the newest batch of an authenticated history.
    pub fn after(seq: u64, hash: ChainHash) -> Self {
        Self {
            last: Some((seq, hash)),
        }
    }

    pub fn accept(&mut self, watch: &PairedWatch<'_>, b: &SignedSealedBatch) -> LiveVerdict {
        let header = &b.batch.header;
        if header.device_id != watch.device_id || b.verify(watch.certificate).is_err() {
            return LiveVerdict::Altered;
        }
        let verdict = match self.last {
            Some((seq, _)) if header.seq <= seq => return LiveVerdict::Replayed,
            Some((seq, hash)) if header.seq == seq + 1 => {
                if header.prev_hash != hash {
                    return LiveVerdict::Altered;
                }
                LiveVerdict::Next
            }
            Some((seq, _)) => LiveVerdict::AfterGap(Gap {
                first: seq + 1,
                last: header.seq - 1,
            }),
            None => LiveVerdict::Next,
        };
        self.last = Some((header.seq, b.batch.chain_hash()));
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{KeyPair, SigningKey};
    use waymark_protocol::location_sealing::WatchSealer;
    use waymark_protocol::sealed_report::SealedBatch;
    use waymark_protocol::signing::b64;

    struct Watch {
        key: KeyPair,
        cert: Vec<u8>,
        sealer: WatchSealer,
        setup: SignedSetupRecord,
        prev: ChainHash,
        seq: u64,
    }

    impl Watch {
        fn new(keys: &FamilyKeys) -> Self {
            let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
            let cert = rcgen::CertificateParams::new(Vec::<String>::new())
                .unwrap()
                .self_signed(&key)
                .unwrap()
                .der()
                .to_vec();
            let epoch = keys.current_epoch().unwrap();
            let (sealer, setup) =
                WatchSealer::start("watch-1", epoch, &keys.epoch_public(epoch).unwrap()).unwrap();
            let signature = b64(&key.sign(&setup.signing_bytes()).unwrap());
            Self {
                key,
                cert,
                sealer,
                setup: SignedSetupRecord { setup, signature },
                prev: ChainHash::GENESIS,
                seq: 0,
            }
        }

        fn sign(&self, batch: SealedBatch) -> SignedSealedBatch {
            let signature = b64(&self.key.sign(&batch.signing_bytes()).unwrap());
            SignedSealedBatch { batch, signature }
        }

        fn report(&mut self, lat: f64) -> SignedSealedBatch {
            self.seq += 1;
            let fix = Fix {
                t: 1_700_000_000_000 + self.seq as i64 * 30_000,
                lat,
                lon: 2.35,
                acc: 5.0,
                bat: 90,
            };
            let batch = self.sealer.seal(self.seq, 0, self.prev, &[fix]);
            self.prev = batch.chain_hash();
            self.sign(batch)
        }

        fn paired(&self) -> PairedWatch<'_> {
            PairedWatch {
                device_id: "watch-1",
                certificate: &self.cert,
            }
        }
    }

    fn family() -> FamilyKeys {
        let mut keys = FamilyKeys::new_computer();
        keys.found_family("Desk", "acct-1");
        keys
    }

    #[test]
    fn an_honest_history_opens_in_order_whatever_order_the_cloud_sends() {
        let keys = family();
        let mut watch = Watch::new(&keys);
        let mut batches: Vec<_> = (0..10)
            .map(|i| watch.report(48.0 + i as f64 / 100.0))
            .collect();
        batches.reverse();
        let view = open_history(&watch.paired(), &[watch.setup.clone()], &batches, &keys);
        assert_eq!(view.fixes.len(), 10);
        assert!(view.fixes.windows(2).all(|w| w[0].t < w[1].t));
        assert_eq!(view.fixes[0].lat, 48.0);
        assert!(view.gaps.is_empty() && view.altered.is_empty() && view.unreadable.is_empty());
    }

    #[test]
    fn what_the_cloud_changes_drops_or_withholds_is_said_never_drawn() {
        let keys = family();
        let mut watch = Watch::new(&keys);
        let lats: Vec<f64> = (0..10).map(|i| 48.0 + i as f64 / 100.0).collect();
        let mut batches: Vec<_> = lats.iter().map(|lat| watch.report(*lat)).collect();
        // Altered: batch 3's ciphertext; dropped: batch 7.
        batches[2].batch.ciphertext[0] ^= 1;
        batches.remove(6);
        let view = open_history(&watch.paired(), &[watch.setup.clone()], &batches, &keys);
        assert_eq!(view.altered, vec![3]);
        assert_eq!(view.gaps, vec![Gap { first: 7, last: 7 }]);
        // Everything else is shown, and nothing of the altered or dropped one.
        let shown: Vec<f64> = view.fixes.iter().map(|f| f.lat).collect();
        let expected: Vec<f64> = lats
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 2 && *i != 6)
            .map(|(_, lat)| *lat)
            .collect();
        assert_eq!(shown, expected);
        // A setup the cloud withheld or forged: the batches are not shown.
        let mut forged = watch.setup.clone();
        forged.setup.enc.0[0] ^= 1;
        let view = open_history(&watch.paired(), &[forged], &batches, &keys);
        assert!(view.fixes.is_empty());
        assert_eq!(view.altered.len(), 9);
        // Another family's computer reads nothing.
        let stranger = family();
        let view = open_history(&watch.paired(), &[watch.setup.clone()], &batches, &stranger);
        assert!(view.fixes.is_empty());
        assert_eq!(view.unreadable.len() + view.altered.len(), 9);
    }

    #[test]
    fn the_live_stream_must_continue_the_chain() {
        let keys = family();
        let mut watch = Watch::new(&keys);
        // The window showed a history up to the first batch; live starts after it.
        let first = watch.report(48.0);
        let mut chain = LiveChain::after(1, first.batch.chain_hash());
        assert_eq!(chain.accept(&watch.paired(), &first), LiveVerdict::Replayed);
        let second = watch.report(48.1);
        assert_eq!(chain.accept(&watch.paired(), &second), LiveVerdict::Next);
        // The cloud replays an old batch as if it were new.
        assert_eq!(chain.accept(&watch.paired(), &first), LiveVerdict::Replayed);
        // It drops one: the next is shown, and the gap fetched.
        let _dropped = watch.report(48.2);
        let fourth = watch.report(48.3);
        assert_eq!(
            chain.accept(&watch.paired(), &fourth),
            LiveVerdict::AfterGap(Gap { first: 3, last: 3 })
        );
        // It alters one in flight.
        let mut fifth = watch.report(48.4);
        fifth.batch.header.times[0] += 1;
        assert_eq!(chain.accept(&watch.paired(), &fifth), LiveVerdict::Altered);
        // A batch signed by the watch but not chained to what was shown (a
        // fork of the history) is refused too.
        let fix = Fix {
            t: 1_700_000_900_000,
            lat: 48.5,
            lon: 2.35,
            acc: 5.0,
            bat: 90,
        };
        let forked = watch.sign(watch.sealer.seal(5, 1, ChainHash([9; 32]), &[fix]));
        assert_eq!(chain.accept(&watch.paired(), &forked), LiveVerdict::Altered);
    }
}
