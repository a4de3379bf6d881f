//! Riders files for tests and benchmarks, written from the riders, devices, viewers,
//! organisers and events added to them; tokens are hashed as the real file holds them.

/// A riders file for tests and benchmarks, written from the riders, devices and viewers
/// added to it; tokens are hashed as the real file holds them.
#[derive(Debug, Default)]
pub struct RidersToml(String);

impl RidersToml {
    /// An empty file.
    pub fn new() -> RidersToml {
        RidersToml::default()
    }

    /// Adds a rider.
    #[must_use]
    pub fn rider(mut self, id: &str, name: &str, public: bool) -> RidersToml {
        self.0.push_str(&format!("[[rider]]\nid = \"{id}\"\nname = \"{name}\"\npublic = {public}\n"));
        self
    }

    /// Sets the maximum heart rate of the rider added last (call before adding devices).
    #[must_use]
    pub fn max_hr(mut self, bpm: u32) -> RidersToml {
        self.0.push_str(&format!("max_hr = {bpm}\n"));
        self
    }

    /// Adds a device with its token to the rider added last.
    #[must_use]
    pub fn device(mut self, id: &str, token: &str) -> RidersToml {
        let hash = crate::riders::TokenHash::of(token).to_hex();
        self.0.push_str(&format!("  [[rider.device]]\n  id = \"{id}\"\n  token_sha256 = \"{hash}\"\n"));
        self
    }

    /// Adds a viewer who may see `riders`.
    #[must_use]
    pub fn viewer(mut self, name: &str, token: &str, riders: &[&str]) -> RidersToml {
        let hash = crate::riders::TokenHash::of(token).to_hex();
        let riders: Vec<String> = riders.iter().map(|r| format!("\"{r}\"")).collect();
        self.0.push_str(&format!(
            "[[viewer]]\nname = \"{name}\"\ntoken_sha256 = \"{hash}\"\nriders = [{}]\n",
            riders.join(", ")
        ));
        self
    }

    /// Adds an organiser who may scratch and reinstate riders of `events`.
    #[must_use]
    pub fn organiser(mut self, id: &str, token: &str, events: &[&str]) -> RidersToml {
        let hash = crate::riders::TokenHash::of(token).to_hex();
        let events: Vec<String> = events.iter().map(|e| format!("\"{e}\"")).collect();
        self.0.push_str(&format!(
            "[[organiser]]\nid = \"{id}\"\ntoken_sha256 = \"{hash}\"\nevents = [{}]\n",
            events.join(", ")
        ));
        self
    }

    /// Adds a service (the progress service) that derives readings for the entrants of
    /// `events`.
    #[must_use]
    pub fn service(mut self, id: &str, token: &str, events: &[&str]) -> RidersToml {
        let hash = crate::riders::TokenHash::of(token).to_hex();
        let events: Vec<String> = events.iter().map(|e| format!("\"{e}\"")).collect();
        self.0.push_str(&format!(
            "[[service]]\nid = \"{id}\"\ntoken_sha256 = \"{hash}\"\nevents = [{}]\n",
            events.join(", ")
        ));
        self
    }

    /// Adds TOML as it is (an `[[event]]` table, say).
    #[must_use]
    pub fn raw(mut self, toml: &str) -> RidersToml {
        self.0.push_str(toml);
        if !toml.ends_with('\n') {
            self.0.push('\n');
        }
        self
    }

    /// The file's text.
    pub fn build(self) -> String {
        self.0
    }
}
