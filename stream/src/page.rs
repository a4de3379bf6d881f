//! The live page at `/`: one self-contained file (no CDN; it works offline) that follows one
//! rider (`/?rider=alice`) or every public rider on a plain SVG map, with OpenStreetMap
//! tiles only when a tile URL is configured.

const PAGE: &str = include_str!("../static/live.html");

/// The page with its settings filled in.
pub fn render(tile_url: Option<&str>) -> String {
    let tiles = serde_json::to_string(&tile_url).unwrap_or_else(|_| "null".into());
    PAGE.replace("__TILE_URL__", &tiles)
}
