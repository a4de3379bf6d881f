//! Replicas share the entrants: each rider is owned by exactly one live replica at a time.
//!
//! Every replica puts its name in a NATS JetStream key-value bucket every `lease / 5`; the
//! bucket forgets a key `lease` after its last put, so the names listed are the replicas
//! alive. A rider belongs to the replica whose name scores highest with the rider's id
//! (rendezvous hashing): every replica computes the same owner from the same list, and a
//! replica that comes or goes moves only its own share of the riders.
//!
//! A change of the list is not seen by every replica at the same moment, so a replica gives
//! a rider up as soon as it sees a list that gives the rider to another, and takes one only
//! once every list it saw for `settle` (two heartbeats) gives it the rider: the one that
//! had the rider has let go by then. A replica that cannot reach NATS owns nothing until it
//! can again, and waits `settle` before it takes anything back. Between the two, a rider a
//! dead replica owned waits for its lease to run out, then is caught up from InfluxDB by its
//! new owner (docs/progress.md, "Replicas").

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use futures::TryStreamExt;
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio::time::Instant;
use velometry_core::ids::RiderId;
use velometry_core::shutdown::stopped;

use super::metrics as m;

/// The bucket's key of a replica's name.
const PREFIX: &str = "members.";

/// Which riders this replica owns, from the lists of replicas it saw lately.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owners {
    me: String,
    /// Every list of replicas seen within the settle time, each sorted; none when NATS
    /// could not be reached.
    lists: Vec<Vec<String>>,
}

impl Owners {
    /// This replica (`me`) among the lists `lists` (each of replica names).
    pub fn new(me: &str, lists: Vec<Vec<String>>) -> Owners {
        Owners { me: me.to_string(), lists }
    }

    /// Whether `rider` is this replica's: every list seen lately gives it to this one.
    pub fn owns(&self, rider: &RiderId) -> bool {
        !self.lists.is_empty() && self.lists.iter().all(|list| winner(list, rider) == Some(self.me.as_str()))
    }

    /// How many replicas the latest list holds.
    pub fn replicas(&self) -> usize {
        self.lists.last().map_or(0, Vec::len)
    }
}

/// The replica of `list` that owns `rider`: the highest score.
fn winner<'a>(list: &'a [String], rider: &RiderId) -> Option<&'a str> {
    list.iter().max_by_key(|replica| score(replica, rider)).map(String::as_str)
}

/// A replica's score for a rider: the first 64 bits of SHA-256 of both, the same in every
/// process and every version.
fn score(replica: &str, rider: &RiderId) -> u64 {
    let mut hash = Sha256::new();
    hash.update(replica.as_bytes());
    hash.update([0]);
    hash.update(rider.as_str().as_bytes());
    let digest = hash.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// A replica name from what the machine gives (`$HOSTNAME`, then the process id), with
/// every character a key-value key cannot hold made a `-`.
pub fn default_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "progress".into());
    let name = format!("{host}-{}", std::process::id());
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '-' }).collect()
}

/// Whether `name` can be a replica's name (a key-value key's last token).
///
/// # Errors
/// A name that is empty or holds anything but ASCII letters, digits, `-` and `_`.
pub fn parse_name(name: &str) -> Result<String, String> {
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        Ok(name.to_string())
    } else {
        Err(format!("{name:?}: a replica's name is ASCII letters, digits, '-' and '_'"))
    }
}

/// Where and how this replica takes part.
pub struct Settings {
    /// The key-value bucket every replica of one deployment shares.
    pub bucket: String,
    /// This replica's name, unique among the replicas.
    pub name: String,
    /// How long a replica's name stays listed after its last heartbeat.
    pub lease: Duration,
}

impl Settings {
    fn heartbeat(&self) -> Duration {
        self.lease / 5
    }

    fn settle(&self) -> Duration {
        self.heartbeat() * 2
    }
}

/// What this replica saw: each list of replicas with when it was first seen.
struct Seen {
    changes: Vec<(Instant, Vec<String>)>,
    since: Instant,
}

impl Seen {
    fn new(now: Instant) -> Seen {
        Seen { changes: Vec::new(), since: now }
    }

