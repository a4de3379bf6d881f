//! The riders file: the single source of identities for all three services — riders and
//! their devices, viewers, organisers, services — and of the events they ride
//! (docs/events.md).
//!
//! Tokens are never stored, only their SHA-256 ([`TokenHash`]). The file is parsed and
//! checked whole, once, into a [`Registry`], course files included; a service holds it in a
//! [`reload::SharedRegistry`], which swaps in a new one when the file changes.
//!
//! Who sees what: a public rider, and a public event, by anyone; a private rider by the
//! viewers that list them; a private event by the viewers that list it. A viewer that lists
//! an event also sees every entrant of it, private or not: one token for a club's private
//! race is enough to follow all of it. Organisers scratch and reinstate the entrants of
//! their events; an organiser token is not a viewer token. A service (the progress
//! service) writes the readings it derives for the entrants of its events, and nothing else.

use std::collections::HashSet;
use std::path::Path;

use serde::Deserialize;

use crate::course::files::CourseFile;
use crate::event::status::event_code;
use crate::event::Event;
use crate::ids::{DeviceId, EventId, OrganiserId, RiderId, ServiceId};

mod events;
pub mod reload;
mod tokens;

use tokens::TokenIndex;
pub use tokens::{generate_token, TokenHash};

/// Why the riders file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RidersError {
    /// The file could not be read.
    #[error("cannot read riders file {path}: {source}")]
    Read {
        /// The path given.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("riders file {path} is invalid: {message}")]
    Parse {
        /// The path given.
        path: String,
        /// What the TOML parser said, with line and column.
        message: String,
    },
    /// The file parses but contradicts itself.
    #[error("riders file {path} is invalid: {message}")]
    Invalid {
        /// The path given.
        path: String,
        /// What is wrong.
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    rider: Vec<RawRider>,
    #[serde(default)]
    viewer: Vec<RawViewer>,
    #[serde(default)]
    event: Vec<events::RawEvent>,
    #[serde(default)]
    organiser: Vec<events::RawOrganiser>,
    #[serde(default)]
    service: Vec<events::RawService>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRider {
    id: RiderId,
    name: Option<String>,
    #[serde(default)]
    public: bool,
    max_hr: Option<f64>,
    #[serde(default)]
    device: Vec<RawDevice>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDevice {
    id: DeviceId,
    token_sha256: String,
    owntracks_key: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawViewer {
    name: String,
    token_sha256: String,
    #[serde(default)]
    riders: Vec<String>,
    #[serde(default)]
    events: Vec<String>,
}

/// The secret an OwnTracks app encrypts its messages with (its "Encryption key" setting),
/// kept as the riders file gives it. It is a secret shared with the phone, so unlike tokens
/// it cannot be stored hashed: keep the riders file readable by the services only. It is
/// never logged (`Debug` shows no part of it).
#[derive(Clone, PartialEq, Eq)]
pub struct OwnTracksKey(String);

impl OwnTracksKey {
    /// The 32-byte key of libsodium's `crypto_secretbox`, derived as the apps do: the
    /// secret's UTF-8 bytes, cut at 32 or padded with zero bytes to 32.
    pub fn secretbox_key(&self) -> [u8; 32] {
        let mut key = [0u8; 32];
        let bytes = self.0.as_bytes();
        let n = bytes.len().min(32);
        key[..n].copy_from_slice(&bytes[..n]);
        key
    }
}

impl std::fmt::Debug for OwnTracksKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OwnTracksKey(…)")
    }
}

/// A rider, as the riders file describes them.
#[derive(Debug, Clone)]
pub struct Rider {
    /// The id used in tags, URLs and subjects.
    pub id: RiderId,
    /// Display name (the id when none is given).
    pub name: String,
    /// Whether spectators may follow and read history without a token.
    pub public: bool,
    /// Maximum heart rate, for heart-rate zones.
    pub max_hr: Option<f64>,
}

/// A device's identity: whose data its token writes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeviceIdentity {
    /// The rider.
    pub rider: RiderId,
    /// The device.
    pub device: DeviceId,
}

/// Which riders or events a viewer or an organiser covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visible<T> {
    /// Every one (`"*"`).
    All,
    /// These.
    Only(Vec<T>),
}

