//! The field types the database holds, so that ingest refuses a line InfluxDB would refuse
//! with a field type conflict, with InfluxDB's message, instead of acknowledging it and
//! leaving the sink to dead-letter it.
//!
//! A field keeps one type (or, where the database already holds it under several, any of
//! those). InfluxDB 1.x and 2.x fix a type per shard (a week), InfluxDB 3 and QuestDB per
//! table: keeping it over all time is what every sink accepts, and stricter than 1.x only
//! for a field that changes type from one week to the next.
//!
//! Types are learned three ways: from the database (`SHOW FIELD KEYS`, at start-up and
//! every `--field-types-refresh`, see [`learn`]), from the lines ingest accepts, and from
//! the lines InfluxDB would refuse yet create fields for (a line holding one field twice
//! with two types: InfluxDB creates the first before it finds the conflict). What was
//! learned from lines is kept in a journal beside the WAL ([`journal`]), so that a restart
//! does not forget the types of lines still waiting in the log. A refresh makes the
//! database's answer the truth: a field it no longer lists (a dropped database or
//! measurement, expired shards) is forgotten once every line that claimed it is stored.
//!
//! Requests check against a snapshot, holding no lock while they parse; only a request
//! that brings fields never seen takes the lock to claim them, and parses again if another
//! request claimed one of them with another type meanwhile.

mod journal;
pub mod learn;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use velometry_core::lineproto::parse::{Field, FieldType};
use velometry_core::reading::Metric;

/// A set of field types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TypeSet(u8);

impl TypeSet {
    /// The set holding only `t`.
    pub fn of(t: FieldType) -> TypeSet {
        TypeSet(1 << t as u8)
    }

    /// The set with `t` added.
    #[must_use]
    pub fn with(self, t: FieldType) -> TypeSet {
        TypeSet(self.0 | TypeSet::of(t).0)
    }

    /// Whether `t` is in the set.
    pub fn contains(self, t: FieldType) -> bool {
        self.0 & TypeSet::of(t).0 != 0
    }

    /// The types, in [`FieldType::ALL`]'s order.
    pub fn types(self) -> impl Iterator<Item = FieldType> {
        FieldType::ALL.into_iter().filter(move |t| self.contains(*t))
    }

    fn first(self) -> FieldType {
        self.types().next().unwrap_or(FieldType::Float)
    }
}

/// A line InfluxDB would refuse: one of its fields exists with another type.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("field type conflict: input field \"{field}\" on measurement \"{measurement}\" is type {input}, already exists as type {existing}")]
pub struct Conflict {
    /// The field.
    pub field: String,
    /// Its measurement.
    pub measurement: String,
    /// The type of the line's value.
    pub input: FieldType,
    /// The type the field has.
    pub existing: FieldType,
}

type Fields = HashMap<Box<str>, TypeSet>;

/// What a request checks against: the types known when it began.
#[derive(Debug, Default)]
struct Snapshot {
    measurements: HashMap<Box<str>, Fields>,
    /// Per known measurement, a bit per field (in [`Metric::fields`] order) whose type in
    /// the database is not float: ingest writes known fields as floats only.
    known_blocked: Vec<u8>,
    /// Whether the sink takes unsigned integers; `None` until its version is known.
    unsigned: Option<bool>,
    version: u64,
}

impl Snapshot {
    fn get(&self, measurement: &str, field: &str) -> Option<TypeSet> {
        self.measurements.get(measurement)?.get(field).copied()
    }
}

/// What one entry of the cache knows of a field.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Entry {
    types: TypeSet,
    /// Listed by the database at the last refresh.
    in_db: bool,
    /// The WAL position up to which lines that claimed the field may still be unstored:
    /// 0 for none, `u64::MAX` until their append returns.
    pending: u64,
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<Box<str>, HashMap<Box<str>, Entry>>,
    version_text: Option<String>,
    snapshot: Arc<Snapshot>,
}

/// The field types of the sink's database; shared by every request and the refresh task.
pub struct FieldTypes {
    state: Mutex<State>,
    journal: Option<journal::Journal>,
    /// Whether QuestDB is a second sink, whose names and integers are narrower.
    questdb: bool,
}

/// The fields a request claimed, to be told where its lines went in the WAL.
#[derive(Debug, Default)]
pub struct Claimed(Vec<(Box<str>, Box<str>)>);

impl FieldTypes {
    /// An empty cache that keeps nothing on disk (tests, benchmarks).
    pub fn in_memory() -> FieldTypes {
        FieldTypes { state: Mutex::new(State::default()), journal: None, questdb: false }
    }

