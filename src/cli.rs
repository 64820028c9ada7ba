//! The command line of SPEC.md: parse the arguments into a `Command`, run it, return the exit
//! code (0 success, 1 failure, 2 bad usage).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::app::App;
use crate::config::{self, Config, Source};
use crate::grades::Term;
use crate::service::import::plan::{self, ImportKind, Upload};
use crate::service::import::table::XlsxLimits;
use crate::store::Store;

const USAGE: &str = "wxgrades — grades through a WeChat official account

Usage:
  wxgrades [serve] [--config FILE]     run the server (demo mode when nothing is configured)
  wxgrades demo                        run demo mode: WeChat simulated, sample data
  wxgrades init [FILE]                 write a commented config file (never overwrites)
  wxgrades check [--config FILE]       validate the config (and prove the WeChat credentials)
  wxgrades menu show | push            print / publish the custom menu built from [[menu]]
  wxgrades import roster FILE          import a roster (CSV or XLSX, UTF-8 or GBK)
  wxgrades import grades FILE [--dry-run] [--replace-term TERM]
  wxgrades admin add|passwd NAME [--password-stdin]   create an admin / set a new password
  wxgrades admin list | admin remove NAME              list / remove admins
  wxgrades export grades [--term TERM] [-o FILE]       grades as CSV in the import format
  wxgrades backup FILE                 write a consistent copy of the data file (server stopped)
  wxgrades restore [--check] FILE      check a backup and put it in place of the data file
  wxgrades --version | --help

Every command takes --config FILE (default wxgrades.toml, or WXGRADES_CONFIG).
Run `wxgrades COMMAND --help` for a command's options.";

/// A usage error (exit 2) or a failure (exit 1).
enum Failure {
    Usage(String),
    Failed(String),
}

type Outcome = Result<(), Failure>;

fn usage<T>(msg: impl Into<String>) -> Result<T, Failure> {
    Err(Failure::Usage(msg.into()))
}

fn failed<T>(msg: impl Into<String>) -> Result<T, Failure> {
    Err(Failure::Failed(msg.into()))
}

/// Parsed global options and the remaining words.
struct Args {
    config: Option<PathBuf>,
    help: bool,
    words: Vec<String>,
    flags: Vec<String>,
    /// Options that take a value: (name, value).
    values: Vec<(String, String)>,
}

/// Options that take a value.
const VALUE_OPTIONS: &[&str] = &["--replace-term", "--term", "-o", "--output"];

impl Args {
    fn value(&self, names: &[&str]) -> Option<&str> {
        self.values
            .iter()
            .find(|(k, _)| names.contains(&k.as_str()))
            .map(|(_, v)| v.as_str())
    }
    fn flag(&self, name: &str) -> bool {
        self.flags.iter().any(|f| f == name)
    }
    /// Fail on any option with a value not in `allowed`.
    fn only_values(&self, allowed: &[&str]) -> Outcome {
        match self
            .values
            .iter()
            .find(|(k, _)| !allowed.contains(&k.as_str()))
        {
            Some((k, _)) => usage(format!("option {k} does not apply here")),
            None => Ok(()),
        }
    }
    /// Fail on any flag not in `allowed`.
    fn only_flags(&self, allowed: &[&str]) -> Outcome {
        match self.flags.iter().find(|f| !allowed.contains(&f.as_str())) {
            Some(f) => usage(format!("unknown option {f}")),
            None => Ok(()),
        }
    }
}

fn parse(args: &[String]) -> Result<Args, Failure> {
    let mut out = Args {
        config: None,
        help: false,
        words: vec![],
        flags: vec![],
        values: vec![],
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--config" | "-c" => match it.next() {
                Some(v) => out.config = Some(PathBuf::from(v)),
                None => return usage("--config needs a file name"),
            },
            s if s.starts_with("--config=") => {
                out.config = Some(PathBuf::from(&s["--config=".len()..]))
            }
            "--help" | "-h" => out.help = true,
            s if VALUE_OPTIONS.contains(&s) => match it.next() {
                Some(v) => out.values.push((s.to_string(), v.clone())),
                None => return usage(format!("{s} needs a value")),
            },
            s if s.starts_with("--") => out.flags.push(s.to_string()),
            _ => out.words.push(a.clone()),
        }
    }
    Ok(out)
}