impl<T: PartialEq> Visible<T> {
    /// Whether `id` is covered.
    pub fn covers(&self, id: &T) -> bool {
        match self {
            Visible::All => true,
            Visible::Only(ids) => ids.contains(id),
        }
    }
}

/// A viewer (coach, family, a race's followers) allowed to see private riders and events.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// Who it is, for logs.
    pub name: String,
    /// The riders this viewer may see.
    pub riders: Visible<RiderId>,
    /// The events this viewer may see, with their entrants.
    pub events: Visible<EventId>,
}

/// An organiser, who may scratch and reinstate the entrants of their events.
#[derive(Debug, Clone)]
pub struct Organiser {
    /// Their id: the `device` tag of what they record.
    pub id: OrganiserId,
    /// Display name (the id when none is given).
    pub name: String,
    /// The events they organise.
    pub events: Visible<EventId>,
}

/// A service (the progress service) that derives readings of the entrants of its events:
/// it writes those, and nothing else (docs/events.md).
#[derive(Debug, Clone)]
pub struct Service {
    /// Its id: the `device` tag of what it writes.
    pub id: ServiceId,
    /// The events it derives readings for.
    pub events: Visible<EventId>,
}

/// The parsed, validated riders file.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    riders: Vec<Rider>,
    devices: TokenIndex<DeviceIdentity>,
    viewers: TokenIndex<Viewer>,
    owntracks_keys: std::collections::HashMap<DeviceIdentity, OwnTracksKey>,
    events: Vec<Event>,
    organisers: TokenIndex<Organiser>,
    services: TokenIndex<Service>,
}

