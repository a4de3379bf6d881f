//! Identifiers of riders, devices, events and organisers: validated once, so that past the edge an id can be
//! used as an InfluxDB tag value or a NATS subject token without escaping.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid id {value:?}: ids are 1 to 64 characters of a-z, 0-9, '_' and '-'")]
pub struct InvalidId {
    /// The rejected value.
    pub value: String,
}

fn check(value: &str) -> Result<(), InvalidId> {
    let valid = (1..=64).contains(&value.len())
        && value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(InvalidId { value: value.to_owned() })
    }
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Parses an id: 1 to 64 characters of `[a-z0-9_-]`.
            ///
            /// # Errors
            /// [`InvalidId`] when the value has another character or length.
            pub fn parse(value: &str) -> Result<Self, InvalidId> {
                check(value)?;
                Ok(Self(value.to_owned()))
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(deserializer)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

id_type!(
    /// A rider's id, as written in the riders file.
    RiderId
);
id_type!(
    /// A device's id, unique within its rider.
    DeviceId
);
id_type!(
    /// An event's id, as written in the riders file.
    EventId
);
id_type!(
    /// An organiser's id, as written in the riders file; it is the `device` tag of what
    /// they record (`event_status`), so the history says who scratched a rider.
    OrganiserId
);

id_type!(
    /// A service's id (the progress service), as written in the riders file; it is the
    /// `device` tag of the readings it derives, so the history says what derived them.
    ServiceId
);

impl From<&ServiceId> for DeviceId {
    /// The service as the `device` of the readings it derives.
    fn from(service: &ServiceId) -> DeviceId {
        DeviceId(service.0.clone())
    }
}

impl From<&OrganiserId> for DeviceId {
    /// The organiser as the `device` of the readings they record: both ids have one alphabet.
    fn from(organiser: &OrganiserId) -> DeviceId {
        DeviceId(organiser.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_alphabet() {
        assert_eq!(RiderId::parse("alice_2-b").map(|r| r.to_string()), Ok("alice_2-b".into()));
        assert!(RiderId::parse(&"a".repeat(64)).is_ok());
    }

    #[test]
    fn rejects_what_would_need_escaping() {
        for bad in ["", "Alice", "a b", "a,b", "a.b", "é", &"a".repeat(65)] {
            assert!(RiderId::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