    /// The cache kept in `path`, as it was left; `committed` is the WAL's end, which every
    /// line claimed before a crash lies below. With `questdb`, lines are checked for the
    /// second sink too.
    pub fn open(path: PathBuf, committed: u64, questdb: bool) -> FieldTypes {
        let (journal, loaded) = journal::Journal::open(path);
        let mut state = State::default();
        for record in loaded {
            match record {
                journal::Record::Version(v) => state.version_text = Some(v),
                journal::Record::Entry { measurement, field, types, in_db, pending } => {
                    let fields = state.entries.entry(measurement.into()).or_default();
                    if types == TypeSet::default() {
                        fields.remove(field.as_str());
                    } else {
                        let pending = if pending == u64::MAX { committed } else { pending };
                        fields.insert(field.into(), Entry { types, in_db, pending });
                    }
                }
            }
        }
        state.entries.retain(|_, fields| !fields.is_empty());
        state.rebuild();
        FieldTypes { state: Mutex::new(state), journal: Some(journal), questdb }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves a consistent map: each change is one insert.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A checker against the types known now.
    pub fn checker(&self) -> Checker {
        Checker { snapshot: self.lock().snapshot.clone(), claims: HashMap::new(), questdb: self.questdb }
    }

    /// Runs `run` (a request's parse) against the types known now and keeps the types it
    /// claims. When another request claimed one of them with another type meanwhile, runs
    /// it again holding the lock, so that the second of two requests with the same new
    /// field is checked against the first.
    pub fn check<T>(&self, mut run: impl FnMut(&mut Checker) -> T) -> (T, Claimed) {
        let mut checker = self.checker();
        let out = run(&mut checker);
        if checker.claims.is_empty() {
            return (out, Claimed::default());
        }
        let mut state = self.lock();
        if checker.snapshot.version == state.snapshot.version || state.compatible(&checker) {
            let claimed = self.claim(&mut state, checker);
            return (out, claimed);
        }
        let mut checker =
            Checker { snapshot: state.snapshot.clone(), claims: HashMap::new(), questdb: self.questdb };
        let out = run(&mut checker);
        let claimed = self.claim(&mut state, checker);
        (out, claimed)
    }

    fn claim(&self, state: &mut State, checker: Checker) -> Claimed {
        let mut claimed = Vec::new();
        let mut records = Vec::new();
        for (measurement, fields) in checker.claims {
            let known = state.entries.entry(measurement.clone()).or_default();
            for (field, t) in fields {
                let entry = known.entry(field.clone()).or_insert(Entry {
                    types: TypeSet::default(),
                    in_db: false,
                    pending: 0,
                });
                entry.types = entry.types.with(t);
                entry.pending = u64::MAX;
                records.push(journal::Record::entry(&measurement, &field, *entry));
                claimed.push((measurement.clone(), field));
            }
        }
        state.rebuild();
        if let Some(journal) = &self.journal {
            journal.append(&records);
        }
        Claimed(claimed)
    }

    /// Notes that the lines of a request that claimed fields lie below `lsn` in the WAL
    /// (or were never appended: then `lsn` is the WAL's end all the same).
    pub fn written(&self, claimed: Claimed, lsn: u64) {
        if claimed.0.is_empty() {
            return;
        }
        let mut state = self.lock();
        for (measurement, field) in claimed.0 {
            if let Some(entry) = state.entries.get_mut(&measurement).and_then(|f| f.get_mut(&field)) {
                // Another request may have claimed the field since, and appended since.
                entry.pending = if entry.pending == u64::MAX { lsn } else { entry.pending.max(lsn) };
            }
        }
    }

    /// Makes the database's answer the truth: its types replace what was known of the
    /// fields it lists; a field it does not list is kept only while lines that claimed it
    /// may be unstored (their WAL position past `stored`, what every sink had stored when
    /// the question was asked). `version` is the server's, when it answered `/ping`.
    pub fn refreshed(
        &self,
        answer: HashMap<String, HashMap<String, TypeSet>>,
        stored: u64,
        version: Option<String>,
    ) {
        let mut state = self.lock();
        let mut changed = false;
        for (measurement, fields) in &mut state.entries {
            let listed = answer.get(measurement.as_ref());
            fields.retain(|field, entry| {
                let before = *entry;
                let keep = match listed.and_then(|l| l.get(field.as_ref())) {
                    Some(types) => {
                        (entry.types, entry.in_db) = (*types, true);
                        true
                    }
                    None => {
                        entry.in_db = false;
                        entry.pending > stored
                    }
                };
                changed |= !keep || *entry != before;
                keep
            });
        }
        for (measurement, fields) in answer {
            let known = state.entries.entry(measurement.into()).or_default();
            for (field, types) in fields {
                known.entry(field.into()).or_insert_with(|| {
                    changed = true;
                    Entry { types, in_db: true, pending: 0 }
                });
            }
        }
        state.entries.retain(|_, fields| !fields.is_empty());
        if version.is_some() && version != state.version_text {
            state.version_text = version;
            changed = true;
        }
        // Most answers change nothing: then nothing is rebuilt or written.
        if !changed {
            return;
        }
        state.rebuild();
        if let Some(journal) = &self.journal {
            let mut records: Vec<journal::Record> =
                state.version_text.iter().cloned().map(journal::Record::Version).collect();
            for (measurement, fields) in &state.entries {
                records
                    .extend(fields.iter().map(|(field, e)| journal::Record::entry(measurement, field, *e)));
            }
            journal.rewrite(&records);
        }
    }

    /// The types known of `measurement`, for tests and logs.
    pub fn of(&self, measurement: &str) -> Vec<(String, TypeSet)> {
        let state = self.lock();
        let mut fields: Vec<(String, TypeSet)> = state
            .entries
            .get(measurement)
            .map(|f| f.iter().map(|(k, e)| (k.to_string(), e.types)).collect())
            .unwrap_or_default();
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        fields
    }
}

impl State {
    /// Whether a checker's claims still hold against what is known now.
    fn compatible(&self, checker: &Checker) -> bool {
        checker.claims.iter().all(|(measurement, fields)| {
            fields.iter().all(|(field, t)| {
                self.snapshot.get(measurement, field).is_none_or(|types| types.contains(*t))
            })
        })
    }

