//! A grid of figures under one title: the sweep's comparisons (one latent scatter, or one grid
//! of samples, per run), each panel drawn by its own figure in its cell.
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{DrawResult, Figure, FONT};

pub struct PanelGrid<F: Figure> {
    pub panels: Vec<F>,
    pub cols: usize,
    pub title: String,
}

/// Room for the title above the cells.
const TITLE_HEIGHT: u32 = 44;

impl<F: Figure> PanelGrid<F> {
    /// Columns for `n` panels: about square, at most 4 wide.
    pub fn new(panels: Vec<F>, title: String) -> PanelGrid<F> {
        let n = panels.len().max(1);
        let cols = ((n as f64).sqrt().ceil() as usize).clamp(1, 4);
        PanelGrid {
            panels,
            cols,
            title,
        }
    }

    fn rows(&self) -> usize {
        self.panels.len().max(1).div_ceil(self.cols)
    }

    fn cell(&self) -> (u32, u32) {
        self.panels
            .iter()
            .map(Figure::size)
            .fold((200, 200), |(w, h), (a, b)| (w.max(a), h.max(b)))
    }
}

impl<F: Figure> Figure for PanelGrid<F> {
    fn size(&self) -> (u32, u32) {
        let (w, h) = self.cell();
        (w * self.cols as u32, h * self.rows() as u32 + TITLE_HEIGHT)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let root = root
            .titled(&self.title, (FONT, 24))
            .map_err(|e| e.to_string())?;
        let areas = root.split_evenly((self.rows(), self.cols));
        for (area, panel) in areas.iter().zip(&self.panels) {
            panel.draw(area)?;
        }
        Ok(())
    }
}