impl Registry {
    /// Reads and validates a riders file, with the course files of its events (paths relative
    /// to the riders file's folder).
    ///
    /// # Errors
    /// [`RidersError`] naming the file and what is wrong in it.
    pub fn load(path: &Path) -> Result<Registry, RidersError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| RidersError::Read { path: path.display().to_string(), source })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        Registry::parse_in(&text, dir).map_err(|e| match e {
            RidersError::Parse { message, .. } => {
                RidersError::Parse { path: path.display().to_string(), message }
            }
            RidersError::Invalid { message, .. } => {
                RidersError::Invalid { path: path.display().to_string(), message }
            }
            other => other,
        })
    }

    /// Parses a riders file's text; course files are read relative to the current directory.
    ///
    /// # Errors
    /// As [`Registry::parse_in`].
    pub fn parse(text: &str) -> Result<Registry, RidersError> {
        Registry::parse_in(text, Path::new("."))
    }

    /// Parses a riders file's text, reading course files relative to `dir`.
    ///
    /// # Errors
    /// [`RidersError::Parse`] for TOML errors, [`RidersError::Invalid`] for duplicate ids,
    /// reused tokens, malformed hashes, viewers or organisers naming unknown riders or
    /// events, and events that are not valid (docs/events.md): each message names the
    /// event and the field.
    pub fn parse_in(text: &str, dir: &Path) -> Result<Registry, RidersError> {
        Registry::parse_with(text, dir, &|path| crate::course::files::read(path).map_err(|e| e.to_string()))
    }

    /// [`Registry::parse_in`] with course files read by `load`.
    fn parse_with(
        text: &str,
        dir: &Path,
        load: &dyn Fn(&Path) -> Result<CourseFile, String>,
    ) -> Result<Registry, RidersError> {
        let invalid = |message: String| RidersError::Invalid { path: String::new(), message };
        let raw: RawFile = toml::from_str(text)
            .map_err(|e| RidersError::Parse { path: String::new(), message: e.to_string() })?;
        let mut registry = Registry::default();
        for r in raw.rider {
            registry.add_rider(r).map_err(invalid)?;
        }
        let rider_ids: HashSet<&RiderId> = registry.riders.iter().map(|r| &r.id).collect();
        let mut events: Vec<Event> = Vec::with_capacity(raw.event.len());
        for e in raw.event {
            let event = events::event(e, &rider_ids, dir, load).map_err(invalid)?;
            if let Some(twin) = events.iter().find(|x| event_code(&x.id) == event_code(&event.id)) {
                let what = if twin.id == event.id {
                    "appears twice"
                } else {
                    "has the event code of another: rename one"
                };
                return Err(invalid(format!("event {:?} {what}", event.id.as_str())));
            }
            events.push(event);
        }
        registry.events = events;
        for v in raw.viewer {
            let hash = TokenHash::parse_hex(&v.token_sha256)
                .map_err(|m| invalid(format!("viewer {:?}: {m}", v.name)))?;
            let riders = registry
                .scope(
                    &v.riders,
                    |id| RiderId::parse(id).map_err(|e| e.to_string()),
                    |r, id| r.rider(id).is_some(),
                )
                .map_err(|m| invalid(format!("viewer {:?}: riders: {m}", v.name)))?;
            let events = registry
                .scope(
                    &v.events,
                    |id| EventId::parse(id).map_err(|e| e.to_string()),
                    |r, id| r.event(id).is_some(),
                )
                .map_err(|m| invalid(format!("viewer {:?}: events: {m}", v.name)))?;
            if riders == Visible::Only(Vec::new()) && events == Visible::Only(Vec::new()) {
                return Err(invalid(format!(
                    "viewer {:?} sees nothing: give riders = […] or events = […]",
                    v.name
                )));
            }
            registry.viewers.insert(hash, Viewer { name: v.name, riders, events });
        }
        let mut organiser_ids: HashSet<OrganiserId> = HashSet::new();
        for o in raw.organiser {
            let hash = TokenHash::parse_hex(&o.token_sha256)
                .map_err(|m| invalid(format!("organiser {:?}: {m}", o.id.as_str())))?;
            if !organiser_ids.insert(o.id.clone()) {
                return Err(invalid(format!("organiser {:?} appears twice", o.id.as_str())));
            }
            let organiser = events::organiser(&o, &registry.events).map_err(invalid)?;
            registry.organisers.insert(hash, organiser);
        }
        let mut service_ids: HashSet<ServiceId> = HashSet::new();
        for raw in raw.service {
            let hash = TokenHash::parse_hex(&raw.token_sha256)
                .map_err(|m| invalid(format!("service {:?}: {m}", raw.id.as_str())))?;
            if !service_ids.insert(raw.id.clone()) {
                return Err(invalid(format!("service {:?} appears twice", raw.id.as_str())));
            }
            let service = events::service(&raw, &registry.events).map_err(invalid)?;
            registry.services.insert(hash, service);
        }
        let mut hashes: Vec<TokenHash> = registry
            .devices
            .hashes()
            .chain(registry.viewers.hashes())
            .chain(registry.organisers.hashes())
            .chain(registry.services.hashes())
            .copied()
            .collect();
        hashes.sort_unstable_by_key(|h| h.0);
        if hashes.windows(2).any(|w| w[0] == w[1]) {
            return Err(invalid(
                "two devices, viewers, organisers or services share one token; give each its own".into(),
            ));
        }
        Ok(registry)
    }

    fn add_rider(&mut self, r: RawRider) -> Result<(), String> {
        if self.riders.iter().any(|x| x.id == r.id) {
            return Err(format!("rider {:?} appears twice", r.id.as_str()));
        }
        if let Some(hr) = r.max_hr {
            if !(100.0..=250.0).contains(&hr) {
                return Err(format!("rider {:?}: max_hr {hr} is not in 100..=250", r.id.as_str()));
            }
        }
        for d in r.device {
            let hash = TokenHash::parse_hex(&d.token_sha256)
                .map_err(|m| format!("rider {:?} device {:?}: {m}", r.id.as_str(), d.id.as_str()))?;
            let identity = DeviceIdentity { rider: r.id.clone(), device: d.id };
            if self.devices.values().any(|x| *x == identity) {
                return Err(format!(
                    "rider {:?} has device {:?} twice",
                    r.id.as_str(),
                    identity.device.as_str()
                ));
            }
            match d.owntracks_key {
                Some(key) if key.is_empty() => {
                    return Err(format!(
                        "rider {:?} device {:?}: owntracks_key is empty (leave it out for a device that does not encrypt)",
                        r.id.as_str(),
                        identity.device.as_str()
                    ))
                }
                Some(key) => {
                    self.owntracks_keys.insert(identity.clone(), OwnTracksKey(key));
                }
                None => {}
            }
            self.devices.insert(hash, identity);
        }
        self.riders.push(Rider {
            name: r.name.unwrap_or_else(|| r.id.to_string()),
            id: r.id,
            public: r.public,
            max_hr: r.max_hr,
        });
        Ok(())
    }

    /// The riders or events a list names (`["*"]` for all), each checked by `known`.
    fn scope<T>(
        &self,
        names: &[String],
        parse: impl Fn(&str) -> Result<T, String>,
        known: impl Fn(&Registry, &T) -> bool,
    ) -> Result<Visible<T>, String> {
        if names.iter().any(|n| n == "*") {
            return Ok(Visible::All);
        }
        let mut ids = Vec::with_capacity(names.len());
        for name in names {
            let id = parse(name)?;
            if !known(self, &id) {
                return Err(format!("{name:?} is not in this file"));
            }
            ids.push(id);
        }
        Ok(Visible::Only(ids))
    }

    /// Every rider, in file order.
    pub fn riders(&self) -> &[Rider] {
        &self.riders
    }

    /// One rider by id.
    pub fn rider(&self, id: &RiderId) -> Option<&Rider> {
        self.riders.iter().find(|r| r.id == *id)
    }

    /// How many device tokens the file holds.
    pub fn device_count(&self) -> usize {
        self.devices.values().count()
    }

    /// Every event, in file order.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// One event by id.
    pub fn event(&self, id: &EventId) -> Option<&Event> {
        self.events.iter().find(|e| e.id == *id)
    }

    /// The device a token belongs to.
    pub fn authenticate_device(&self, token: &str) -> Option<&DeviceIdentity> {
        self.devices.find(token)
    }

    /// The key a device's OwnTracks app encrypts with, if the riders file gives one.
    pub fn owntracks_key(&self, device: &DeviceIdentity) -> Option<&OwnTracksKey> {
        self.owntracks_keys.get(device)
    }

    /// The viewer a token belongs to.
    pub fn authenticate_viewer(&self, token: &str) -> Option<&Viewer> {
        self.viewers.find(token)
    }

    /// The organiser a token belongs to.
    pub fn authenticate_organiser(&self, token: &str) -> Option<&Organiser> {
        self.organisers.find(token)
    }

    /// The service a token belongs to.
    pub fn authenticate_service(&self, token: &str) -> Option<&Service> {
        self.services.find(token)
    }

    /// Whether a caller (a viewer, or anonymous) may see a rider: a public one, one the
    /// viewer lists, or an entrant of an event the viewer lists.
    pub fn may_see(&self, viewer: Option<&Viewer>, rider: &Rider) -> bool {
        rider.public
            || viewer.is_some_and(|v| {
                v.riders.covers(&rider.id)
                    || self.events.iter().any(|e| v.events.covers(&e.id) && e.entrant(&rider.id).is_some())
            })
    }

    /// Whether a caller (a viewer, or anonymous) may see an event: a public one, or one the
    /// viewer lists.
    pub fn may_see_event(&self, viewer: Option<&Viewer>, event: &Event) -> bool {
        event.public || viewer.is_some_and(|v| v.events.covers(&event.id))
    }
}

#[cfg(test)]
mod tests;
