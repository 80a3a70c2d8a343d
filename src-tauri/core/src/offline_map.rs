//! The offline map: byte ranges of the one PMTiles archive the parent chose
//! in Settings, read for the window's map (which decodes the tiles itself).
//! The window names only offsets, never a path, so it can read nothing else;
//! and the map then needs no network request at all.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::error::AppError;

/// The most the window may ask for at once: PMTiles readers fetch the header
/// and root directory (16 KiB), then directories and tiles, all far smaller.
pub const MAX_RANGE: u64 = 4 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct OfflineMap {
    path: PathBuf,
}

impl OfflineMap {
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
        }
    }

    /// Up to `length` bytes from `offset` (fewer at the end of the file).
    pub fn read(&self, offset: u64, length: u64) -> Result<Vec<u8>, AppError> {
        if length > MAX_RANGE {
            return Err(AppError::Settings(format!(
                "The map asked for {length} bytes of the offline map at once; at most {MAX_RANGE} are read."
            )));
        }
        let unreadable = |e: std::io::Error| {
            AppError::Settings(format!(
                "The offline map {} could not be read ({e}). Choose the file again in Settings, or clear it to use online tiles.",
                self.path.display()
            ))
        };
        let mut file = std::fs::File::open(&self.path).map_err(unreadable)?;
        file.seek(SeekFrom::Start(offset)).map_err(unreadable)?;
        let mut bytes = Vec::new();
        file.take(length)
            .read_to_end(&mut bytes)
            .map_err(unreadable)?;
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ranges_and_stops_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.pmtiles");
        std::fs::write(&path, b"PMTiles\x03 and the rest").unwrap();
        let map = OfflineMap::new(&path);
        assert_eq!(map.read(0, 8).unwrap(), b"PMTiles\x03");
        assert_eq!(map.read(13, 100).unwrap(), b"the rest");
        assert!(map.read(1000, 10).unwrap().is_empty());
    }

    #[test]
    fn refuses_huge_ranges_and_says_when_the_file_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let map = OfflineMap::new(&dir.path().join("gone.pmtiles"));
        assert!(
            map.read(0, MAX_RANGE + 1)
                .unwrap_err()
                .to_string()
                .contains("at most")
        );
        assert!(
            map.read(0, 10)
                .unwrap_err()
                .to_string()
                .contains("could not be read")
        );
    }
}
