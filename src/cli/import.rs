//! `wxgrades import roster|grades FILE [--map MAP | --preset NAME]`: the admin page's import
//! engine for scripts, with a progress display on a terminal; and `wxgrades presets`, the saved
//! column maps.

use super::run::Failure;
use super::{ImportCommand, PresetsCommand};
use crate::config::Config;
use crate::service::admin::audit::{self, Action};
use crate::service::import::file::ImportFile;
use crate::service::import::mapping::{ChosenMap, ColumnMap};
use crate::service::import::plan::{self, ImportKind, Upload};
use crate::service::import::presets as saved;
use crate::service::import::table::{TableReader, XlsxLimits};
use crate::service::releases::{self, Destination};
use crate::store::Store;

type Outcome = Result<(), Failure>;

fn failed<T>(msg: impl Into<String>) -> Result<T, Failure> {
    Err(Failure::Failed(msg.into()))
}

fn usage<T>(msg: impl Into<String>) -> Result<T, Failure> {
    Err(Failure::Usage(msg.into()))
}

/// Run an import: live, or held as a release until `--publish-at`.
pub fn run(cfg: &Config, c: &ImportCommand) -> Outcome {
    if c.map.is_some() && c.preset.is_some() {
        return usage("--map and --preset: give one of them, not both");
    }
    let destination = match c.publish_at {
        None => Destination::Live,
        Some(p) => {
            let Some(at) =
                crate::clock::china_minute(i32::from(p.year), p.month, p.day, p.hour, p.minute)
            else {
                return failed("--publish-at: no such minute in the calendar");
            };
            releases::check_future(at, crate::clock::unix_now())
                .map_err(|e| Failure::Failed(format!("--publish-at: {e}")))?;
            Destination::Held { publish_at: at }
        }
    };
    import(cfg, c, destination)
}

/// `--map`: our field names checked for this kind of file (a usage error names a bad one).
fn given_map(kind: ImportKind, c: &ImportCommand) -> Result<Option<ColumnMap>, Failure> {
    match &c.map {
        None => Ok(None),
        Some(m) => ColumnMap::from_names(kind == ImportKind::Roster, &m.0)
            .map(Some)
            .map_err(|e| Failure::Usage(format!("--map: {e}"))),
    }
}

/// `--map`'s headers must all be in the file's header row (a usage error names the missing).
fn check_headers(map: &ColumnMap, name: &str, bytes: &[u8], limits: &XlsxLimits) -> Outcome {
    let rule = saved::header_rule(std::slice::from_ref(map));
    let reader = TableReader::open_with_header(name, bytes, limits, &rule)
        .map_err(|e| Failure::Failed(format!("{name}: {e}")))?;
    let absent = map.absent_headers(reader.headers());
    if absent.is_empty() {
        return Ok(());
    }
    usage(format!(
        "--map: {} not in the header row of {name} (its headers: {})",
        absent
            .iter()
            .map(|h| format!("{h:?}"))
            .collect::<Vec<_>>()
            .join(", "),
        reader.headers().join(", ")
    ))
}

