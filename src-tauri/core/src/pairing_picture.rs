//! Reading a pairing code from a picture of the watch's QR code (PNG or
//! JPEG), so a parent can pair from a photo or screenshot instead of typing.

use waymark_protocol::pairing::PairingCode;

use crate::error::AppError;

/// Pictures larger than this are refused before decoding (a phone photo is
/// well under it; a decompression bomb is not).
const MAX_PICTURE_BYTES: usize = 20 * 1024 * 1024;
const MAX_PIXELS: u64 = 40_000_000;

/// Returns the code in the form the watch shows it (`XXXX-XXXX-XX`).
pub fn code_from_picture(bytes: &[u8]) -> Result<String, AppError> {
    if bytes.len() > MAX_PICTURE_BYTES {
        return Err(AppError::NoCodeInPicture);
    }
    let reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|_| AppError::NoCodeInPicture)?;
    let (w, h) = reader
        .into_dimensions()
        .map_err(|_| AppError::NoCodeInPicture)?;
    if u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(AppError::NoCodeInPicture);
    }
    let picture = image::load_from_memory(bytes)
        .map_err(|_| AppError::NoCodeInPicture)?
        .to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(
        picture.width() as usize,
        picture.height() as usize,
        |x, y| picture.get_pixel(x as u32, y as u32).0[0],
    );
    prepared
        .detect_grids()
        .iter()
        .filter_map(|grid| grid.decode().ok())
        .find_map(|(_, text)| PairingCode::parse(&text))
        .map(|code| code.display())
        .ok_or(AppError::NoCodeInPicture)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pictures_without_a_code_and_non_pictures_are_refused() {
        let mut png = Vec::new();
        image::DynamicImage::new_luma8(64, 64)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        assert!(matches!(
            code_from_picture(&png),
            Err(AppError::NoCodeInPicture)
        ));
        assert!(matches!(
            code_from_picture(b"not a picture"),
            Err(AppError::NoCodeInPicture)
        ));
    }
}
