//! (being written)

use serde_json::Value;
use velometry_core::reading::Reading;

use super::Failure;

/// The `source` tag of its readings.
pub const KIND: &str = "scraper";

/// A configured source of this kind.
#[derive(Debug)]
pub struct Scraper;

impl Scraper {
    /// Reads the kind's settings.
    ///
    /// # Errors
    /// A message naming the setting to fix.
    pub fn from_config(_value: toml::Value) -> Result<Self, String> {
        Err("not yet available".into())
    }

    /// One run.
    pub(super) async fn run(&self, _state: &mut Value) -> Result<Vec<Reading>, Failure> {
        Ok(Vec::new())
    }
}