    /// Takes the list seen at `now`, and gives the lists in force within `settle` of it;
    /// none until this replica has watched for `settle`.
    fn offer(&mut self, now: Instant, list: Vec<String>, settle: Duration) -> Option<Vec<Vec<String>>> {
        if self.changes.last().is_none_or(|(_, last)| *last != list) {
            self.changes.push((now, list));
        }
        let cut = now.checked_sub(settle)?;
        if self.since > cut {
            return None;
        }
        // The last list seen before the cut was still in force at it.
        let first = self.changes.iter().rposition(|(at, _)| *at <= cut).unwrap_or(0);
        self.changes.drain(..first);
        Some(self.changes.iter().map(|(_, list)| list.clone()).collect())
    }
}

/// Takes part as `settings.name` until `stop`, and says which riders are this replica's:
/// `None` until it has watched the list for the settle time, then the owners after every
/// heartbeat. On `stop` the name is taken off the list, so the others take its riders at
/// once; the task ends when it is.
pub fn join(
    client: async_nats::Client,
    settings: Settings,
    mut stop: watch::Receiver<bool>,
) -> (watch::Receiver<Option<Arc<Owners>>>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = watch::channel(None);
    let task = tokio::spawn(async move {
        let js = jetstream::new(client);
        let Some(store) = open(&js, &settings, &mut stop).await else { return };
        let key = format!("{PREFIX}{}", settings.name);
        let mut seen = Seen::new(Instant::now());
        let mut tick = tokio::time::interval(settings.heartbeat());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stopped(&mut stop) => break,
            }
            let beat = tokio::time::timeout(settings.heartbeat(), beat(&store, &key, &settings.name))
                .await
                .unwrap_or_else(|_| Err(anyhow::anyhow!("no answer within {:?}", settings.heartbeat())));
            let owners = match beat {
                Ok(list) => seen.offer(Instant::now(), list, settings.settle()),
                Err(error) => {
                    tracing::warn!(
                        error = format!("{error:#}"),
                        "Cannot reach the replicas' bucket on NATS; this replica owns no rider until it can."
                    );
                    seen = Seen::new(Instant::now());
                    Some(Vec::new())
                }
            };
            let Some(lists) = owners else { continue };
            let owners = Owners::new(&settings.name, lists);
            m::replicas(owners.replicas());
            tx.send_if_modified(|current| {
                let changed = current.as_deref() != Some(&owners);
                if changed {
                    *current = Some(Arc::new(owners));
                }
                changed
            });
        }
        if let Err(error) = store.delete(&key).await {
            tracing::warn!(%error, "Cannot take this replica off the list; the others wait for its lease.");
        }
    });
    (rx, task)
}

