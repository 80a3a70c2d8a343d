//! Device certificate handling: any bytes as a certificate, checked against
//! the vector CA, never panic; device ids come only from parsed keys.
#![no_main]
use libfuzzer_sys::fuzz_target;
use waymark_protocol::device::verify_device_certificate;

const CA: &[u8] = include_bytes!("../../testdata/vector-device.der");

fuzz_target!(|data: &[u8]| {
    let _ = verify_device_certificate(data, &[CA.to_vec()], 1_800_000_000);
    let _ = verify_device_certificate(CA, &[data.to_vec()], 1_800_000_000);
});
