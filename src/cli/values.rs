//! The values of options and arguments that are checked while parsing: `--map` column
//! mappings, `--publish-at` times, preset names and release IDs.

use super::parse::UsageError;
use super::{ColumnMap, PublishAt};

fn usage<T>(msg: impl Into<String>) -> Result<T, UsageError> {
    Err(UsageError(msg.into()))
}

/// True for a name `--map` may give on the left: a field of a roster or of a grade sheet, by
/// label, key or header alias (`service::import::layout`).
fn known_column(name: &str) -> bool {
    use crate::service::import::layout::{field_named, fields};
    field_named(fields(true), name).is_some() || field_named(fields(false), name).is_some()
}

/// Our fields' labels, for the error message.
fn column_labels() -> String {
    use crate::service::import::layout::fields;
    let mut labels: Vec<&str> = Vec::new();
    for f in fields(false).iter().chain(fields(true)) {
        if !labels.contains(&f.label) {
            labels.push(f.label);
        }
    }
    labels.join(", ")
}

/// `学号=XH,学期=XNXQDM`: our column = the file's header, comma-separated (`，` too).
pub fn column_map(spec: &str) -> Result<ColumnMap, UsageError> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for part in spec.split([',', '，']) {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let Some((ours, theirs)) = part.split_once('=') else {
            return usage(format!("--map: expected COLUMN=HEADER, got {part:?}"));
        };
        let (ours, theirs) = (ours.trim(), theirs.trim());
        if !known_column(ours) {
            return usage(format!(
                "--map: unknown column {ours:?} (one of: {})",
                column_labels()
            ));
        }
        if theirs.is_empty() || theirs.contains('=') || theirs.chars().any(char::is_control) {
            return usage(format!("--map: bad header name for {ours}: {theirs:?}"));
        }
        if pairs.iter().any(|(o, _)| o == ours) {
            return usage(format!("--map: column {ours} mapped twice"));
        }
        pairs.push((ours.to_string(), theirs.to_string()));
    }
    if pairs.is_empty() {
        return usage("--map: expected COLUMN=HEADER pairs, e.g. \"学号=XH,学期=XNXQDM\"");
    }
    Ok(ColumnMap(pairs))
}

/// A preset name: 1 to 64 characters, no control characters, no slash.
pub fn preset_name(s: &str) -> Result<String, UsageError> {
    let t = s.trim();
    if t.is_empty() || t.chars().count() > 64 || t.chars().any(|c| c.is_control() || c == '/') {
        return usage(format!(
            "preset name: 1 to 64 characters without control characters or '/', got {s:?}"
        ));
    }
    Ok(t.to_string())
}

pub fn release_id(s: &str) -> Result<u64, UsageError> {
    match s.parse::<u64>() {
        Ok(id) if id > 0 => Ok(id),
        _ => usage(format!("release ID: expected a positive number, got {s:?}")),
    }
}

/// `YYYY-MM-DD HH:MM`, a real calendar minute (China time; no time zone written).
pub fn publish_at(s: &str) -> Result<PublishAt, UsageError> {
    let bad = || {
        UsageError(format!(
            "--publish-at: expected \"YYYY-MM-DD HH:MM\" (China time), got {s:?}"
        ))
    };
    let b = s.trim().as_bytes();
    if b.len() != 16 || b[4] != b'-' || b[7] != b'-' || b[10] != b' ' || b[13] != b':' {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Option<u16> {
        let part = b.get(r)?;
        part.iter().all(u8::is_ascii_digit).then(|| {
            part.iter()
                .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'))
        })
    };
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute)) =
        (num(0..4), num(5..7), num(8..10), num(11..13), num(14..16))
    else {
        return Err(bad());
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(bad()),
    };
    if year < 2000 || day == 0 || day > days || hour > 23 || minute > 59 {
        return Err(bad());
    }
    // Every value checked above fits in a u8.
    let small = |v: u16| u8::try_from(v).map_err(|_| bad());
    Ok(PublishAt {
        year,
        month: small(month)?,
        day: small(day)?,
        hour: small(hour)?,
        minute: small(minute)?,
    })
}
