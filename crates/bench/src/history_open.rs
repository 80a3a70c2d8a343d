//! `history-open`: how fast a family app authenticates and decrypts a watch's
//! sealed history (issue 13's goal: a year, 1M fixes, at ≥ 1M fixes/s): the
//! app core's own `sealed_history::open_history`, beside what checking every
//! batch's P-256 signature would allow, measured in the same run. No cloud:
//! the batches are sealed here as a watch seals them.

use std::time::Instant;

use rcgen::{KeyPair, SigningKey};
use waymark_app_core::family_keys::FamilyKeys;
use waymark_app_core::sealed_history::{PairedWatch, open_history};
use waymark_protocol::location_sealing::WatchSealer;
use waymark_protocol::report::Fix;
use waymark_protocol::sealed_report::{ChainHash, SignedSealedBatch, SignedSetupRecord};
use waymark_protocol::signing::b64;

/// The goal the issue sets for the app core.
const GOAL_FIXES_PER_S: f64 = 1_000_000.0;

pub fn run(fixes: usize, per_batch: usize, threads: usize) -> anyhow::Result<()> {
    let batches = fixes.div_ceil(per_batch);
    let device_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let cert_der = rcgen::CertificateParams::new(Vec::<String>::new())?
        .self_signed(&device_key)?
        .der()
        .to_vec();
    let mut keys = FamilyKeys::new_computer();
    keys.found_family("Bench", "bench-account");
    let public = keys
        .epoch_public(0)
        .ok_or_else(|| anyhow::anyhow!("a founded family has epoch 0"))?;
    let (sealer, setup) = WatchSealer::start("bench-watch", 0, &public)
        .map_err(|e| anyhow::anyhow!("sealing setup: {e:?}"))?;
    let setup = SignedSetupRecord {
        signature: b64(&device_key.sign(&setup.signing_bytes())?),
        setup,
    };

    let t = Instant::now();
    let t0 = 1_700_000_000_000i64;
    let mut history = Vec::with_capacity(batches);
    let mut prev = ChainHash::GENESIS;
    for seq in 1..=batches as u64 {
        let fixes: Vec<Fix> = (0..per_batch)
            .map(|i| {
                let k = (seq as usize * per_batch + i) as f64;
                Fix {
                    t: t0 + k as i64 * 30_000,
                    lat: 52.5 + (k * 1e-3).sin() * 0.05,
                    lon: 13.4 + (k * 1e-3).cos() * 0.05,
                    acc: 5.0,
                    bat: 80,
                }
            })
            .collect();
        let batch = sealer.seal(seq, 0, prev, &fixes);
        prev = batch.chain_hash();
        history.push(SignedSealedBatch {
            batch,
            signature: String::new(),
        });
    }
    // A watch signs every batch; the reader checks only the newest of each
    // run it authenticates, so only those are signed here (signing a
    // million batches would take the benchmark's whole minute). With N
    // threads the history is read as N runs, each ending at a multiple of
    // `run_len`.
    let run_len = batches.div_ceil(threads);
    for k in 1..=batches.div_ceil(run_len) {
        let newest = (k * run_len).min(batches) - 1;
        let message = history[newest].batch.signing_bytes();
        history[newest].signature = b64(&device_key.sign(&message)?);
    }
    eprintln!(
        "sealed {} fixes in {batches} batches of {per_batch} in {:.1} s",
        batches * per_batch,
        t.elapsed().as_secs_f64()
    );

    let watch = PairedWatch {
        device_id: "bench-watch",
        certificate: &cert_der,
    };
    let setups = std::slice::from_ref(&setup);
    // Each thread reads one contiguous run through the app core, as the app
    // would read one range of history.
    let read = |runs: usize| -> anyhow::Result<f64> {
        let started = Instant::now();
        let opened: usize = std::thread::scope(|s| {
            let handles: Vec<_> = history
                .chunks(batches.div_ceil(runs))
                .map(|run| {
                    let (watch, keys) = (&watch, &keys);
                    s.spawn(move || {
                        let view = open_history(watch, setups, run, keys);
                        let clean = view.altered.is_empty()
                            && view.gaps.is_empty()
                            && view.unreadable.is_empty();
                        clean.then_some(view.fixes.len())
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("bench thread").unwrap_or(0))
                .sum()
        });
        let secs = started.elapsed().as_secs_f64();
        anyhow::ensure!(
            opened == batches * per_batch,
            "not every fix was authenticated and opened"
        );
        Ok(opened as f64 / secs)
    };
    let one_rate = read(1)?;
    let all_rate = read(threads)?;

    // The same run's P-256 verification rate: what a check per batch allows.
    let signed = &history[batches - 1];
    let n = 2_000;
    let started = Instant::now();
    for _ in 0..n {
        anyhow::ensure!(signed.verify(&cert_der).is_ok());
    }
    let verify_rate = n as f64 / started.elapsed().as_secs_f64();

    println!(
        "history-open: {} fixes, {per_batch} per batch, through the app core's open_history",
        batches * per_batch
    );
    println!(
        "  1 thread:   {:>10.0} fixes/s  (1 signature checked)  {:.2} of the goal (1M/s)",
        one_rate,
        one_rate / GOAL_FIXES_PER_S
    );
    println!(
        "  {threads} threads:  {:>10.0} fixes/s  ({threads} signatures checked)  {:.2} of the goal (1M/s)",
        all_rate,
        all_rate / GOAL_FIXES_PER_S
    );
    println!(
        "  a P-256 check per batch instead (same run, 1 core): {:.0} batches/s = {:.0} fixes/s, {:.2} of the goal",
        verify_rate,
        verify_rate * per_batch as f64,
        verify_rate * per_batch as f64 / GOAL_FIXES_PER_S
    );
    Ok(())
}
