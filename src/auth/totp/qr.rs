//! The QR code of an enrolment's `otpauth://` URI, as SVG: what an enrolment page shows
//! for the app to scan. The `qrcode` crate encodes (error correction M, the size it
//! chooses); the drawing is ours, one square per dark module on a white ground with the
//! standard quiet zone of four modules, in a `viewBox` of module units, so the page sizes
//! it with CSS and it stays sharp at any size.

use std::fmt::Write;

use qrcode::{Color, EcLevel, QrCode};

/// Modules of white around the code, as the QR standard asks.
const QUIET_ZONE: usize = 4;

/// The SVG of `text`'s QR code; `None` if it does not fit in one (over about 2 KB).
pub fn svg(text: &str) -> Option<String> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).ok()?;
    let width = code.width();
    let side = width + 2 * QUIET_ZONE;
    let mut path = String::new();
    for (index, color) in code.to_colors().into_iter().enumerate() {
        if color == Color::Dark {
            let (x, y) = (index % width + QUIET_ZONE, index / width + QUIET_ZONE);
            let _ = write!(path, "M{x} {y}h1v1h-1z");
        }
    }
    Some(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {side} {side}\" \
         shape-rendering=\"crispEdges\"><rect width=\"{side}\" height=\"{side}\" \
         fill=\"#fff\"/><path fill=\"#000\" d=\"{path}\"/></svg>"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SVG drawn as pixels (`scale` per module) and read by a QR decoder.
    fn read_back(svg: &str, scale: usize) -> String {
        let side: usize = svg
            .split("viewBox=\"0 0 ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .expect("a viewBox");
        let mut dark = vec![false; side * side];
        let d = svg.split(" d=\"").nth(1).expect("a path");
        for square in d.trim_end_matches("\"/></svg>").split('z') {
            let Some(at) = square.strip_prefix('M') else {
                continue;
            };
            let at = at.trim_end_matches("h1v1h-1");
            let (x, y) = at.split_once(' ').expect("M x y");
            let (x, y): (usize, usize) = (x.parse().unwrap(), y.parse().unwrap());
            dark[y * side + x] = true;
        }
        let pixels = side * scale;
        let mut image = rqrr::PreparedImage::prepare_from_greyscale(pixels, pixels, |x, y| {
            if dark[(y / scale) * side + x / scale] {
                0
            } else {
                255
            }
        });
        let grids = image.detect_grids();
        assert_eq!(grids.len(), 1, "one QR code in the picture");
        grids[0].decode().expect("it decodes").1
    }

    #[test]
    fn the_code_reads_back_as_the_uri() {
        let uri = "otpauth://totp/auth-server:ada%40example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=auth-server";
        let svg = svg(uri).expect("it fits");
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.contains("fill=\"#fff\""), "a white ground");
        assert_eq!(read_back(&svg, 4), uri);
    }

    #[test]
    fn text_too_long_for_a_code_is_none() {
        assert!(svg(&"x".repeat(5000)).is_none());
    }
}
