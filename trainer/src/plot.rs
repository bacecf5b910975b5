//! PNG plots drawn with `plotters`: the training curves and the confusion matrix. Text uses
//! DejaVu Sans, embedded, so no system font is needed.

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::error::TrainError;
use crate::metrics::EpochRecord;

fn plot_error(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Image {
        path: path.to_path_buf(),
        message: format!("drawing the plot: {e}"),
    }
}

/// A chart: its area, title, y range top, and the train and validation series.
type Panel<'a, A> = (&'a A, &'a str, f64, [fn(&EpochRecord) -> f64; 2]);

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            if plotters::style::register_font("sans-serif", style, dejavu::sans::regular()).is_err()
            {
                log::warn!("could not register the embedded font; plots will lack text");
            }
        }
    });
}

/// Draws loss (left) and top-1 accuracy (right) per epoch, training and validation, into a
/// 1200x480 PNG at `path`, written atomically.
pub fn plot_curves(path: &Path, records: &[EpochRecord]) -> Result<(), TrainError> {
    if records.is_empty() {
        return Ok(());
    }
    register_font();
    let (w, h) = (1200u32, 480u32);
    let mut buffer = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_error(path, e))?;
        let (left, right) = root.split_horizontally(w / 2);
        let last = records.iter().map(|r| r.epoch).max().unwrap_or(1).max(2) as f64;
        let first = records.iter().map(|r| r.epoch).min().unwrap_or(1) as f64;
        let loss_max = records
            .iter()
            .flat_map(|r| [r.train_loss, r.val_loss])
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::max)
            .max(1e-3)
            * 1.05;
        let panels: [Panel<'_, _>; 2] = [
            (&left, "loss", loss_max, [|r| r.train_loss, |r| r.val_loss]),
            (
                &right,
                "top-1 accuracy (%)",
                100.0,
                [|r| r.train_acc, |r| r.val_acc],
            ),
        ];
        for (area, title, y_max, series) in panels {
            let mut chart = ChartBuilder::on(area)
                .caption(title, ("sans-serif", 22))
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(56)
                .build_cartesian_2d(first..last, 0.0..y_max)
                .map_err(|e| plot_error(path, e))?;
            chart
                .configure_mesh()
                .x_desc("epoch")
                .light_line_style(WHITE.mix(0.0))
                .draw()
                .map_err(|e| plot_error(path, e))?;
            for (value, label, color) in
                [(series[0], "train", BLUE), (series[1], "validation", RED)]
            {
                let points: Vec<(f64, f64)> = records
                    .iter()
                    .map(|r| (r.epoch as f64, value(r)))
                    .filter(|(_, v)| v.is_finite())
                    .collect();
                chart
                    .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                    .map_err(|e| plot_error(path, e))?
                    .label(label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
                chart
                    .draw_series(
                        points
                            .into_iter()
                            .map(|p| Circle::new(p, 3, color.filled())),
                    )
                    .map_err(|e| plot_error(path, e))?;
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| plot_error(path, e))?;
        }
        root.present().map_err(|e| plot_error(path, e))?;
    }
    save_png(path, buffer, w, h)
}

/// Draws a confusion matrix (rows: true class, columns: predicted class) as a heat map with
/// counts, normalised per row for the colours, into a PNG at `path`.
pub fn plot_confusion(
    path: &Path,
    matrix: &[Vec<usize>],
    names: &[String],
) -> Result<(), TrainError> {
    register_font();
    let n = matrix.len().max(1);
    let cell = (480 / n).clamp(24, 80) as u32;
    let margin = 150u32;
    let (w, h) = (margin + cell * n as u32 + 40, margin + cell * n as u32 + 40);
    let mut buffer = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_error(path, e))?;
        let title = ("sans-serif", 18).into_font();
        root.draw(&Text::new(
            "confusion matrix (rows: true, columns: predicted)",
            (10, 10),
            title,
        ))
        .map_err(|e| plot_error(path, e))?;
        let font = ("sans-serif", 14).into_font();
        for (i, row) in matrix.iter().enumerate() {
            let total = row.iter().sum::<usize>().max(1) as f64;
            let y = (margin + cell * i as u32) as i32;
            let name = names.get(i).map_or("?", String::as_str);
            root.draw(&Text::new(
                name.to_string(),
                (8, y + cell as i32 / 2 - 7),
                font.clone(),
            ))
            .map_err(|e| plot_error(path, e))?;
            for (j, &count) in row.iter().enumerate() {
                let x = (margin + cell * j as u32) as i32;
                let share = count as f64 / total;
                let shade = (255.0 * (1.0 - share)) as u8;
                let color = RGBColor(shade, shade, 255);
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell as i32, y + cell as i32)],
                    color.filled(),
                ))
                .map_err(|e| plot_error(path, e))?;
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell as i32, y + cell as i32)],
                    BLACK.mix(0.2),
                ))
                .map_err(|e| plot_error(path, e))?;
                let text_color = if share > 0.5 { WHITE } else { BLACK };
                root.draw(&Text::new(
                    count.to_string(),
                    (x + 4, y + cell as i32 / 2 - 7),
                    font.clone().color(&text_color),
                ))
                .map_err(|e| plot_error(path, e))?;
            }
        }
        // Column labels, vertical text would need a rotated font: use the class index and a
        // legend under the row labels instead when names are long.
        for j in 0..matrix.len() {
            let x = (margin + cell * j as u32) as i32;
            let label: String = names.get(j).map_or("?".into(), |s| {
                s.chars().take((cell / 8).max(2) as usize).collect()
            });
            root.draw(&Text::new(label, (x + 2, margin as i32 - 20), font.clone()))
                .map_err(|e| plot_error(path, e))?;
        }
        root.present().map_err(|e| plot_error(path, e))?;
    }
    save_png(path, buffer, w, h)
}

fn save_png(path: &Path, buffer: Vec<u8>, w: u32, h: u32) -> Result<(), TrainError> {
    let image = image::RgbImage::from_raw(w, h, buffer)
        .ok_or_else(|| plot_error(path, "buffer size mismatch"))?;
    let mut bytes = Vec::new();
    image
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .map_err(|e| plot_error(path, e))?;
    crate::artifact::write_atomically(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plots_are_png_files_with_ink() {
        let dir = tempfile::tempdir().unwrap();
        let records: Vec<EpochRecord> = (1..=4)
            .map(|e| EpochRecord {
                epoch: e,
                train_loss: 2.0 / e as f64,
                val_loss: 2.2 / e as f64,
                train_acc: 20.0 * e as f64,
                val_acc: 18.0 * e as f64,
                ..Default::default()
            })
            .collect();
        let curves = dir.path().join("curves.png");
        plot_curves(&curves, &records).unwrap();
        let image = image::open(&curves).unwrap().to_rgb8();
        assert_eq!(image.dimensions(), (1200, 480));
        let coloured = image.pixels().filter(|p| p.0 != [255, 255, 255]).count();
        assert!(coloured > 5_000, "{coloured} non-white pixels");

        let confusion = dir.path().join("confusion.png");
        let names = vec!["circle".to_string(), "square".to_string()];
        plot_confusion(&confusion, &[vec![9, 1], vec![2, 8]], &names).unwrap();
        assert!(image::open(&confusion).unwrap().width() > 150);
    }
}
