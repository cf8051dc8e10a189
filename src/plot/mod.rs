//! Figures with plotters, as PNG (or SVG where asked): loss curves (`loss`), the latent scatter
//! (`latent`), and image grids with titles and axes (`grids`: manifold, reconstructions, samples,
//! interpolation). Text uses the bundled DejaVu Sans (assets/fonts, Bitstream Vera license)
//! through plotters' ab_glyph backend, so figures render on machines with no fonts at all.
pub mod faces;
pub mod grids;
pub mod latent;
pub mod loss;
pub mod panels;
pub mod params;
pub mod run;
pub mod run_faces;

use std::path::{Path, PathBuf};
use std::sync::Once;

use image::RgbImage;
use plotters::coord::Shift;
use plotters::prelude::*;

/// The font family name every figure uses.
pub const FONT: &str = "sans-serif";
static FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// matplotlib's tab10: ten colours told apart at a glance, one per class.
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("drawing {path}: {message}")]
    Draw { path: PathBuf, message: String },
    #[error("{0}")]
    Input(String),
    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Png,
    Svg,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Png => "png",
            Format::Svg => "svg",
        }
    }
}

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES)
            .unwrap_or_else(|_| panic!("the bundled font is a valid TTF"));
    });
}

/// Drawing errors as text (their types depend on the backend).
pub type DrawResult = Result<(), String>;

/// A figure that draws itself on any plotters backend.
pub trait Figure {
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult;
}

/// Renders `fig` to `path` (PNG or SVG), written atomically.
pub fn render(fig: &impl Figure, path: &Path, format: Format) -> Result<(), PlotError> {
    let ext = format.extension();
    if path.is_dir() {
        return Err(PlotError::Input(format!(
            "{} is a folder: give a file name ending in .{ext}",
            path.display()
        )));
    }
    let given = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    if given.as_deref() != Some(ext) {
        return Err(PlotError::Input(format!(
            "{}: figures are written as PNG (.png) or SVG (.svg, with --format svg where the command has it); this one needs a name ending in .{ext}",
            path.display()
        )));
    }
    register_font();
    let err = |message: String| PlotError::Draw {
        path: path.to_path_buf(),
        message,
    };
    crate::util::fsutil::with_atomic(path, |tmp| -> Result<(), PlotError> {
        match format {
            Format::Png => {
                let root = BitMapBackend::new(tmp, fig.size()).into_drawing_area();
                fig.draw(&root).map_err(err)?;
                root.present().map_err(|e| err(e.to_string()))
            }
            Format::Svg => {
                let root = SVGBackend::new(tmp, fig.size()).into_drawing_area();
                fig.draw(&root).map_err(err)?;
                root.present().map_err(|e| err(e.to_string()))
            }
        }
    })
    .map_err(|e| match e {
        PlotError::Io { cause, .. } => PlotError::Io {
            path: path.to_path_buf(),
            cause,
        },
        other => other,
    })
}

impl From<std::io::Error> for PlotError {
    fn from(cause: std::io::Error) -> Self {
        PlotError::Io {
            path: PathBuf::new(),
            cause,
        }
    }
}

/// Stretches an image over `area`'s plotting rectangle (nearest pixel), so that a grid of
/// decoded images fills a chart whose axes give their coordinates. Drawn as one bitmap: a PNG's
/// pixels, or in an SVG one embedded PNG (plotters-svg's `bitmap_encoder`), not a rectangle a
/// pixel.
pub fn blit<DB: DrawingBackend, CT: plotters::coord::CoordTranslate>(
    area: &DrawingArea<DB, CT>,
    img: &RgbImage,
) -> DrawResult {
    let (xr, yr) = area.get_pixel_range();
    let (w, h) = (
        (xr.end - xr.start).max(1) as u32,
        (yr.end - yr.start).max(1) as u32,
    );
    let (iw, ih) = img.dimensions();
    let mut buf = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        let sy = (y * ih / h).min(ih - 1);
        for x in 0..w {
            let sx = (x * iw / w).min(iw - 1);
            buf.extend_from_slice(&img.get_pixel(sx, sy).0);
        }
    }
    let bitmap = BitMapElement::with_owned_buffer((0, 0), (w, h), buf)
        .ok_or_else(|| "a bitmap of the wrong size".to_string())?;
    // strip_coord_spec keeps the area's own origin: draw in its local pixels.
    area.strip_coord_spec()
        .draw(&bitmap)
        .map_err(|e| e.to_string())
}

/// Formats an axis value compactly.
pub fn tick(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}
