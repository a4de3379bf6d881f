//! The riders file: the single source of identities for all three services.
//!
//! Tokens are never stored, only their SHA-256. A presented token is hashed; the first
//! eight bytes of its hash pick a bucket, and the whole hash is compared with each entry of
//! that bucket in constant time. The timing can at most tell whether some stored hash
//! shares 64 bits with the hash of a guess, which says nothing about any token; and a
//! lookup costs the same with five devices or five thousand (a linear scan of every hash
//! was a quarter of the collector's CPU with 500 devices).

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::ids::{DeviceId, RiderId};

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

/// The SHA-256 of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// Hashes a presented token.
    pub fn of(token: &str) -> TokenHash {
        TokenHash(Sha256::digest(token.as_bytes()).into())
    }

    /// Parses 64 hex digits.
    ///
    /// # Errors
    /// A message saying what the value should look like.
    pub fn parse_hex(hex_digits: &str) -> Result<TokenHash, String> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hex_digits, &mut bytes).map_err(|_| {
            format!("token_sha256 {hex_digits:?} is not 64 hex digits (run `collector token` to make one)")
        })?;
        Ok(TokenHash(bytes))
    }

    /// The hash as 64 lowercase hex digits.
    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }

    fn matches(&self, other: &TokenHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }

    fn bucket(&self) -> u64 {
        u64::from_le_bytes([
            self.0[0], self.0[1], self.0[2], self.0[3], self.0[4], self.0[5], self.0[6], self.0[7],
        ])
    }
}

/// Entries found by the hash of their token.
#[derive(Debug, Clone)]
struct TokenIndex<T> {
    buckets: HashMap<u64, Vec<(TokenHash, T)>>,
}

impl<T> Default for TokenIndex<T> {
    fn default() -> Self {
        TokenIndex { buckets: HashMap::new() }
    }
}

impl<T> TokenIndex<T> {
    fn insert(&mut self, hash: TokenHash, value: T) {
        self.buckets.entry(hash.bucket()).or_default().push((hash, value));
    }

    fn hashes(&self) -> impl Iterator<Item = &TokenHash> {
        self.buckets.values().flatten().map(|(h, _)| h)
    }

    fn values(&self) -> impl Iterator<Item = &T> {
        self.buckets.values().flatten().map(|(_, v)| v)
    }

    fn find(&self, token: &str) -> Option<&T> {
        let presented = TokenHash::of(token);
        let mut found = None;
        for (hash, value) in self.buckets.get(&presented.bucket()).into_iter().flatten() {
            // No early exit within the bucket.
            if hash.matches(&presented) {
                found = Some(value);
            }
        }
        found
    }
}

/// Makes a fresh random token (256 bits) with a recognisable prefix.
pub fn generate_token() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("velo_{}", hex::encode(bytes))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    rider: Vec<RawRider>,
    #[serde(default)]
    viewer: Vec<RawViewer>,
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawViewer {
    name: String,
    token_sha256: String,
    riders: Vec<String>,
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

/// Which riders a viewer may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visible {
    /// Every rider (`"*"`).
    All,
    /// These riders.
    Only(Vec<RiderId>),
}

/// A viewer (coach, family) allowed to see private riders.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// Who it is, for logs.
    pub name: String,
    /// The riders this viewer may see.
    pub riders: Visible,
}

/// The parsed, validated riders file.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    riders: Vec<Rider>,
    devices: TokenIndex<DeviceIdentity>,
    viewers: TokenIndex<Viewer>,
    owntracks_keys: HashMap<DeviceIdentity, OwnTracksKey>,
}

