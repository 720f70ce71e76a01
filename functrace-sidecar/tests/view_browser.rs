//! The viewer's HTML page as a browser draws it: headless Chromium (Debian's `chromium`,
//! which `scripts/test` installs) loads the page written by `functrace-sidecar view --html`,
//! its DOM is checked, and its screenshot is measured: one bar per span, blue or red for
//! errors, each placed and sized in proportion to the span's offset and duration.

use std::path::{Path, PathBuf};
use std::process::Command;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/view_data");
const TRACE: &str = "463ac35c9f6413ad48485a3953bb6124";
/// (offset, duration) in µs of the trace's spans in drawing order, and whether each failed.
const ROWS: [(u64, u64, bool); 8] = [
    (0, 30_000, false),
    (500, 29_000, false),
    (1_000, 20_000, false),
    (2_000, 18_000, false),
    (3_000, 6_000, false),
    (10_000, 9_000, true),
    (11_000, 7_000, true),
    (22_000, 7_500, false),
];
const BLUE: [u8; 3] = [0x4a, 0x7b, 0xd0];
const RED: [u8; 3] = [0xd0, 0x30, 0x30];

fn chromium(dir: &Path, args: &[&str], page: &Path) -> std::process::Output {
    let output = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium is installed (scripts/test installs Debian's chromium)");
    assert!(output.status.success(), "chromium: {output:?}");
    output
}

/// A horizontal band of pixels of one colour: the rows it spans and its left and right x.
#[derive(Debug)]
struct Band {
    color: [u8; 3],
    left: usize,
    right: usize,
}

/// The bars in the screenshot, top to bottom.
fn bars(png: &Path) -> Vec<Band> {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).unwrap();
    let channels = info.color_type.samples();
    let (width, height) = (info.width as usize, info.height as usize);
    let mut bands: Vec<Band> = Vec::new();
    let mut previous: Option<[u8; 3]> = None;
    for y in 0..height {
        let row = &pixels[y * info.line_size..][..width * channels];
        let found = [BLUE, RED].into_iter().find_map(|color| {
            let xs: Vec<usize> = (0..width)
                .filter(|x| row[x * channels..][..3] == color)
                .collect();
            Some((color, *xs.first()?, *xs.last()?))
        });
        match found {
            Some((color, left, right)) if previous != Some(color) => {
                bands.push(Band { color, left, right });
                previous = Some(color);
            }
            Some(_) => {}
            None => previous = None,
        }
    }
    bands
}

#[test]
fn chromium_draws_one_proportional_bar_per_span_and_errors_in_red() {
    let dir = tempfile::tempdir().unwrap();
    let page: PathBuf = dir.path().join("trace.html");
    let files: Vec<PathBuf> = ["svca", "svcb", "svcc"]
        .iter()
        .map(|name| Path::new(DATA).join(format!("{name}.jsonl")))
        .collect();
    let view = Command::new(env!("CARGO_BIN_EXE_functrace-sidecar"))
        .arg("view")
        .args(&files)
        .args(["--trace", TRACE, "--html"])
        .arg(&page)
        .output()
        .unwrap();
    assert!(view.status.success(), "{view:?}");

    let dom = String::from_utf8(chromium(dir.path(), &["--dump-dom"], &page).stdout).unwrap();
    assert_eq!(dom.matches("class=\"bar\"").count(), ROWS.len(), "{dom}");
    assert_eq!(dom.matches("class=\"row error\"").count(), 2);
    assert!(dom.contains("out of stock"));

    let shot = dir.path().join("trace.png");
    chromium(
        dir.path(),
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1200,900",
        ],
        &page,
    );
    let bands = bars(&shot);
    assert_eq!(bands.len(), ROWS.len(), "{bands:#?}");
    // The first span covers the whole trace: its bar is the track.
    let (track_left, track_width) = (
        bands[0].left as f64,
        (bands[0].right - bands[0].left + 1) as f64,
    );
    for ((offset, duration, failed), band) in ROWS.iter().zip(&bands) {
        assert_eq!(band.color, if *failed { RED } else { BLUE }, "{band:?}");
        let left = track_left + track_width * *offset as f64 / 30_000.0;
        let width = track_width * *duration as f64 / 30_000.0;
        let drawn_width = (band.right - band.left + 1) as f64;
        assert!(
            (band.left as f64 - left).abs() <= 2.0,
            "{band:?}: left should be {left}"
        );
        assert!(
            (drawn_width - width).abs() <= 2.0,
            "{band:?}: width should be {width}"
        );
    }
}
