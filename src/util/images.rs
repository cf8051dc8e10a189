//! Image grids as PNG: a batch `[n, c, h, w]` (c = 1 grey or 3 RGB) in [0, 1] laid out in rows,
//! with a gap between cells. Used for the seed's "Correct / Generated" reconstruction pairs.
use std::path::Path;

use image::{Rgb, RgbImage};
use tch::{Device, Kind, Tensor};

/// Lays out `images` `[n, c, h, w]` (values in [0, 1]; grey when c = 1, RGB when c = 3) `cols`
/// to a row, each pixel `scale` times, `gap` pixels of mid-grey between cells.
pub fn grid(images: &Tensor, cols: usize, scale: u32, gap: u32) -> RgbImage {
    let size = images.size();
    let (n, c, h, w) = (
        size[0] as usize,
        size[1] as usize,
        size[2] as u32,
        size[3] as u32,
    );
    let cols = cols.max(1).min(n.max(1));
    let rows = n.div_ceil(cols);
    let bytes: Vec<u8> = Vec::try_from(
        &(images
            .to_device(Device::Cpu)
            .to_kind(Kind::Float)
            .clamp(0.0, 1.0)
            * 255.0)
            .round()
            .to_kind(Kind::Uint8)
            .contiguous()
            .view(-1),
    )
    .expect("a uint8 tensor converts to bytes");
    let (cw, ch) = (w * scale + gap, h * scale + gap);
    let mut img = RgbImage::from_pixel(
        cols as u32 * cw + gap,
        rows as u32 * ch + gap,
        Rgb([128, 128, 128]),
    );
    let plane = (h * w) as usize;
    for i in 0..n {
        let (ox, oy) = (gap + (i % cols) as u32 * cw, gap + (i / cols) as u32 * ch);
        for y in 0..h * scale {
            for x in 0..w * scale {
                let at = |ch: usize| {
                    bytes[(i * c + ch.min(c - 1)) * plane + ((y / scale) * w + x / scale) as usize]
                };
                img.put_pixel(ox + x, oy + y, Rgb([at(0), at(1), at(2)]));
            }
        }
    }
    img
}

/// The PNG bytes of `img` (TensorBoard's image events carry them).
pub fn png_bytes(img: &RgbImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("PNG encoding into memory");
    out.into_inner()
}

/// The grid of the originals (first row) above their reconstructions (second row).
pub fn reconstruction_grid(originals: &Tensor, reconstructions: &Tensor) -> RgbImage {
    let n = originals.size()[0] as usize;
    let both = Tensor::cat(
        &[
            originals.to_device(Device::Cpu),
            reconstructions.to_device(Device::Cpu),
        ],
        0,
    );
    grid(&both, n, 2, 2)
}

/// Writes a PNG atomically.
pub fn save_png(path: &Path, img: &RgbImage) -> anyhow::Result<()> {
    crate::util::fsutil::with_atomic(path, |tmp| -> anyhow::Result<()> {
        img.save_with_format(tmp, image::ImageFormat::Png)?;
        Ok(())
    })
    .map_err(|e| e.context(format!("writing {}", path.display())))
}
