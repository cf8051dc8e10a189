//! One image file at the model's size: the format read from the bytes, resized as Keras's
//! `flow_from_directory` does (nearest-neighbour; `squash` or a centred `crop` first), grey or
//! RGB by the model's channels, as `[c, h, w]` bytes.
use std::path::Path;

use image::imageops::FilterType;
use image::DynamicImage;

use crate::config::ResizeMode;

/// One image file as `[c, h, w]` bytes at the model's size; Err(reason) when it cannot be read
/// as an image (the file is then skipped).
pub fn decode(path: &Path, [c, h, w]: [i64; 3], resize: ResizeMode) -> Result<Vec<u8>, String> {
    // The format from the bytes, not the name: a JPEG saved as .png is common in scraped sets.
    // The reader's default limits stay on (a decompression bomb is an error, and skipped).
    let img = image::ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .map_err(|e| e.to_string())?
        .decode()
        .map_err(|e| e.to_string())?;
    let (tw, th) = (w as u32, h as u32);
    let img = match resize {
        ResizeMode::Squash => img,
        ResizeMode::Crop => {
            let (iw, ih) = (img.width() as u64, img.height() as u64);
            // The largest window of aspect tw:th inside iw x ih, centred.
            let (cw, ch) = if iw * th as u64 > ih * tw as u64 {
                ((ih * tw as u64 / th as u64).max(1), ih)
            } else {
                (iw, (iw * th as u64 / tw as u64).max(1))
            };
            img.crop_imm(
                ((iw - cw) / 2) as u32,
                ((ih - ch) / 2) as u32,
                cw as u32,
                ch as u32,
            )
        }
    };
    let img = img.resize_exact(tw, th, FilterType::Nearest);
    let hwc: Vec<u8> = match c {
        1 => DynamicImage::ImageLuma8(img.to_luma8()).into_bytes(),
        3 => img.to_rgb8().into_raw(),
        _ => return Err(format!("{c} channels: images have 1 (grey) or 3 (RGB)")),
    };
    // HWC -> CHW.
    let (c, plane) = (c as usize, (h * w) as usize);
    let mut chw = vec![0u8; c * plane];
    for (i, px) in hwc.chunks_exact(c).enumerate() {
        for (k, v) in px.iter().enumerate() {
            chw[k * plane + i] = *v;
        }
    }
    Ok(chw)
}
