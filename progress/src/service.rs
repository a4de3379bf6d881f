//! The progress service: runs the engine on the live readings of every entrant of every
//! event of the riders file, and writes what it finds back through the collector as derived
//! readings (docs/progress.md, docs/schema.md "Derived readings").
//!
//! ```text
//!  NATS velometry.live.* ──▶ live ─┐                       ┌─▶ writer ──▶ collector
//!                                  ├─▶ runner: per event,  │   POST /v1/events/{e}/riders/{r}/derived
//!  InfluxDB (gps, event_status, ──▶┘   per entrant, the    │   (durable, then InfluxDB)
//!   velometry_late) ◀─ history ──────  engine's state ─────┘
//! ```
//!
//! The service keeps no results of its own: its state per rider is a cache of what the
//! history in InfluxDB gives, and everything it finds is a reading written by the
//! collector. At start it reads each entrant's history from their start and writes what
//! is newer than the last `course_progress` already stored; so a restart, a crash, or a
//! second replica converge on the same readings (a point is identified by its time, so a
//! reading written twice is one point).
//!
//! Three ways a fix reaches it: live on NATS (within `--live-max-age` of the collector);
//! through the collector's `velometry_late` markers (readings that arrived late: a phone
//! syncing after a valley, a ride file imported), which make the rider's progress be
//! recomputed from a snapshot before them; and a sync every `--sync-every`, which reads the
//! last `--sync-window` of every entrant's fixes from InfluxDB and takes any that live
//! delivery missed (NATS down, a slow consumer). Organisers' `event_status` readings
//! (scratched, reinstated) are read on the same sync.
//!
//! Replicas share the entrants: each lists itself in a NATS key-value bucket and follows the
//! riders the list gives it, and a replica that dies leaves its riders to the others when
//! its lease runs out ([`members`]).

pub mod app;
pub mod cli;
pub mod derived;
pub mod history;
pub mod live;
pub mod members;
pub mod metrics;
pub mod recompute;
pub mod runner;
pub mod writer;
