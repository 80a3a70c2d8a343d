//! The family this watch reports to, as its pairing brought it: the key
//! epoch it seals fixes to and the roster whose computers may move it to a
//! later epoch. Public values only; kept beside the queue, erased with it.

use std::fs;
use std::path::Path;

use waymark_protocol::pairing::WatchFamilyBundle;

pub const FAMILY_FILE: &str = "family.json";

/// Written beside and renamed over, so a crash never leaves half a file.
pub fn save(dir: &Path, bundle: &WatchFamilyBundle) -> anyhow::Result<()> {
    let tmp = dir.join("family.json.tmp");
    fs::write(&tmp, serde_json::to_vec_pretty(bundle)?)?;
    fs::rename(tmp, dir.join(FAMILY_FILE))?;
    Ok(())
}

pub fn load(dir: &Path) -> Option<WatchFamilyBundle> {
    serde_json::from_slice(&fs::read(dir.join(FAMILY_FILE)).ok()?).ok()
}
