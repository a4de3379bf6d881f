//! The riders file in force, and changing it without a restart: adding a rider, a device
//! token or an event in the middle of a race takes effect within seconds in every service.
//!
//! A service holds a [`SharedRegistry`] and asks it for the [`Registry`] in force at each
//! use ([`SharedRegistry::current`], a read lock and a reference count: nothing on any hot
//! path notices it). [`watch`] swaps in a new one when the riders file or one of its course
//! files changes, or on SIGHUP. A change that cannot be used — TOML that does not parse, an
//! event whose course is missing, a viewer naming an unknown rider — keeps the running
//! configuration, says what is wrong in the log (ERROR), and is reported to the service,
//! which counts it on its metrics.
//!
//! The files are polled (every second by default) rather than watched with inotify (the
//! `notify` crate): editors save by writing a new file and renaming it over the old one,
//! and Kubernetes updates a mounted ConfigMap by swapping a symlink to a new folder, and an
//! inotify watch on the file sees neither; watching folders instead differs across
//! platforms and misses changes on network and overlay filesystems. Polling a few files
//! once a second sees every one of these, costs nothing measurable, and is the same
//! everywhere. What is polled: the riders file's content (a SHA-256 of it: a same-size
//! rewrite within one timestamp tick is still seen), and the size, modification time and
//! inode of each course file it names. A change is applied once it has stayed the same for
//! one poll, so that a file caught half-written is not reported as broken; and a change that
//! failed is not tried again until the files change again (or SIGHUP asks).

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use tokio::sync::watch as flag;

use super::{Registry, RidersError};
use crate::shutdown::stopped;

/// The default interval between two looks at the riders file and its course files.
pub const DEFAULT_POLL: Duration = Duration::from_secs(1);

/// The riders file in force in a service, shared by every task that needs it.
#[derive(Debug, Clone)]
pub struct SharedRegistry {
    path: Option<PathBuf>,
    current: Arc<RwLock<Arc<Registry>>>,
    loaded: Arc<RwLock<Fingerprint>>,
}

impl SharedRegistry {
    /// Reads the riders file (and its course files).
    ///
    /// # Errors
    /// As [`Registry::load`].
    pub fn load(path: &Path) -> Result<SharedRegistry, RidersError> {
        // Before the read: a change made during it is then seen at the first poll.
        let fingerprint = Fingerprint::of(path);
        let registry = Registry::load(path)?;
        Ok(SharedRegistry {
            path: Some(path.to_owned()),
            current: Arc::new(RwLock::new(Arc::new(registry))),
            loaded: Arc::new(RwLock::new(fingerprint)),
        })
    }

    /// A registry that no file backs (tests and benchmarks): [`watch`] has nothing to do.
    pub fn fixed(registry: Registry) -> SharedRegistry {
        SharedRegistry {
            path: None,
            current: Arc::new(RwLock::new(Arc::new(registry))),
            loaded: Arc::new(RwLock::new(Fingerprint::default())),
        }
    }

    /// The riders file in force now. Hold it for one request or one message, not longer:
    /// a reload swaps in a new one.
    pub fn current(&self) -> Arc<Registry> {
        // A poisoned lock held a whole `Arc` before and after any panic: the value is sound.
        self.current.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The riders file, if one backs this registry.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Reads the riders file again and, if it can be used, puts it in force.
    ///
    /// # Errors
    /// As [`Registry::load`]; the registry in force stays.
    pub fn reload(&self) -> Result<Arc<Registry>, RidersError> {
        let Some(path) = &self.path else { return Ok(self.current()) };
        let fingerprint = Fingerprint::of(path);
        let result = Registry::load(path).map(Arc::new);
        *self.loaded.write().unwrap_or_else(PoisonError::into_inner) = fingerprint;
        let registry = result?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = registry.clone();
        Ok(registry)
    }
}

/// What [`watch`] tells the service, for its metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reload {
    /// The watch started, with the configuration loaded at start-up in force.
    Started,
    /// A changed configuration is in force.
    Reloaded,
    /// A changed configuration could not be used; the previous one stays in force.
    Failed,
}