pub fn run(args: &[String]) -> i32 {
    if args.first().map(String::as_str) == Some("--version")
        || args.first().map(String::as_str) == Some("-V")
    {
        println!("wxgrades {}", env!("CARGO_PKG_VERSION"));
        return 0;
    }
    let result = parse(args).and_then(|a| dispatch(&a));
    match result {
        Ok(()) => 0,
        Err(Failure::Usage(m)) => {
            eprintln!("wxgrades: {m}\n\n{USAGE}");
            2
        }
        Err(Failure::Failed(m)) => {
            eprintln!("wxgrades: {m}");
            1
        }
    }
}

fn dispatch(a: &Args) -> Outcome {
    let cmd = a.words.first().map(String::as_str).unwrap_or("serve");
    if a.help {
        // `wxgrades --help` is the overview; `wxgrades COMMAND --help` that command's page.
        println!(
            "{}",
            if a.words.is_empty() {
                USAGE.to_string()
            } else {
                help_for(cmd)
            }
        );
        return Ok(());
    }
    let rest = &a.words[a.words.len().min(1)..];
    match cmd {
        "serve" => {
            no_more(rest, &a.flags)?;
            let cfg = load_config(a, false)?;
            serve(cfg)
        }
        "demo" => {
            no_more(rest, &a.flags)?;
            let cfg = load_config(a, true)?;
            serve(cfg)
        }
        "init" => {
            no_flags(&a.flags)?;
            let file = match rest {
                [] => PathBuf::from("wxgrades.toml"),
                [f] => PathBuf::from(f),
                _ => return usage("init takes at most one file name"),
            };
            init(&file)
        }
        "check" => {
            no_more(rest, &a.flags)?;
            let cfg = load_config(a, false)?;
            check(&cfg)
        }
        "menu" => {
            no_flags(&a.flags)?;
            let cfg = load_config(a, false)?;
            match rest {
                [w] if w == "show" => menu_show(&cfg),
                [w] if w == "push" => menu_push(&cfg),
                _ => usage("menu takes one of: show, push"),
            }
        }
        "admin" => {
            let cfg = load_config(a, false)?;
            let from_stdin = a.flag("--password-stdin");
            match rest {
                [sub, name] if sub == "add" || sub == "passwd" => {
                    a.only_flags(&["--password-stdin"])?;
                    a.only_values(&[])?;
                    crate::admin_cli::admin_set(&cfg, name, sub == "add", from_stdin)
                        .map_err(Failure::Failed)
                }
                [sub] if sub == "list" => {
                    a.only_flags(&[])?;
                    a.only_values(&[])?;
                    crate::admin_cli::admin_list(&cfg).map_err(Failure::Failed)
                }
                [sub, name] if sub == "remove" => {
                    a.only_flags(&[])?;
                    a.only_values(&[])?;
                    crate::admin_cli::admin_remove(&cfg, name).map_err(Failure::Failed)
                }
                _ => usage("admin: expected `add NAME`, `passwd NAME`, `list` or `remove NAME`"),
            }
        }
        "export" => {
            a.only_flags(&[])?;
            a.only_values(&["--term", "--output", "-o"])?;
            match rest {
                [what] if what == "grades" => {}
                _ => return usage("export: expected `export grades [--term TERM] [-o FILE]`"),
            }
            let cfg = load_config(a, false)?;
            let out = a.value(&["--output", "-o"]).map(PathBuf::from);
            crate::admin_cli::export_grades(&cfg, a.value(&["--term"]), out.as_deref())
                .map_err(Failure::Failed)
        }
        "backup" => {
            a.only_flags(&[])?;
            a.only_values(&[])?;
            let [file] = rest else {
                return usage("backup: expected one file name: `wxgrades backup FILE`");
            };
            let cfg = load_config(a, false)?;
            crate::admin_cli::backup(&cfg, Path::new(file)).map_err(Failure::Failed)
        }
        "restore" => {
            a.only_flags(&["--check"])?;
            a.only_values(&[])?;
            let [file] = rest else {
                return usage("restore: expected one file name: `wxgrades restore [--check] FILE`");
            };
            let cfg = load_config(a, false)?;
            let check = a.flag("--check");
            crate::admin_cli::restore(&cfg, Path::new(file), check).map_err(Failure::Failed)
        }
        "import" => {
            a.only_flags(&["--dry-run"])?;
            let (kind, file) = match rest {
                [k, f] => match ImportKind::parse(k) {
                    Some(kind) => (kind, PathBuf::from(f)),
                    None => return usage(format!("import: expected roster or grades, got {k:?}")),
                },
                _ => {
                    return usage(
                        "import takes: roster FILE | grades FILE [--dry-run] [--replace-term TERM]",
                    )
                }
            };
            let replace = match a.value(&["--replace-term"]) {
                None => None,
                Some(_) if kind == ImportKind::Roster => {
                    return usage("--replace-term applies to grades only")
                }
                Some(t) => match Term::parse(t) {
                    Ok(t) => Some(t),
                    Err(e) => return usage(format!("--replace-term: {e}")),
                },
            };
            let cfg = load_config(a, false)?;
            import(&cfg, kind, &file, a.flag("--dry-run"), replace)
        }
        other => usage(format!("unknown command {other:?}")),
    }
}

