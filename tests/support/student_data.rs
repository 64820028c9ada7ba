//! Helpers of the student-data tests (tests/student_data.rs, tests/browser_student_data.rs):
//! imports through the admin import jobs (so the commit path's rank recompute runs), and grade
//! rows carrying course facts stored directly, as the registrar import will write them.

use std::time::{Duration, Instant};

use wxgrades::grades::{CourseFacts, Credit, ExamKind, GradeRecord, Score, Term};
use wxgrades::service::import::jobs::JobState;
use wxgrades::service::import::plan::ImportKind;
use wxgrades::store::grades::{grade_key, grade_value, ImportBatch, ImportRecord};

use super::TestServer;

/// Wait (polling) until `f` holds, at most 10 s.
pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Upload and commit through the import jobs, as the admin page does.
pub fn import_job(s: &TestServer, kind: ImportKind, csv: &str, notify: bool) -> ImportRecord {
    let job = s
        .app
        .jobs
        .submit(
            "admin",
            kind,
            "upload.csv",
            wxgrades::service::import::file::ImportFile::from_bytes(csv.as_bytes())
                .expect("temp file"),
            None,
            s.app.clock.now(),
        )
        .expect("submit");
    wait_until("planned", || matches!(job.state(), JobState::Planned));
    let generation = job.plan().expect("plan").generation;
    s.app
        .jobs
        .commit(
            &job.id,
            notify,
            generation,
            wxgrades::store::releases::Destination::Live,
        )
        .expect("commit");
    wait_until("committed", || {
        matches!(job.state(), JobState::Committed(_))
    });
    match job.state() {
        JobState::Committed(record) => *record,
        _ => unreachable!("waited for Committed"),
    }
}

/// Store grade rows carrying course facts, as the registrar import will (one transaction).
pub fn seed(s: &TestServer, rows: &[GradeRecord]) {
    let batch = ImportBatch {
        grade_upserts: rows
            .iter()
            .map(|r| {
                (
                    grade_key(&r.student_id, &r.term, &r.course_code, r.kind),
                    grade_value(r),
                )
            })
            .collect(),
        ..ImportBatch::default()
    };
    let generation = s.app.store.generation().unwrap();
    s.app
        .store
        .apply_import(&batch, ImportRecord::default(), generation, |_, _| Ok(0))
        .unwrap()
        .expect("not stale");
    s.app.data_changed();
}

/// A row of 2024001 in 2024-2025-1 with its 课程性质 and components.
pub fn row(
    code: &str,
    name: &str,
    credit: &str,
    score: &str,
    kind: ExamKind,
    nature: &str,
    parts: &[(&str, &str)],
) -> GradeRecord {
    GradeRecord {
        student_id: "2024001".into(),
        term: Term::parse("2024-2025-1").unwrap(),
        course_code: code.into(),
        course_name: name.into(),
        credit: Credit::parse(credit).unwrap(),
        score: Score::parse(score).unwrap(),
        kind,
        name: None,
        course: CourseFacts {
            nature: Some(nature.into()),
            components: parts
                .iter()
                .map(|(l, v)| (l.to_string(), v.to_string()))
                .collect(),
            ..CourseFacts::default()
        },
    }
}