/// Watches the riders file behind `shared` and its course files every `every`, and on
/// SIGHUP, until `stop`; puts each usable change in force and tells `report` what happened
/// ([`Reload::Started`] first, once). Returns at once for a registry no file backs.
pub async fn watch(
    shared: SharedRegistry,
    every: Duration,
    report: impl Fn(Reload) + Send + 'static,
    mut stop: flag::Receiver<bool>,
) {
    let Some(path) = shared.path.clone() else { return };
    report(Reload::Started);
    let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(signal) => Some(signal),
        Err(error) => {
            tracing::warn!(%error, "Cannot listen for SIGHUP; the riders file is still polled for changes.");
            None
        }
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen = shared.loaded.read().unwrap_or_else(PoisonError::into_inner).clone();
    loop {
        let asked = tokio::select! {
            _ = tick.tick() => false,
            Some(()) = async { match hangup.as_mut() { Some(s) => s.recv().await, None => std::future::pending().await } } => true,
            _ = stopped(&mut stop) => return,
        };
        let probe = path.clone();
        let Ok(now) = tokio::task::spawn_blocking(move || Fingerprint::of(&probe)).await else { continue };
        let applied = shared.loaded.read().unwrap_or_else(PoisonError::into_inner).clone();
        // A change is applied once two polls agree on it: a file caught half-written would
        // otherwise be reported as broken.
        let settled = now != applied && now == seen;
        seen = now;
        if !(asked || settled) {
            continue;
        }
        let before = shared.current();
        let target = shared.clone();
        let result = match tokio::task::spawn_blocking(move || target.reload()).await {
            Ok(result) => result,
            Err(e) => {
                tracing::error!(error = %e, "Reloading the riders file failed.");
                report(Reload::Failed);
                continue;
            }
        };
        match result {
            Ok(after) => {
                log_change(&path, &before, &after, asked);
                report(Reload::Reloaded);
            }
            Err(error) => {
                tracing::error!(riders = %path.display(), %error,
                    "The riders file changed but cannot be used; the configuration in force stays until the file is fixed.");
                report(Reload::Failed);
            }
        }
    }
}

fn log_change(path: &Path, before: &Registry, after: &Registry, asked: bool) {
    let ids = |r: &Registry| r.riders().iter().map(|r| r.id.to_string()).collect::<Vec<_>>();
    let (old, new) = (ids(before), ids(after));
    let added: Vec<&String> = new.iter().filter(|id| !old.contains(id)).collect();
    let removed: Vec<&String> = old.iter().filter(|id| !new.contains(id)).collect();
    tracing::info!(riders_file = %path.display(), riders = new.len(), devices = after.device_count(),
        events = after.events().len(), ?added, ?removed, on = if asked { "SIGHUP" } else { "change" },
        "Riders file reloaded.");
}

/// What the riders file and its course files look like now, to tell a change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Fingerprint {
    /// The SHA-256 of the riders file, or why it cannot be read.
    riders: Option<[u8; 32]>,
    /// Each course file the riders file names, with its stamp (none when it is missing).
    courses: Vec<(PathBuf, Option<Stamp>)>,
}

/// A file's size, modification time and inode: a rewrite changes the first two, a rename
/// over it (an editor's save, a ConfigMap's symlink swap) the third.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

impl Fingerprint {
    fn of(path: &Path) -> Fingerprint {
        let Ok(text) = std::fs::read(path) else { return Fingerprint::default() };
        let dir = path.parent().unwrap_or(Path::new("."));
        let courses = course_paths(&text)
            .into_iter()
            .map(|course| {
                let course = dir.join(course);
                let stamp = std::fs::metadata(&course).ok().map(|m| {
                    use std::os::unix::fs::MetadataExt;
                    Stamp { len: m.len(), modified: m.modified().ok(), inode: m.ino() }
                });
                (course, stamp)
            })
            .collect();
        Fingerprint { riders: Some(Sha256::digest(&text).into()), courses }
    }
}

