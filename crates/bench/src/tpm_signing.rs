//! `tpm-signing`: how fast a watch signs when its key is inside a TPM
//! (swtpm, started here with an EK certificate like a real one), beside the
//! same P-256 signature made in software (ring) in the same run, and what
//! that costs a watch reporting every 30 s.

use std::time::Instant;

use rcgen::{KeyPair, SigningKey};
use waymark_system_tests::swtpm::{SoftTpm, TpmMaker};
use waymark_tpm::TpmKey;

use crate::quantile_ms;

/// A watch reports one signed batch and one signed status poll per interval.
const REPORT_INTERVAL_S: f64 = 30.0;
const SIGNATURES_PER_REPORT: f64 = 2.0;

pub fn run(signatures: usize) -> anyhow::Result<()> {
    let maker = TpmMaker::new()?;
    let tpm = SoftTpm::manufacture(&maker)?;
    let (key, _blob) = TpmKey::create(&tpm.tcti())?;
    let message = vec![0x5au8; 200]; // about a one-fix batch's signing bytes
    let time = |sign: &dyn Fn() -> anyhow::Result<()>| -> anyhow::Result<(f64, Vec<u64>)> {
        for _ in 0..signatures.min(20) {
            sign()?; // warm-up
        }
        let mut lat = Vec::with_capacity(signatures);
        let started = Instant::now();
        for _ in 0..signatures {
            let t = Instant::now();
            sign()?;
            lat.push(t.elapsed().as_micros() as u64);
        }
        let rate = signatures as f64 / started.elapsed().as_secs_f64();
        lat.sort_unstable();
        Ok((rate, lat))
    };
    let (tpm_rate, tpm_lat) = time(&|| {
        key.sign(&message)?;
        Ok(())
    })?;
    let software = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let (sw_rate, sw_lat) = time(&|| {
        software.sign(&message)?;
        Ok(())
    })?;
    let p50 = quantile_ms(&tpm_lat, 0.5);
    println!("TPM signing ({signatures} ECDSA P-256 signatures, one at a time, as a watch signs)");
    println!("| key in | signatures/s | p50 ms | p99 ms |");
    println!("|---|---|---|---|");
    println!(
        "| swtpm over loopback TCP | {tpm_rate:.0} | {p50:.2} | {:.2} |",
        quantile_ms(&tpm_lat, 0.99)
    );
    println!(
        "| software (ring), same run | {sw_rate:.0} | {:.3} | {:.3} |",
        quantile_ms(&sw_lat, 0.5),
        quantile_ms(&sw_lat, 0.99)
    );
    println!("TPM rate / software rate: {:.3}", tpm_rate / sw_rate);
    let busy = SIGNATURES_PER_REPORT * p50 / 1000.0 / REPORT_INTERVAL_S;
    println!(
        "A watch reporting every {REPORT_INTERVAL_S:.0} s signs {SIGNATURES_PER_REPORT:.0} times per report: {:.1} ms of TPM time per report, {:.4} % of its time",
        SIGNATURES_PER_REPORT * p50,
        busy * 100.0
    );
    Ok(())
}
