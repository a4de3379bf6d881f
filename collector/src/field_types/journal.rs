//! The field-type cache on disk: one JSON object per line, each the whole state of one
//! field (or the sink's version), the last one of a field winning. A request that claims
//! new fields appends them and syncs before its lines go into the WAL, so that no line in
//! the log is of a type the cache forgot; a refresh rewrites the file whole.
//!
//! Losing the file costs nothing but that guarantee until the next refresh: every failure
//! here is logged and the collector goes on.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use velometry_core::lineproto::parse::FieldType;

use super::{Entry, TypeSet};

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub(super) enum Record {
    /// A field's state; no types means forgotten.
    Entry {
        #[serde(rename = "m")]
        measurement: String,
        #[serde(rename = "f")]
        field: String,
        #[serde(rename = "t", with = "type_names")]
        types: TypeSet,
        #[serde(rename = "db")]
        in_db: bool,
        pending: u64,
    },
    /// The sink's `X-Influxdb-Version`.
    Version(String),
}

impl Record {
    pub(super) fn entry(measurement: &str, field: &str, entry: Entry) -> Record {
        Record::Entry {
            measurement: measurement.to_owned(),
            field: field.to_owned(),
            types: entry.types,
            in_db: entry.in_db,
            pending: entry.pending,
        }
    }
}

mod type_names {
    use super::{FieldType, TypeSet};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(types: &TypeSet, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(types.types().map(FieldType::name))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<TypeSet, D::Error> {
        let names = Vec::<String>::deserialize(d)?;
        Ok(names.iter().filter_map(|n| FieldType::from_name(n)).fold(TypeSet::default(), TypeSet::with))
    }
}

/// The open journal file.
pub(super) struct Journal {
    path: PathBuf,
    file: Mutex<Option<File>>,
}

impl Journal {
    /// Opens the journal at `path` and reads what it holds.
    pub(super) fn open(path: PathBuf) -> (Journal, Vec<Record>) {
        let mut records = Vec::new();
        match File::open(&path) {
            Ok(file) => {
                for (number, line) in BufReader::new(file).lines().enumerate() {
                    let parsed = line
                        .map_err(|e| e.to_string())
                        .and_then(|l| serde_json::from_str::<Record>(&l).map_err(|e| e.to_string()));
                    match parsed {
                        Ok(record) => records.push(record),
                        // A torn last line after a crash: what it said is relearned.
                        Err(error) => {
                            tracing::warn!(path = %path.display(), line = number + 1, %error, "Skipping a line of the field-type journal.")
                        }
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "Cannot read the field-type journal; types are relearned from the database.")
            }
        }
        (Journal { path, file: Mutex::new(None) }, records)
    }

    /// Appends records and syncs them.
    pub(super) fn append(&self, records: &[Record]) {
        let mut slot = self.file.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let result = (|| {
            if slot.is_none() {
                *slot = Some(OpenOptions::new().create(true).append(true).open(&self.path)?);
            }
            let Some(file) = slot.as_mut() else { return Ok(()) };
            file.write_all(&lines(records)?)?;
            file.sync_data()
        })();
        if let Err(error) = result {
            *slot = None;
            tracing::warn!(path = %self.path.display(), %error, "Cannot write the field-type journal.");
        }
    }

    /// Replaces the whole journal with `records`.
    pub(super) fn rewrite(&self, records: &[Record]) {
        let mut slot = self.file.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let tmp = self.path.with_extension("jsonl.tmp");
        let result = (|| {
            let mut file = File::create(&tmp)?;
            file.write_all(&lines(records)?)?;
            file.sync_data()?;
            std::fs::rename(&tmp, &self.path)
        })();
        // The next append opens the new file.
        *slot = None;
        if let Err(error) = result {
            tracing::warn!(path = %self.path.display(), %error, "Cannot rewrite the field-type journal.");
        }
    }
}

fn lines(records: &[Record]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    for record in records {
        serde_json::to_writer(&mut out, record)?;
        out.push(b'\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_is_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("field-types.jsonl");
        let (journal, none) = Journal::open(path.clone());
        assert!(none.is_empty());
        let entry =
            Entry { types: TypeSet::of(FieldType::Integer).with(FieldType::Float), in_db: true, pending: 7 };
        let records = vec![Record::Version("1.6.7".into()), Record::entry("cpu", "usage", entry)];
        journal.append(&records[..1]);
        journal.append(&records[1..]);
        assert_eq!(Journal::open(path.clone()).1, records);
        journal.rewrite(&records[1..]);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(b"{\"m\":"))
            .expect("torn");
        assert_eq!(Journal::open(path).1, records[1..], "a torn line is skipped");
    }
}