fn help_for(cmd: &str) -> String {
    match cmd {
        "serve" => "wxgrades serve [--config FILE]\n\nRun the server. Without a config file and WeChat credentials it runs demo mode.".into(),
        "demo" => "wxgrades demo [--config FILE]\n\nRun demo mode: data/demo.redb seeded from the sample data, WeChat simulated under /_sim/.".into(),
        "init" => "wxgrades init [FILE]\n\nWrite a commented config file to start from (default wxgrades.toml). Never overwrites.".into(),
        "check" => "wxgrades check [--config FILE]\n\nValidate the config; with WeChat credentials, fetch an access_token to prove them. Exit 0 only when all is well.".into(),
        "menu" => "wxgrades menu show|push [--config FILE]\n\nshow: print the custom menu JSON built from [[menu]] in the config.\npush: publish it to WeChat (cgi-bin/menu/create) and report WeChat's answer.".into(),
        "import" => "wxgrades import roster FILE\nwxgrades import grades FILE [--dry-run] [--replace-term TERM]\n\nThe admin page's import engine, for scripts. CSV (UTF-8 or GBK/GB18030, with or without BOM) or XLSX;\nheaders in English or Chinese. All or nothing: one bad row and nothing is written; every error is listed.\n--dry-run prints the plan and writes nothing. --replace-term first removes that term's rows the file does not list.".into(),
        "admin" => "wxgrades admin add NAME [--password-stdin]\nwxgrades admin passwd NAME [--password-stdin]\nwxgrades admin list\nwxgrades admin remove NAME\n\nManage the accounts of the admin pages (/admin). The password (at least 10 characters) is asked\nfor twice without echo, or read as one line from standard input with --password-stdin.\nA new password or a removal ends that admin's sessions. Needs the server stopped.".into(),
        "export" => "wxgrades export grades [--term TERM] [-o FILE]\n\nWrite every grade row (or one term's) as CSV in the import format: UTF-8 with BOM, so Excel\nopens it; cells that Excel would run as formulas get a leading '. To standard output without -o.\nWhile the server runs, use /admin/export.csv instead.".into(),
        "backup" => "wxgrades backup FILE\n\nWrite a consistent copy of the data file to FILE (replacing it). Needs the server stopped; while\nit runs, copy a snapshot from backup.dir or download one from /admin/backup.".into(),
        "restore" => "wxgrades restore [--check] FILE\n\nCheck that FILE is a good backup (a cleanly closed wxgrades data file, no newer schema, every\ntable readable) and put it in place of the data file, keeping the replaced file beside it as\n<data>.replaced-<time>. With --check, only check. Needs the server stopped.".into(),
        _ => USAGE.into(),
    }
}

fn no_more(rest: &[String], flags: &[String]) -> Outcome {
    if let Some(w) = rest.first() {
        return usage(format!("unexpected argument {w:?}"));
    }
    no_flags(flags)
}

fn no_flags(flags: &[String]) -> Outcome {
    match flags.first() {
        Some(f) => usage(format!("unknown option {f}")),
        None => Ok(()),
    }
}

fn env_pairs() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(k, _)| k.starts_with("WXGRADES_"))
        .collect()
}

fn load_config(a: &Args, demo: bool) -> Result<Config, Failure> {
    let env = env_pairs();
    let explicit = a
        .config
        .clone()
        .or_else(|| std::env::var_os("WXGRADES_CONFIG").map(PathBuf::from));
    let source_path;
    let source = if demo {
        Source::Demo
    } else if let Some(p) = &explicit {
        source_path = p.clone();
        Source::File(&source_path)
    } else {
        Source::DefaultFile(Path::new("wxgrades.toml"))
    };
    config::load(source, &env).map_err(|e| Failure::Failed(e.to_string()))
}