fn import(cfg: &Config, c: &ImportCommand, destination: Destination) -> Outcome {
    let (kind, file, dry_run, replace_term) = (c.kind, c.file.as_path(), c.dry_run, c.replace_term);
    let map = given_map(kind, c)?;
    let started = std::time::Instant::now();
    // A private copy on disk, mapped: the plan and the commit each read it, none of it is
    // held in memory, and the file given may change meanwhile without changing the import.
    let copy = match ImportFile::copy_of(file) {
        Ok(c) => c,
        Err(e) => return failed(format!("cannot read {}: {e}", file.display())),
    };
    let bytes = copy.bytes();
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    // A file given on the command line may be larger than an upload; the XLSX limits scale with it.
    let limits = XlsxLimits::for_upload(cfg.max_upload_bytes.max(bytes.len() as u64));
    if let Some(m) = &map {
        check_headers(m, &name, bytes, &limits)?;
    }
    let store = Store::open_with_cache(&cfg.data, cfg.data_cache_mb).map_err(|e| e.to_string())?;
    let chosen = match (map, &c.preset) {
        (Some(map), _) => Some(ChosenMap {
            map,
            source: "命令行 --map 指定的列对应".into(),
        }),
        (None, Some(preset)) => Some(ChosenMap {
            map: saved::named(&store, kind, preset)
                .map_err(|e| Failure::Usage(format!("--preset: {e}")))?,
            source: format!("预设 {preset}"),
        }),
        (None, None) => None,
    };
    let key = crate::service::verify::VerifyKey::load_or_create(&cfg.data)?;
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
    let prog = plan::Progress::default();
    let planned = std::thread::scope(|scope| {
        let worker =
            scope.spawn(|| plan::plan_with_map(&store, &key, &up, chosen.as_ref(), &limits, &prog));
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
            eprintln!("  {}", e.describe());
        }
        if p.needs_mapping {
            eprintln!(
                "  no known layout reads this header row: name the columns with --map \"学号=HEADER,学期=HEADER,…\" or a saved --preset NAME"
            );
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
    let done = plan::commit_to(
        &store,
        &key,
        &p,
        &up,
        "cli",
        now,
        false,
        destination,
        |_, _, _| Ok(0),
    )
    .map_err(|e| Failure::Failed(e.to_string()))?;
    println!(
        "committed import #{} in {:.1} s ({:.1} s in all)",
        done.record.id,
        writing.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    if let Some(at) = done.record.publish_at {
        println!(
            "held as release #{}: students see it from {} (China time); `wxgrades releases publish {}` publishes it earlier",
            done.record.id,
            crate::clock::local_datetime(at),
            done.record.id
        );
        return Ok(());
    }
    let ranked = crate::service::rank::recompute_store(&store, cfg.rank, &cfg.scale)
        .map_err(|e| format!("ranks not recomputed: {e}"))?;
    if cfg.rank != crate::config::RankScope::None {
        println!("ranks recomputed: {ranked} students ranked");
    }
    Ok(())
}

/// `wxgrades presets list | show NAME | remove NAME`.
pub fn presets(cfg: &Config, p: &PresetsCommand) -> Result<(), String> {
    let store = Store::open_with_cache(&cfg.data, cfg.data_cache_mb).map_err(|e| e.to_string())?;
    match p {
        PresetsCommand::List => {
            let all = saved::list_in(&store).map_err(|e| e.to_string())?;
            if all.is_empty() {
                println!("no saved presets");
            }
            for (name, preset) in all {
                println!(
                    "{name}\t{}\t{} columns\t{}\t{}",
                    preset.kind,
                    preset.mapping.len(),
                    preset.created_by,
                    crate::clock::local_datetime(preset.at)
                );
            }
            Ok(())
        }
        PresetsCommand::Show { name } => {
            let all = saved::list_in(&store).map_err(|e| e.to_string())?;
            let Some((_, preset)) = all.iter().find(|(n, _)| n == name) else {
                let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
                return Err(format!(
                    "no preset named {name:?}; saved presets: {}",
                    if names.is_empty() {
                        "(none)".to_string()
                    } else {
                        names.join(", ")
                    }
                ));
            };
            let roster = preset.kind == "roster";
            let map = ColumnMap {
                pairs: preset.mapping.clone(),
            };
            println!("{name} ({})", preset.kind);
            for (field, header) in map.listed(roster) {
                println!("  {field}={header}");
            }
            Ok(())
        }
        PresetsCommand::Remove { name } => {
            if !saved::remove_in(&store, name).map_err(|e| e.to_string())? {
                return Err(format!("no preset named {name:?}"));
            }
            audit::record(
                &store,
                crate::clock::unix_now(),
                "cli",
                Action::PresetRemoved,
                name,
                None,
            );
            println!("removed preset {name}");
            Ok(())
        }
    }
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
