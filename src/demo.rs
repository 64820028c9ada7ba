//! Demo mode's data: the sample roster and grades in `data/`, compiled in and imported through
//! the ordinary import engine on the first start, and the values the bind page suggests.

use crate::app::App;
use crate::service::import::plan::{commit, plan, ImportKind, Upload};

pub const HINT_STUDENT_ID: &str = "20220301";
pub const HINT_NAME: &str = "林小雨";
pub const HINT_VERIFY: &str = "12345X";

const ROSTER: &[u8] = include_bytes!("../data/sample_roster.csv");
const GRADES: &[u8] = include_bytes!("../data/sample_grades.csv");

/// Import the samples when the data file has no students yet.
pub fn seed(app: &App) -> Result<(), String> {
    let (students, _) = app.store.student_counts().map_err(|e| e.to_string())?;
    if students > 0 {
        return Ok(());
    }
    for (kind, name, bytes) in [
        (ImportKind::Roster, "sample_roster.csv", ROSTER),
        (ImportKind::Grades, "sample_grades.csv", GRADES),
    ] {
        let up = Upload {
            kind,
            file_name: name,
            bytes,
            replace_term: None,
        };
        let p =
            plan(&app.store, &app.verify_key, &up).map_err(|e| format!("demo data {name}: {e}"))?;
        if let Some(err) = p.errors.first() {
            return Err(format!("demo data {name}: {err}"));
        }
        commit(
            &app.store,
            &app.verify_key,
            &p,
            &up,
            "demo",
            app.clock.now(),
            false,
            |_, _, _| Ok(0),
        )
        .map_err(|e| format!("demo data {name}: {e}"))?;
    }
    app.data_changed();
    log::info!("demo data imported from the samples in data/");
    Ok(())
}
