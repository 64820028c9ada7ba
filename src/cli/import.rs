//! `wxgrades import roster|grades FILE`: the admin page's import engine for scripts, with a
//! progress display on a terminal.

use std::path::Path;

use super::ImportCommand;
use crate::config::Config;
use crate::service::import::file::ImportFile;
use crate::service::import::plan::{self, Upload};
use crate::service::import::table::XlsxLimits;
use crate::store::Store;

type Outcome = Result<(), String>;

fn failed<T>(msg: impl Into<String>) -> Result<T, String> {
    Err(msg.into())
}

/// Run an import whose new options (`--map`, `--preset`, `--publish-at`) are not set.
pub fn run(cfg: &Config, c: &ImportCommand) -> Outcome {
    let pending = [
        (c.map.is_some(), "--map"),
        (c.preset.is_some(), "--preset"),
        (c.publish_at.is_some(), "--publish-at"),
    ];
    if let Some((_, opt)) = pending.iter().find(|(set, _)| *set) {
        return failed(super::run::not_yet(&format!("import {opt}")));
    }
    import(cfg, c.kind, &c.file, c.dry_run, c.replace_term)
}

fn import(
    cfg: &Config,
    kind: plan::ImportKind,
    file: &Path,
    dry_run: bool,
    replace_term: Option<crate::grades::Term>,
) -> Outcome {
    let started = std::time::Instant::now();
    // A private copy on disk, mapped: the plan and the commit each read it, none of it is
    // held in memory, and the file given may change meanwhile without changing the import.
    let copy = match ImportFile::copy_of(file) {
        Ok(c) => c,
        Err(e) => return failed(format!("cannot read {}: {e}", file.display())),
    };
    let bytes = copy.bytes();
    let store = Store::open_with_cache(&cfg.data, cfg.data_cache_mb).map_err(|e| e.to_string())?;
    let key = crate::service::verify::VerifyKey::load_or_create(&cfg.data)?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    progress(&format!(
        "reading {} ({})",
        file.display(),
        crate::error::human_size(bytes.len() as u64)
    ));
    let up = Upload {
        kind,
        file_name: &name,
        bytes,
        replace_term,
    };
    // A file given on the command line may be larger than an upload; the XLSX limits scale with it.
    let limits = XlsxLimits::for_upload(cfg.max_upload_bytes.max(bytes.len() as u64));
    let prog = plan::Progress::default();
    let planned = std::thread::scope(|scope| {
        let worker = scope.spawn(|| plan::plan_with_progress(&store, &key, &up, &limits, &prog));
        watch_progress(&prog, || worker.is_finished());
        worker.join()
    });
    let p = match planned {
        Ok(r) => r.map_err(|e| format!("{}: {e}", file.display()))?,
        Err(_) => return failed("the import stopped unexpectedly; nothing was written"),
    };
    println!(
        "{}: {} ({}), {} rows read in {:.1} s",
        file.display(),
        kind.label(),
        p.format,
        p.rows_read,
        started.elapsed().as_secs_f64()
    );
    print_recognition(&p);
    println!(
        "  add {}, change {}, unchanged {}{}",
        p.added,
        p.changed,
        p.unchanged,
        if p.replace_term.is_some() {
            format!(", remove {}", p.removed)
        } else {
            String::new()
        }
    );
    if !p.terms.is_empty() {
        println!("  terms: {}", p.terms.join(", "));
    }
    if !p.unknown_students.is_empty() {
        let shown: Vec<&str> = p
            .unknown_students
            .iter()
            .take(10)
            .map(String::as_str)
            .collect();
        println!(
            "  {} students not in the roster (imported all the same): {}{}",
            p.unknown_students.len(),
            shown.join(", "),
            if p.unknown_students.len() > 10 {
                ", …"
            } else {
                ""
            }
        );
    }
    if p.has_errors() {
        for e in &p.errors {
            eprintln!("  {e}");
        }
        return failed(format!(
            "{}: {} errors; nothing was written",
            file.display(),
            p.errors.len()
        ));
    }
    if dry_run {
        println!("dry run: nothing written");
        return Ok(());
    }
    let writing = std::time::Instant::now();
    progress(&format!("writing {} rows in one transaction", p.writes()));
    let now = crate::clock::unix_now();
    let done = plan::commit(&store, &key, &p, &up, "cli", now, false, |_, _, _| Ok(0))
        .map_err(|e| e.to_string())?;
    println!(
        "committed import #{} in {:.1} s ({:.1} s in all)",
        done.record.id,
        writing.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// What the import recognised: the layout, the column mapping, translated values, void rows.
fn print_recognition(p: &plan::Plan) {
    println!("  识别为：{}", p.layout);
    if !p.mapping.is_empty() {
        let cols: Vec<String> = p
            .mapping
            .iter()
            .map(|(field, header)| format!("{field}={header}"))
            .collect();
        println!("  columns: {}", cols.join(", "));
    }
    for t in &p.translated {
        println!(
            "  read {}「{}」as「{}」: {} rows",
            t.field, t.from, t.to, t.rows
        );
    }
    if p.skipped > 0 {
        println!(
            "  skipped {} rows marked void (是否成绩作废 = 是)",
            p.skipped
        );
    }
}

/// Show how far a plan has come until `done()`: a bar redrawn in place on a terminal, one
/// plain line per stage otherwise (logs and pipes).
fn watch_progress(p: &plan::Progress, done: impl Fn() -> bool) {
    use std::io::IsTerminal;
    use std::sync::atomic::Ordering::Relaxed;
    let tty = std::io::stderr().is_terminal();
    let mut last_stage = usize::MAX;
    while !done() {
        let (stage, n, total) = (
            p.stage.load(Relaxed),
            p.done.load(Relaxed),
            p.total.load(Relaxed),
        );
        let what = if stage == 0 {
            "reading and checking rows"
        } else {
            "comparing with the stored data"
        };
        if tty {
            let bar = match (
                (n.min(total) * 30).checked_div(total),
                (n.min(total) * 100).checked_div(total),
            ) {
                (Some(filled), Some(pct)) => format!(
                    "[{}{}] {pct:>3}% ",
                    "#".repeat(filled),
                    ".".repeat(30 - filled)
                ),
                _ => String::new(),
            };
            eprint!("\r\x1b[2K{what}: {bar}{n} rows");
        } else if stage != last_stage {
            eprintln!("{what}…");
        }
        last_stage = stage;
        // A display refresh, not a wait for a result: `done()` is checked every tick.
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    if tty {
        eprint!("\r\x1b[2K");
    }
}

/// A progress line: on a terminal it is overwritten by the next output; otherwise a plain line.
fn progress(msg: &str) {
    use std::io::IsTerminal;
    if std::io::stderr().is_terminal() {
        eprint!("\r\x1b[2K{msg}…\r");
    } else {
        eprintln!("{msg}…");
    }
}
