//! The spectator page at `/` and its files under `/assets/`: built from `web/` by
//! `build.rs` (npm packages pinned by `web/package-lock.json`, bundled with esbuild) and
//! embedded in the binary, so the hub serves it with no CDN and no third-party request but
//! the map tiles. Each asset is named by its content's hash and cached for a year; `/`
//! itself is never cached, so a new hub's page loads its new assets at once.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

include!(concat!(env!("OUT_DIR"), "/web.rs"));

/// Where the build installed the page's npm packages (pinned by `web/package-lock.json`):
/// the browser tests run axe-core from there.
pub const NODE_MODULES: &str = env!("VELOMETRY_WEB_NODE_MODULES");

/// OpenStreetMap's standard tiles, the default; their tile usage policy asks for this
/// attribution on the map.
pub const OSM_TILES: &str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png";
/// The attribution shown with the default tiles.
pub const OSM_ATTRIBUTION: &str =
    "&copy; <a href=\"https://www.openstreetmap.org/copyright\">OpenStreetMap</a> contributors";

/// What the page is told about where it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageSettings {
    /// The query service's URL as browsers reach it.
    pub query_url: Option<String>,
    /// Tile URL template (`{z}/{x}/{y}`); `None` draws on a plain background.
    pub tile_url: Option<String>,
    /// The tiles' attribution (HTML), shown on the map.
    pub tile_attribution: String,
}

/// The rendered page and the policy it is served with.
#[derive(Debug)]
pub struct Page {
    index: String,
    policy: HeaderValue,
}

impl Page {
    /// The page with its settings filled in.
    pub fn new(settings: &PageSettings) -> Page {
        let config = serde_json::json!({
            "query_url": settings.query_url,
            "tile_url": settings.tile_url,
            "tile_attribution": settings.tile_attribution,
        });
        // In a <script> element: no "</script>" may appear in it.
        let config = config.to_string().replace('<', "\\u003c");
        let index = file("index.html")
            .map(|(body, _)| String::from_utf8_lossy(body).into_owned())
            .unwrap_or_default();
        let origin = |url: &Option<String>| url.as_deref().and_then(origin).unwrap_or_default();
        let policy = format!(
            "default-src 'self'; connect-src 'self' ws: wss: {query}; img-src 'self' data: {tiles}; \
             style-src 'self' 'unsafe-inline'; base-uri 'none'; frame-ancestors *",
            query = origin(&settings.query_url),
            tiles = origin(&settings.tile_url),
        );
        Page {
            index: index.replace("__CONFIG__", &config),
            policy: HeaderValue::from_str(&policy).unwrap_or(HeaderValue::from_static("default-src 'self'")),
        }
    }
}

/// `scheme://host[:port]` of a URL (a tile template's `{s}` subdomain becomes `*`).
fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split('/').next()?;
    Some(format!("{scheme}://{}", host.replace("{s}", "*")))
}

fn file(name: &str) -> Option<(&'static [u8], &'static [u8])> {
    FILES.iter().find(|(n, _, _)| *n == name).map(|(_, body, gz)| (*body, *gz))
}

/// `GET /`.
pub async fn index(State(state): State<AppState>) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::CONTENT_SECURITY_POLICY, state.page.policy.clone()),
        ],
        state.page.index.clone(),
    )
        .into_response()
}

/// `GET /assets/{name}`: gzipped for every client that takes it.
pub async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let Some((body, gz)) = file(&name).filter(|_| name != "index.html") else {
        return (StatusCode::NOT_FOUND, "no such asset\n").into_response();
    };
    let kind = match name.rsplit('.').next() {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    };
    let gzip = !gz.is_empty()
        && headers
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|e| e.trim().split(';').next() == Some("gzip")));
    let mut response = (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            (header::VARY, "Accept-Encoding"),
        ],
        if gzip { gz } else { body },
    )
        .into_response();
    if gzip {
        response.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_and_its_assets_are_embedded_and_the_settings_cannot_break_out() {
        let page = Page::new(&PageSettings {
            query_url: Some("http://q.example:8070".into()),
            tile_url: Some("https://{s}.tile.example/{z}/{x}/{y}.png".into()),
            tile_attribution: "</script><script>alert(1)</script>".into(),
        });
        assert!(!page.index.contains("__CONFIG__"));
        assert!(!page.index.contains("</script><script>alert"), "{}", page.index);
        for asset in ["/assets/app-", ".js\"", ".css\""] {
            assert!(page.index.contains(asset), "the page names its {asset}: {}", page.index);
        }
        let policy = page.policy.to_str().expect("ASCII");
        assert!(policy.contains("connect-src 'self' ws: wss: http://q.example:8070;"), "{policy}");
        assert!(policy.contains("img-src 'self' data: https://*.tile.example;"), "{policy}");
        let named: Vec<&str> = FILES.iter().map(|(n, _, _)| *n).collect();
        assert!(named.iter().any(|n| n.starts_with("app-") && n.ends_with(".js")), "{named:?}");
        for (name, body, gz) in FILES.iter().filter(|(_, _, gz)| !gz.is_empty()) {
            assert!(gz.len() < body.len(), "{name}: gzipped only when that is smaller");
            let mut plain = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(*gz), &mut plain).expect("gzip");
            assert_eq!(&plain[..], *body, "{name}: the gzipped file is the file");
        }
    }
}