/// Opens (or makes) the bucket, retrying until NATS answers or `stop`.
async fn open(
    js: &jetstream::Context,
    settings: &Settings,
    stop: &mut watch::Receiver<bool>,
) -> Option<kv::Store> {
    let mut delay = Duration::from_millis(200);
    loop {
        match make(js, settings).await {
            Ok(store) => return Some(store),
            Err(error) => tracing::warn!(
                error = format!("{error:#}"), bucket = %settings.bucket, retry_in = ?delay,
                "Cannot open the replicas' key-value bucket (is JetStream on? nats-server -js); retrying."
            ),
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = stopped(stop) => return None,
        }
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}

/// The bucket's stream made by hand, as a key-value bucket is made: async-nats's own
/// `create_key_value` first asks for the account's limits in a shape NATS 2.9 does not give.
async fn make(js: &jetstream::Context, settings: &Settings) -> anyhow::Result<kv::Store> {
    let config = jetstream::stream::Config {
        name: format!("KV_{}", settings.bucket),
        description: Some("velometry progress replicas (docs/progress.md, \"Replicas\")".into()),
        subjects: vec![format!("$KV.{}.>", settings.bucket)],
        max_messages_per_subject: 1,
        max_age: settings.lease,
        storage: jetstream::stream::StorageType::Memory,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: jetstream::stream::DiscardPolicy::New,
        ..Default::default()
    };
    let stream = js.get_or_create_stream(config.clone()).await?;
    if stream.cached_info().config.max_age != settings.lease {
        js.update_stream(&config).await?;
    }
    Ok(js.get_key_value(settings.bucket.clone()).await?)
}

/// Puts this replica's name, and lists every replica's.
async fn beat(store: &kv::Store, key: &str, name: &str) -> anyhow::Result<Vec<String>> {
    store.put(key, name.to_string().into()).await?;
    let mut list: Vec<String> = store
        .keys()
        .await?
        .try_filter_map(|k| async move { Ok(k.strip_prefix(PREFIX).map(str::to_string)) })
        .try_collect()
        .await?;
    list.sort();
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rider(id: &str) -> RiderId {
        RiderId::parse(id).expect("id")
    }

    fn list(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_string()).collect()
    }

    #[test]
    fn every_rider_has_exactly_one_owner_and_a_new_replica_moves_only_its_share() {
        let riders: Vec<RiderId> = (0..1_000).map(|i| rider(&format!("r{i}"))).collect();
        let two = list(&["a", "b"]);
        let three = list(&["a", "b", "c"]);
        let owner = |names: &[String], r: &RiderId| {
            let owning: Vec<&String> =
                names.iter().filter(|n| Owners::new(n, vec![names.to_vec()]).owns(r)).collect();
            assert_eq!(owning.len(), 1, "{r}: {owning:?}");
            owning[0].clone()
        };
        let mut moved = 0;
        let mut of_a = 0;
        for r in &riders {
            let before = owner(&two, r);
            let after = owner(&three, r);
            of_a += usize::from(before == "a");
            if before != after {
                assert_eq!(after, "c", "{r} moved from {before} to {after}, not to the new replica");
                moved += 1;
            }
        }
        assert!((400..600).contains(&of_a), "a has {of_a} of 1,000");
        assert!((250..420).contains(&moved), "{moved} of 1,000 moved to the third replica");
    }

    #[test]
    fn a_rider_is_taken_only_when_every_list_seen_lately_gives_it() {
        let r = (0..100).map(|i| rider(&format!("r{i}"))).find(|r| {
            Owners::new("a", vec![list(&["a"])]).owns(r) && !Owners::new("a", vec![list(&["a", "b"])]).owns(r)
        });
        let r = r.expect("a rider b takes from a");
        // b has just died: a saw both lists within the settle time, so it waits.
        assert!(!Owners::new("a", vec![list(&["a", "b"]), list(&["a"])]).owns(&r));
        assert!(Owners::new("a", vec![list(&["a"])]).owns(&r));
        assert!(!Owners::new("a", Vec::new()).owns(&r), "without NATS a replica owns nothing");
    }

    #[test]
    fn lists_are_in_force_for_the_settle_time_and_none_before_it() {
        let t0 = Instant::now();
        let s = Duration::from_secs(4);
        let mut seen = Seen::new(t0);
        assert_eq!(seen.offer(t0 + Duration::from_secs(2), list(&["a", "b"]), s), None);
        let ab = seen.offer(t0 + Duration::from_secs(4), list(&["a", "b"]), s);
        assert_eq!(ab, Some(vec![list(&["a", "b"])]));
        let both = seen.offer(t0 + Duration::from_secs(6), list(&["a"]), s);
        assert_eq!(both, Some(vec![list(&["a", "b"]), list(&["a"])]));
        let both = seen.offer(t0 + Duration::from_secs(9), list(&["a"]), s);
        assert_eq!(both, Some(vec![list(&["a", "b"]), list(&["a"])]), "b was in force 4 s ago");
        let a = seen.offer(t0 + Duration::from_secs(10), list(&["a"]), s);
        assert_eq!(a, Some(vec![list(&["a"])]));
    }

    #[test]
    fn a_replica_name_is_a_key_token() {
        assert!(parse_name("progress-7f9c").is_ok());
        assert!(parse_name("a.b").unwrap_err().contains("letters, digits"));
        assert!(parse_name("").is_err());
        assert!(parse_name(&default_name()).is_ok());
    }
}