/// The `course` of every `[[event]]` of a riders file's text, as far as it parses: also for a
/// file that is not valid, so that adding the missing course file is seen as a change.
fn course_paths(text: &[u8]) -> Vec<String> {
    let Some(table) = std::str::from_utf8(text).ok().and_then(|t| t.parse::<toml::Table>().ok()) else {
        return Vec::new();
    };
    let events = table.get("event").and_then(toml::Value::as_array).map(Vec::as_slice).unwrap_or_default();
    events.iter().filter_map(|e| e.get("course")?.as_str().map(str::to_owned)).collect()
}

#[cfg(test)]
mod tests {
    use tokio::sync::mpsc;

    use super::*;

    /// The suite's patience (`testkit::PATIENCE`, which this crate's unit tests cannot see).
    const PATIENCE: Duration = Duration::from_secs(120);

    fn rider(id: &str) -> String {
        format!("[[rider]]\nid = \"{id}\"\n")
    }

    /// The next report, within the suite's patience.
    async fn next(reports: &mut mpsc::UnboundedReceiver<Reload>, what: &str) -> Reload {
        match tokio::time::timeout(PATIENCE, reports.recv()).await {
            Ok(Some(report)) => report,
            _ => panic!("waited {} s for {what}", PATIENCE.as_secs()),
        }
    }

    #[tokio::test]
    async fn a_change_is_put_in_force_and_a_broken_one_keeps_what_runs() {
        let dir = std::env::temp_dir().join(format!("velometry-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a folder");
        let path = dir.join("riders.toml");
        std::fs::write(&path, rider("alice")).expect("written");
        let shared = SharedRegistry::load(&path).expect("valid");
        let (tx, mut reports) = mpsc::unbounded_channel();
        let (stop_tx, stop) = flag::channel(false);
        let watcher = tokio::spawn(watch(
            shared.clone(),
            Duration::from_millis(20),
            move |r| tx.send(r).expect("open"),
            stop,
        ));
        assert_eq!(next(&mut reports, "the watch to start").await, Reload::Started);

        std::fs::write(&path, rider("alice") + &rider("bob")).expect("written");
        assert_eq!(next(&mut reports, "bob's riders file to be read").await, Reload::Reloaded);
        assert_eq!(shared.current().riders().len(), 2);

        std::fs::write(&path, "[[rider]]\nid = \"Bad Id\"\n").expect("written");
        assert_eq!(next(&mut reports, "the broken file to be refused").await, Reload::Failed);
        assert_eq!(shared.current().riders().len(), 2, "the running configuration stays");

        // An event whose course is missing, then the course file appears.
        let event = "[[event]]\nid = \"e\"\ncourse = \"course.gpx\"\nstart = \"2026-07-26T22:00:00Z\"\nriders = [\"alice\"]\n";
        std::fs::write(&path, rider("alice") + event).expect("written");
        assert_eq!(next(&mut reports, "the missing course to be refused").await, Reload::Failed);
        let course = crate::course::Course::new([(45.0, 7.0, None), (45.1, 7.0, None)]).expect("a course");
        std::fs::write(dir.join("course.gpx"), crate::course::files::to_gpx("c", &course, &[]).expect("GPX"))
            .expect("written");
        assert_eq!(next(&mut reports, "the course file to be seen").await, Reload::Reloaded);
        assert_eq!(shared.current().events().len(), 1);
        assert_eq!(shared.current().riders().len(), 1);

        // Nothing changes: nothing is reported.
        let quiet = tokio::time::timeout(Duration::from_millis(200), reports.recv()).await;
        assert!(quiet.is_err(), "{quiet:?}");
        stop_tx.send(true).expect("the watcher listens");
        watcher.await.expect("the watcher ends");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn course_paths_are_found_in_a_file_that_is_not_valid() {
        let text = b"[[event]]\nid = \"BAD\"\ncourse = \"a.gpx\"\n[[event]]\ncourse = \"b.fit\"\n";
        assert_eq!(course_paths(text), ["a.gpx", "b.fit"]);
        assert!(course_paths(b"not = [toml").is_empty());
    }
}