fn init(file: &Path) -> Outcome {
    let mut f = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(file)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return failed(format!(
                "{} already exists; not overwriting it",
                file.display()
            ))
        }
        Err(e) => return failed(format!("cannot create {}: {e}", file.display())),
    };
    if let Err(e) = std::io::Write::write_all(&mut f, config::STARTER.as_bytes()) {
        return failed(format!("cannot write {}: {e}", file.display()));
    }
    println!(
        "wrote {} — edit public_url and [wechat], then run `wxgrades check`",
        file.display()
    );
    Ok(())
}

fn check(cfg: &Config) -> Outcome {
    if cfg.demo {
        println!("no configuration found: `wxgrades serve` would run demo mode");
        return Ok(());
    }
    println!(
        "config OK: public_url {}, data {}, {} workers",
        cfg.public_url,
        cfg.data.display(),
        cfg.workers
    );
    let report = crate::service::wxcheck::check_wechat(cfg).map_err(Failure::Failed)?;
    println!("{report}");
    Ok(())
}

fn menu_show(cfg: &Config) -> Outcome {
    let v = crate::service::menu::menu_json(cfg).map_err(Failure::Failed)?;
    println!(
        "{}",
        serde_json::to_string_pretty(&v).unwrap_or_else(|_| v.to_string())
    );
    Ok(())
}

fn menu_push(cfg: &Config) -> Outcome {
    let report = crate::service::wxcheck::push_menu(cfg).map_err(Failure::Failed)?;
    println!("{report}");
    Ok(())
}

fn serve(cfg: Config) -> Outcome {
    crate::logging::init(cfg.log_file.as_deref()).map_err(Failure::Failed)?;
    let demo = cfg.demo;
    let app = App::new(cfg).map_err(|e| Failure::Failed(e.to_string()))?;
    let app = Arc::new(app);
    if demo {
        crate::demo::seed(&app).map_err(Failure::Failed)?;
    }
    let demo_password = if demo {
        let pw = crate::service::admin::accounts::reset_demo_admin(&app.store, app.clock.now())
            .map_err(|e| Failure::Failed(format!("cannot create the demo admin: {e}")))?;
        Some(pw)
    } else {
        None
    };
    let running = crate::server::start(app.clone()).map_err(Failure::Failed)?;
    let url = app.config.public_url.clone();
    if let Some(pw) = &demo_password {
        let bar = "=".repeat(72);
        eprintln!("{bar}\n  DEMO MODE — WeChat is SIMULATED; nothing here talks to real WeChat.\n  Open {url}/ in a browser (or {url}/_sim/ for the simulator's start page).\n  Admin pages: {url}/admin  user {}  password {pw}\n  Data: {}\n{bar}", crate::service::admin::accounts::DEMO_ADMIN, app.config.data.display());
    }
    log::info!(
        "wxgrades {} listening on {} ({} workers), public URL {url}",
        env!("CARGO_PKG_VERSION"),
        running.addr,
        app.config.workers
    );
    let stopper = running.stopper();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let _ = ctrlc::set_handler(move || {
        let _ = tx.send(());
    });
    let failed_flag = running.listener_failed.clone();
    let watch = stopper.clone();
    std::thread::spawn(move || {
        let _ = rx.recv();
        log::info!("stopping: finishing requests in flight");
        watch.stop();
    });
    running.wait();
    drop(app);
    if failed_flag.load(std::sync::atomic::Ordering::SeqCst) {
        return failed("the listener failed; see the log");
    }
    log::info!("stopped; data file closed");
    Ok(())
}

fn import(
    cfg: &Config,
    kind: ImportKind,
    file: &Path,
    dry_run: bool,
    replace_term: Option<Term>,
) -> Outcome {
    let started = std::time::Instant::now();
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => return failed(format!("cannot read {}: {e}", file.display())),
    };
    let store = Store::open(&cfg.data).map_err(|e| Failure::Failed(e.to_string()))?;
    let key =
        crate::service::verify::VerifyKey::load_or_create(&cfg.data).map_err(Failure::Failed)?;
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
        bytes: &bytes,
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
        Ok(r) => r.map_err(|e| Failure::Failed(format!("{}: {e}", file.display())))?,
        Err(_) => return failed("the import stopped unexpectedly; nothing was written"),
    };
    drop(bytes);
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
    let done = plan::commit(&store, &p, "cli", now, false, |_, _, _| Ok(0))
        .map_err(|e| Failure::Failed(e.to_string()))?;
    println!(
        "committed import #{} in {:.1} s ({:.1} s in all)",
        done.record.id,
        writing.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Show how far a plan has come until `done()`: a bar redrawn in place on a terminal, one
/// plain line per stage otherwise (logs and pipes).
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
