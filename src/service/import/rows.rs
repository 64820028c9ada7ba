//! The reading loop of an import in bounded memory: rows stream from the file through the
//! validator to a visitor one record at a time, and no list of records is kept. What must be
//! remembered across the whole file — which record keys were seen, for duplicates and for a
//! replace-term's removals — is kept as [`Seen`]: 16 bytes a record, not the record.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};

use super::mapping::ColumnMap;
use super::plan::{ImportError, Progress};
use super::table::TableReader;
use super::validate::{shift_columns, Sheet, Validated, Validator};

/// Fingerprints of record keys, each with the row it was first seen on. A fingerprint is two
/// keyed hashes (64 + 32 bits, keys random per import), so two different keys share one with
/// odds of about n²/2⁹⁷ — below 10⁻¹⁷ for a million rows — and no file can be made to collide.
pub struct Seen {
    a: RandomState,
    b: RandomState,
    /// First hash → (row, second hash).
    rows: HashMap<u64, (u32, u32)>,
    /// Keys whose first hash another key took first (about one per 10¹³ pairs): their
    /// fingerprint and row, searched in full.
    more: Vec<(Fingerprint, u32)>,
}

/// A key's fingerprint (see [`Seen`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint(u64, u32);

impl Seen {
    /// Room for about `rows` keys (an estimate; the map grows past it if needed).
    pub fn with_capacity(rows: usize) -> Seen {
        Seen {
            a: RandomState::new(),
            b: RandomState::new(),
            rows: HashMap::with_capacity(rows),
            more: Vec::new(),
        }
    }

    pub fn fingerprint(&self, key: &impl Hash) -> Fingerprint {
        Fingerprint(self.a.hash_one(key), self.b.hash_one(key) as u32)
    }

    /// Remember `fp` as seen on row `line`; when it was seen before, the earlier row instead.
    pub fn insert(&mut self, fp: Fingerprint, line: usize) -> Option<usize> {
        let line = u32::try_from(line).unwrap_or(u32::MAX);
        match self.rows.get(&fp.0) {
            Some(&(earlier, check)) if check == fp.1 => Some(earlier as usize),
            Some(_) => match self.more.iter().find(|(f, _)| *f == fp) {
                Some(&(_, earlier)) => Some(earlier as usize),
                None => {
                    self.more.push((fp, line));
                    None
                }
            },
            None => {
                self.rows.insert(fp.0, (line, fp.1));
                None
            }
        }
    }

    pub fn contains(&self, fp: Fingerprint) -> bool {
        match self.rows.get(&fp.0) {
            Some(&(_, check)) if check == fp.1 => true,
            Some(_) => self.more.iter().any(|(f, _)| *f == fp),
            None => false,
        }
    }

    pub fn len(&self) -> usize {
        self.rows.len() + self.more.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// About how many rows a file holds, to size [`Seen`] once: its line breaks, for a text file;
/// nothing for a zipped or binary one (the map then grows as it goes). Never more than one
/// per 16 bytes, whatever the file claims.
pub fn estimate_rows(bytes: &[u8]) -> usize {
    if bytes.starts_with(b"PK") || bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]) {
        return 0;
    }
    memchr::memchr_iter(b'\n', bytes)
        .count()
        .min(bytes.len() / 16)
}

/// Stream every row of `reader` through the validator and hand each good record to `visit`,
/// in file order. With `seen`, a record whose key repeats an earlier record's is an error
/// (naming the earlier row) and is not visited. The first error `visit` returns stops the
/// reading and is returned. The result carries the errors and counts; its records are empty.
pub fn each_record<S: Sheet>(
    reader: &mut TableReader<'_>,
    map: Option<&ColumnMap>,
    mut seen: Option<&mut Seen>,
    progress: &Progress,
    mut visit: impl FnMut(usize, S::Record) -> Result<(), ImportError>,
) -> Result<Validated<S::Record>, ImportError> {
    let mut v = match map {
        Some(m) => Validator::<S>::mapped(reader.headers(), reader.header_line(), m),
        None => Validator::<S>::new(reader.headers(), reader.header_line()),
    };
    let mut failed: Option<ImportError> = None;
    let mut rows = 0usize;
    let mut held: Vec<(usize, S::Record)> = Vec::new();
    reader
        .for_each_row(|row| {
            if failed.is_some() {
                return;
            }
            v.push(row);
            rows += 1;
            progress.tick(rows);
            held.extend(v.drain());
            for (line, r) in held.drain(..) {
                if let Some(seen) = seen.as_deref_mut() {
                    let fp = seen.fingerprint(&S::key(&r));
                    if let Some(earlier) = seen.insert(fp, line) {
                        v.duplicate_of(line, &r, earlier);
                        continue;
                    }
                }
                if let Err(e) = visit(line, r) {
                    failed = Some(e);
                    return;
                }
            }
        })
        .map_err(ImportError::File)?;
    if let Some(e) = failed {
        return Err(e);
    }
    let mut out = v.finish();
    shift_columns(&mut out.errors, reader.first_column());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_reports_the_first_row_and_knows_what_it_holds() {
        let mut s = Seen::with_capacity(4);
        let a = s.fingerprint(&("2021001", "MA1001"));
        let b = s.fingerprint(&("2021001", "MA1002"));
        assert_eq!(s.insert(a, 2), None);
        assert_eq!(s.insert(b, 3), None);
        assert_eq!(s.insert(a, 9), Some(2));
        assert!(s.contains(a) && s.contains(b));
        assert!(!s.contains(s.fingerprint(&("2021002", "MA1001"))));
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn row_estimate_counts_lines_and_is_bounded() {
        assert_eq!(estimate_rows(b"a,b\n1,2\n3,4\n"), 0);
        let text = "学号,学期,课程代码,成绩\n".repeat(10);
        assert_eq!(estimate_rows(text.as_bytes()), 10);
        assert_eq!(estimate_rows(&[b'\n'; 64]), 4);
        assert_eq!(
            estimate_rows(b"PK\x03\x04\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n"),
            0
        );
    }
}