impl Registry {
    /// Reads and validates a riders file.
    ///
    /// # Errors
    /// [`RidersError`] naming the file and what is wrong in it.
    pub fn load(path: &Path) -> Result<Registry, RidersError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| RidersError::Read { path: path.display().to_string(), source })?;
        Registry::parse(&text).map_err(|e| match e {
            RidersError::Parse { message, .. } => {
                RidersError::Parse { path: path.display().to_string(), message }
            }
            RidersError::Invalid { message, .. } => {
                RidersError::Invalid { path: path.display().to_string(), message }
            }
            other => other,
        })
    }

    /// Parses a riders file's text.
    ///
    /// # Errors
    /// [`RidersError::Parse`] for TOML errors, [`RidersError::Invalid`] for duplicate ids,
    /// reused tokens, malformed hashes and viewers naming unknown riders.
    pub fn parse(text: &str) -> Result<Registry, RidersError> {
        let invalid = |message: String| RidersError::Invalid { path: String::new(), message };
        let raw: RawFile = toml::from_str(text)
            .map_err(|e| RidersError::Parse { path: String::new(), message: e.to_string() })?;
        let mut registry = Registry::default();
        for r in raw.rider {
            if registry.riders.iter().any(|x| x.id == r.id) {
                return Err(invalid(format!("rider {:?} appears twice", r.id.as_str())));
            }
            if let Some(hr) = r.max_hr {
                if !(100.0..=250.0).contains(&hr) {
                    return Err(invalid(format!(
                        "rider {:?}: max_hr {hr} is not in 100..=250",
                        r.id.as_str()
                    )));
                }
            }
            for d in r.device {
                let hash = TokenHash::parse_hex(&d.token_sha256).map_err(|m| {
                    invalid(format!("rider {:?} device {:?}: {m}", r.id.as_str(), d.id.as_str()))
                })?;
                let identity = DeviceIdentity { rider: r.id.clone(), device: d.id };
                if registry.devices.values().any(|x| *x == identity) {
                    return Err(invalid(format!(
                        "rider {:?} has device {:?} twice",
                        r.id.as_str(),
                        identity.device.as_str()
                    )));
                }
                match d.owntracks_key {
                    Some(key) if key.is_empty() => {
                        return Err(invalid(format!(
                            "rider {:?} device {:?}: owntracks_key is empty (leave it out for a device that does not encrypt)",
                            r.id.as_str(),
                            identity.device.as_str()
                        )))
                    }
                    Some(key) => {
                        registry.owntracks_keys.insert(identity.clone(), OwnTracksKey(key));
                    }
                    None => {}
                }
                registry.devices.insert(hash, identity);
            }
            registry.riders.push(Rider {
                name: r.name.unwrap_or_else(|| r.id.to_string()),
                id: r.id,
                public: r.public,
                max_hr: r.max_hr,
            });
        }
        for v in raw.viewer {
            let hash = TokenHash::parse_hex(&v.token_sha256)
                .map_err(|m| invalid(format!("viewer {:?}: {m}", v.name)))?;
            let riders = if v.riders.iter().any(|r| r == "*") {
                Visible::All
            } else {
                let mut ids = Vec::new();
                for r in &v.riders {
                    let id = RiderId::parse(r).map_err(|e| invalid(format!("viewer {:?}: {e}", v.name)))?;
                    if registry.rider(&id).is_none() {
                        return Err(invalid(format!("viewer {:?} names unknown rider {r:?}", v.name)));
                    }
                    ids.push(id);
                }
                Visible::Only(ids)
            };
            registry.viewers.insert(hash, Viewer { name: v.name, riders });
        }
        let mut hashes: Vec<TokenHash> =
            registry.devices.hashes().chain(registry.viewers.hashes()).copied().collect();
        hashes.sort_unstable_by_key(|h| h.0);
        if hashes.windows(2).any(|w| w[0] == w[1]) {
            return Err(invalid("two devices or viewers share one token; give each its own".into()));
        }
        Ok(registry)
    }

    /// Every rider, in file order.
    pub fn riders(&self) -> &[Rider] {
        &self.riders
    }

    /// One rider by id.
    pub fn rider(&self, id: &RiderId) -> Option<&Rider> {
        self.riders.iter().find(|r| r.id == *id)
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

    /// Whether a caller (a viewer, or anonymous) may see a rider.
    pub fn may_see(&self, viewer: Option<&Viewer>, rider: &Rider) -> bool {
        rider.public
            || match viewer.map(|v| &v.riders) {
                Some(Visible::All) => true,
                Some(Visible::Only(ids)) => ids.contains(&rider.id),
                None => false,
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(alice_token: &str, coach_token: &str) -> String {
        format!(
            r#"
[[rider]]
id = "alice"
name = "Alice"
public = true
  [[rider.device]]
  id = "edge530"
  token_sha256 = "{}"

[[rider]]
id = "bob"
max_hr = 190

[[viewer]]
name = "coach"
token_sha256 = "{}"
riders = ["bob"]
"#,
            TokenHash::of(alice_token).to_hex(),
            TokenHash::of(coach_token).to_hex()
        )
    }

    #[test]
    fn authenticates_devices_and_viewers_by_token() {
        let registry = Registry::parse(&file("t1", "t2")).expect("valid");
        let id = registry.authenticate_device("t1").expect("known token");
        assert_eq!((id.rider.as_str(), id.device.as_str()), ("alice", "edge530"));
        assert!(registry.authenticate_device("t2").is_none(), "a viewer token is no device token");
        assert!(registry.authenticate_device("nope").is_none());
        let coach = registry.authenticate_viewer("t2").expect("viewer");
        let bob = registry.rider(&RiderId::parse("bob").expect("valid")).expect("bob");
        assert!(registry.may_see(Some(coach), bob));
        assert!(!registry.may_see(None, bob));
        assert_eq!(bob.name, "bob");
        assert_eq!(bob.max_hr, Some(190.0));
    }

    #[test]
    fn rejects_contradictions_with_a_message_naming_them() {
        let err = Registry::parse(&file("same", "same")).unwrap_err().to_string();
        assert!(err.contains("share one token"), "{err}");
        let err = Registry::parse("[[rider]]\nid = \"Alice\"\n").unwrap_err().to_string();
        assert!(err.contains("invalid id \"Alice\""), "{err}");
        let err =
            Registry::parse("[[rider]]\nid = \"a\"\n[[rider.device]]\nid = \"d\"\ntoken_sha256 = \"xyz\"\n")
                .unwrap_err()
                .to_string();
        assert!(err.contains("not 64 hex digits"), "{err}");
        let err = Registry::parse("[[viewer]]\nname = \"c\"\ntoken_sha256 = \"{}\"\nriders = [\"zed\"]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not 64 hex digits") || err.contains("unknown rider"), "{err}");
    }

    #[test]
    fn finds_every_device_among_many() {
        let mut file = String::new();
        for i in 0..1000 {
            file.push_str(&format!(
                "[[rider]]\nid = \"r{i}\"\n[[rider.device]]\nid = \"d\"\ntoken_sha256 = \"{}\"\n",
                TokenHash::of(&format!("token-{i}")).to_hex()
            ));
        }
        let registry = Registry::parse(&file).expect("valid");
        for i in [0, 1, 499, 999] {
            let id = registry.authenticate_device(&format!("token-{i}")).expect("known");
            assert_eq!(id.rider.as_str(), format!("r{i}"));
        }
        assert!(registry.authenticate_device("token-1000").is_none());
    }

    #[test]
    fn an_owntracks_key_is_kept_per_device_and_padded_or_cut_as_the_apps_do() {
        let file = format!(
            "[[rider]]\nid = \"a\"\n[[rider.device]]\nid = \"phone\"\ntoken_sha256 = \"{}\"\nowntracks_key = \"s3cret\"\n\
             [[rider.device]]\nid = \"edge\"\ntoken_sha256 = \"{}\"\n",
            TokenHash::of("t1").to_hex(),
            TokenHash::of("t2").to_hex()
        );
        let registry = Registry::parse(&file).expect("valid");
        let phone = registry.authenticate_device("t1").expect("known").clone();
        let key = registry.owntracks_key(&phone).expect("a key");
        assert_eq!(&key.secretbox_key()[..7], b"s3cret\0");
        assert_eq!(format!("{key:?}"), "OwnTracksKey(…)", "never in a log");
        let edge = registry.authenticate_device("t2").expect("known");
        assert!(registry.owntracks_key(edge).is_none());
        let long = OwnTracksKey("x".repeat(40));
        assert_eq!(long.secretbox_key(), [b'x'; 32]);
        let empty = file.replace("s3cret", "");
        assert!(Registry::parse(&empty).unwrap_err().to_string().contains("owntracks_key is empty"));
    }

    #[test]
    fn generated_tokens_are_distinct_and_prefixed() {
        let (a, b) = (generate_token(), generate_token());
        assert_ne!(a, b);
        assert!(a.starts_with("velo_") && a.len() == 69);
    }
}