    fn rebuild(&mut self) {
        let measurements: HashMap<Box<str>, Fields> = self
            .entries
            .iter()
            .map(|(m, fields)| (m.clone(), fields.iter().map(|(f, e)| (f.clone(), e.types)).collect()))
            .collect();
        let known_blocked = Metric::ALL
            .iter()
            .map(|metric| {
                metric.fields().iter().enumerate().fold(0u8, |bits, (i, spec)| {
                    let types = measurements.get(metric.name()).and_then(|f| f.get(spec.name));
                    match types {
                        Some(types) if !types.contains(FieldType::Float) => bits | 1 << i,
                        _ => bits,
                    }
                })
            })
            .collect();
        let unsigned = self.version_text.as_deref().map(learn::takes_unsigned);
        let version = self.snapshot.version + 1;
        self.snapshot = Arc::new(Snapshot { measurements, known_blocked, unsigned, version });
    }
}

/// One request's view of the types: the snapshot it began with and the fields it claims.
#[derive(Debug)]
pub struct Checker {
    snapshot: Arc<Snapshot>,
    claims: HashMap<Box<str>, HashMap<Box<str>, FieldType>>,
    questdb: bool,
}

impl Checker {
    /// Whether QuestDB is a second sink, so that a line must suit it too.
    pub fn questdb(&self) -> bool {
        self.questdb
    }

    /// Whether `1u` is a number for the sink: InfluxDB 2 and later, not 1.x, and not until
    /// the version is known.
    pub fn unsigned(&self) -> bool {
        self.snapshot.unsigned.unwrap_or(false)
    }

    /// Whether the database holds any field of `metric` with a type other than float: when
    /// not, there is nothing to check field by field (the common case).
    pub fn known_blocked(&self, metric: Metric) -> bool {
        self.snapshot.known_blocked.get(metric as usize).is_some_and(|bits| *bits != 0)
    }

    /// Checks field `index` of a known measurement, which ingest writes as a float.
    ///
    /// # Errors
    /// [`Conflict`] when the database holds it with another type.
    pub fn known(&self, metric: Metric, index: usize) -> Result<(), Conflict> {
        let blocked = self.snapshot.known_blocked.get(metric as usize).copied().unwrap_or(0);
        if blocked & (1 << index) == 0 {
            return Ok(());
        }
        let field = metric.fields().get(index).map_or("", |f| f.name);
        let existing = self.snapshot.get(metric.name(), field).map_or(FieldType::Integer, TypeSet::first);
        Err(Conflict {
            field: field.to_owned(),
            measurement: metric.name().to_owned(),
            input: FieldType::Float,
            existing,
        })
    }

    fn existing(&self, measurement: &str, field: &str) -> Option<TypeSet> {
        if let Some(t) = self.claims.get(measurement).and_then(|f| f.get(field)) {
            return Some(TypeSet::of(*t));
        }
        self.snapshot.get(measurement, field)
    }

    /// Checks the fields of a line of `measurement` as InfluxDB does: every field that
    /// exists must keep its type; then the new ones are created in order, and one that
    /// comes twice with two types is a conflict, after the fields before it are created.
    /// Fields named `time` are skipped (InfluxDB drops them).
    ///
    /// # Errors
    /// The first [`Conflict`].
    pub fn line(&mut self, measurement: &str, fields: &[Field<'_>]) -> Result<(), Conflict> {
        let conflict = |field: &str, input, existing| Conflict {
            field: field.to_owned(),
            measurement: measurement.to_owned(),
            input,
            existing,
        };
        let fields = || fields.iter().filter(|f| f.key != "time");
        for f in fields() {
            let t = f.value.field_type();
            if let Some(types) = self.existing(measurement, &f.key) {
                if !types.contains(t) {
                    return Err(conflict(&f.key, t, types.first()));
                }
            }
        }
        let mut created: Vec<(&str, FieldType)> = Vec::new();
        let mut result = Ok(());
        for f in fields() {
            let t = f.value.field_type();
            if self.existing(measurement, &f.key).is_some() {
                continue;
            }
            match created.iter().find(|(k, _)| *k == f.key) {
                Some((_, first)) if *first != t => {
                    result = Err(conflict(&f.key, t, *first));
                    break;
                }
                Some(_) => {}
                None => created.push((&f.key, t)),
            }
        }
        if !created.is_empty() {
            let claims = self.claims.entry(measurement.into()).or_default();
            for (field, t) in created {
                claims.insert(field.into(), t);
            }
        }
        result
    }
}

#[cfg(test)]
mod tests;
