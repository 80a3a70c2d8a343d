//! `history-open`: how fast a family app authenticates and decrypts a watch's
//! sealed history (issue 13's goal: a year, 1M fixes, at ≥ 1M fixes/s), beside
//! what checking every batch's P-256 signature would allow, measured in the
//! same run. No cloud: the batches are sealed here as a watch seals them.

use std::time::Instant;

use rcgen::{KeyPair, SigningKey};
use waymark_protocol::location_sealing::{FamilyOpener, LocationSecretKey, WatchSealer};
use waymark_protocol::report::Fix;
use waymark_protocol::sealed_report::{
    Authenticity, ChainHash, SignedSealedBatch, authenticate_chain,
};
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
    let (secret, public) = LocationSecretKey::generate();
    let (sealer, setup) = WatchSealer::start("bench-watch", 0, &public)
        .map_err(|e| anyhow::anyhow!("sealing setup: {e:?}"))?;

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
    // million batches would take the benchmark's whole minute).
    let chunk = batches.div_ceil(threads);
    for end in (0..batches)
        .skip(chunk - 1)
        .step_by(chunk)
        .chain([batches - 1])
    {
        let message = history[end].batch.signing_bytes();
        history[end].signature = b64(&device_key.sign(&message)?);
    }
    eprintln!(
        "sealed {} fixes in {batches} batches of {per_batch} in {:.1} s",
        batches * per_batch,
        t.elapsed().as_secs_f64()
    );

    let mut opener = FamilyOpener::new();
    opener.add_epoch_key(0, secret);
    opener
        .add_setup(&setup)
        .map_err(|e| anyhow::anyhow!("setup: {e:?}"))?;

    // Authenticate and open, each thread one contiguous run of the history
    // (one signature check per run).
    let open_runs = |runs: usize| -> anyhow::Result<(f64, usize)> {
        let run_len = batches.div_ceil(runs);
        let started = Instant::now();
        let results: Vec<anyhow::Result<(usize, usize)>> = std::thread::scope(|s| {
            let handles: Vec<_> = history
                .chunks(run_len)
                .map(|run| {
                    let (opener, cert) = (&opener, &cert_der);
                    s.spawn(move || -> anyhow::Result<(usize, usize)> {
                        let check = authenticate_chain(run, |b| b.verify(cert).is_ok());
                        let mut opened = 0;
                        for (b, a) in run.iter().zip(&check.batches) {
                            anyhow::ensure!(*a != Authenticity::Refused, "a batch was refused");
                            opened += opener
                                .open(&b.batch)
                                .map_err(|e| anyhow::anyhow!("open: {e:?}"))?
                                .len();
                        }
                        Ok((opened, check.signatures_checked))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("bench thread"))
                .collect()
        });
        let secs = started.elapsed().as_secs_f64();
        let (mut opened, mut signatures) = (0, 0);
        for r in results {
            let (o, s) = r?;
            opened += o;
            signatures += s;
        }
        anyhow::ensure!(opened == batches * per_batch, "not every fix was opened");
        Ok((opened as f64 / secs, signatures))
    };
    // One run needs the newest batch's signature only; `threads` runs need
    // the ones signed above.
    let (one_rate, one_sigs) = open_runs(1)?;
    let (all_rate, all_sigs) = open_runs(threads)?;

    // The same run's P-256 verification rate: what a check per batch allows.
    let signed = &history[batches - 1];
    let n = 2_000;
    let started = Instant::now();
    for _ in 0..n {
        anyhow::ensure!(signed.verify(&cert_der).is_ok());
    }
    let verify_rate = n as f64 / started.elapsed().as_secs_f64();

    println!(
        "history-open: {} fixes, {per_batch} per batch",
        batches * per_batch
    );
    println!(
        "  1 thread:   {:>10.0} fixes/s  ({one_sigs} signature checked)  {:.2} of the goal (1M/s)",
        one_rate,
        one_rate / GOAL_FIXES_PER_S
    );
    println!(
        "  {threads} threads:  {:>10.0} fixes/s  ({all_sigs} signatures checked)  {:.2} of the goal (1M/s)",
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
