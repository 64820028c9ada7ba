//! Students (the roster), bindings between a WeChat openid and a student ID, and the log of
//! every bind and unbind.

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};
use serde::{Deserialize, Serialize};

use super::tables::{BINDINGS, BIND_LOG, BOUND, STUDENTS};
use super::{Result, Store};

/// A student of the roster. `verify` is a keyed hash of the verification value, never the value.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Student {
    pub student_id: String,
    pub name: String,
    pub verify: String,
    pub class: Option<String>,
    pub major: Option<String>,
    /// 学院 and 年级, when the roster had them (absent in records written before they existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub college: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cohort: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Binding {
    pub student_id: String,
    pub bound_at: i64,
}

/// One bind or unbind, for the record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BindEvent {
    pub at: i64,
    pub openid: String,
    pub student_id: String,
    /// "bind" or "unbind".
    pub action: String,
    /// "student" or "admin:NAME".
    pub by: String,
}

/// The result of trying to bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindResult {
    Bound,
    /// This openid is already bound (to this or another student).
    AlreadyBound(String),
    /// The student ID is bound to another openid.
    TakenByOther,
}

fn decode<T: for<'de> Deserialize<'de>>(b: &[u8]) -> Result<T> {
    Ok(serde_json::from_slice(b)?)
}

pub(crate) fn log_event(tx: &redb::WriteTransaction, ev: &BindEvent) -> Result<()> {
    let mut log = tx.open_table(BIND_LOG)?;
    let next = match log.last()? {
        Some((k, _)) => k.value() + 1,
        None => 1,
    };
    let v = serde_json::to_vec(ev)?;
    log.insert(next, v.as_slice())?;
    Ok(())
}

impl Store {
    pub fn student(&self, student_id: &str) -> Result<Option<Student>> {
        self.read_json(STUDENTS, student_id)
    }

    pub fn binding(&self, openid: &str) -> Result<Option<Binding>> {
        self.read_json(BINDINGS, openid)
    }

    /// The openid bound to a student, if any.
    pub fn bound_openid(&self, student_id: &str) -> Result<Option<String>> {
        let tx = self.db().begin_read()?;
        let t = tx.open_table(BOUND)?;
        let got = t.get(student_id)?;
        Ok(got.map(|v| v.value().to_string()))
    }

    /// Bind `openid` to `student_id` unless either is bound already; one transaction.
    pub fn bind(&self, openid: &str, student_id: &str, now: i64) -> Result<BindResult> {
        let tx = self.db().begin_write()?;
        {
            let mut bindings = tx.open_table(BINDINGS)?;
            if let Some(v) = bindings.get(openid)? {
                let b: Binding = decode(v.value())?;
                return Ok(BindResult::AlreadyBound(b.student_id));
            }
            let mut bound = tx.open_table(BOUND)?;
            if bound.get(student_id)?.is_some() {
                return Ok(BindResult::TakenByOther);
            }
            let v = serde_json::to_vec(&Binding {
                student_id: student_id.to_string(),
                bound_at: now,
            })?;
            bindings.insert(openid, v.as_slice())?;
            bound.insert(student_id, openid)?;
        }
        log_event(
            &tx,
            &BindEvent {
                at: now,
                openid: openid.into(),
                student_id: student_id.into(),
                action: "bind".into(),
                by: "student".into(),
            },
        )?;
        tx.commit()?;
        Ok(BindResult::Bound)
    }

    /// Remove the binding of `openid`; returns the student ID it was bound to.
    pub fn unbind_openid(&self, openid: &str, now: i64, by: &str) -> Result<Option<String>> {
        let tx = self.db().begin_write()?;
        let sid = {
            let mut bindings = tx.open_table(BINDINGS)?;
            let removed = bindings.remove(openid)?;
            match removed {
                Some(v) => {
                    let b: Binding = decode(v.value())?;
                    Some(b.student_id)
                }
                None => None,
            }
        };
        if let Some(sid) = &sid {
            tx.open_table(BOUND)?.remove(sid.as_str())?;
            log_event(
                &tx,
                &BindEvent {
                    at: now,
                    openid: openid.into(),
                    student_id: sid.clone(),
                    action: "unbind".into(),
                    by: by.into(),
                },
            )?;
        }
        tx.commit()?;
        Ok(sid)
    }

    /// Remove the binding of a student (admin); returns the openid it had.
    pub fn unbind_student(&self, student_id: &str, now: i64, by: &str) -> Result<Option<String>> {
        let Some(openid) = self.bound_openid(student_id)? else {
            return Ok(None);
        };
        self.unbind_openid(&openid, now, by)?;
        Ok(Some(openid))
    }

    /// The bind/unbind events of one student, newest first.
    pub fn bind_events(&self, student_id: &str, limit: usize) -> Result<Vec<BindEvent>> {
        let tx = self.db().begin_read()?;
        let t = tx.open_table(BIND_LOG)?;
        let mut out = Vec::new();
        for item in t.iter()?.rev() {
            let (_, v) = item?;
            let ev: BindEvent = decode(v.value())?;
            if ev.student_id == student_id {
                out.push(ev);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// (students, bound students).
    pub fn student_counts(&self) -> Result<(u64, u64)> {
        let tx = self.db().begin_read()?;
        Ok((
            tx.open_table(STUDENTS)?.len()?,
            tx.open_table(BOUND)?.len()?,
        ))
    }
}
