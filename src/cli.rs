//! The command line of SPEC.md: parse the arguments into a `Command`, run it, return the exit
//! code (0 success, 1 failure, 2 bad usage).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::app::App;
use crate::config::{self, Config, Source};

const USAGE: &str = "wxgrades — grades through a WeChat official account

Usage:
  wxgrades [serve] [--config FILE]     run the server (demo mode when nothing is configured)
  wxgrades demo                        run demo mode: WeChat simulated, sample data
  wxgrades init [FILE]                 write a commented config file (never overwrites)
  wxgrades check [--config FILE]       validate the config (and prove the WeChat credentials)
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
    /// Options that take a value (`--term TERM`, `--term=TERM`, `-o FILE`).
    opts: Vec<(String, String)>,
}

/// The options that take a value.
const VALUE_OPTS: &[&str] = &["--term", "--output", "-o", "--replace-term"];

impl Args {
    fn opt(&self, names: &[&str]) -> Option<&str> {
        self.opts
            .iter()
            .rev()
            .find(|(n, _)| names.contains(&n.as_str()))
            .map(|(_, v)| v.as_str())
    }

    /// Bad usage unless every flag and value option is one of `allowed`.
    fn only(&self, allowed: &[&str]) -> Outcome {
        let unknown = self
            .flags
            .iter()
            .chain(self.opts.iter().map(|(n, _)| n))
            .find(|f| !allowed.contains(&f.as_str()));
        match unknown {
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
        opts: vec![],
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
            s if VALUE_OPTS.contains(&s) => match it.next() {
                Some(v) => out.opts.push((s.to_string(), v.clone())),
                None => return usage(format!("{s} needs a value")),
            },
            s if VALUE_OPTS
                .iter()
                .any(|o| o.starts_with("--") && s.starts_with(&format!("{o}="))) =>
            {
                if let Some((n, v)) = s.split_once('=') {
                    out.opts.push((n.to_string(), v.to_string()));
                }
            }
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
        println!("{}", help_for(cmd));
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
        "admin" => {
            let cfg = load_config(a, false)?;
            let from_stdin = a.flags.iter().any(|f| f == "--password-stdin");
            match rest {
                [sub, name] if sub == "add" || sub == "passwd" => {
                    a.only(&["--password-stdin"])?;
                    crate::admin_cli::admin_set(&cfg, name, sub == "add", from_stdin)
                        .map_err(Failure::Failed)
                }
                [sub] if sub == "list" => {
                    a.only(&[])?;
                    crate::admin_cli::admin_list(&cfg).map_err(Failure::Failed)
                }
                [sub, name] if sub == "remove" => {
                    a.only(&[])?;
                    crate::admin_cli::admin_remove(&cfg, name).map_err(Failure::Failed)
                }
                _ => usage("admin: expected `add NAME`, `passwd NAME`, `list` or `remove NAME`"),
            }
        }
        "export" => {
            a.only(&["--term", "--output", "-o"])?;
            match rest {
                [what] if what == "grades" => {}
                _ => return usage("export: expected `export grades [--term TERM] [-o FILE]`"),
            }
            let cfg = load_config(a, false)?;
            let out = a.opt(&["--output", "-o"]).map(PathBuf::from);
            crate::admin_cli::export_grades(&cfg, a.opt(&["--term"]), out.as_deref())
                .map_err(Failure::Failed)
        }
        "backup" => {
            a.only(&[])?;
            let [file] = rest else {
                return usage("backup: expected one file name: `wxgrades backup FILE`");
            };
            let cfg = load_config(a, false)?;
            crate::admin_cli::backup(&cfg, Path::new(file)).map_err(Failure::Failed)
        }
        "restore" => {
            a.only(&["--check"])?;
            let [file] = rest else {
                return usage("restore: expected one file name: `wxgrades restore [--check] FILE`");
            };
            let cfg = load_config(a, false)?;
            let check = a.flags.iter().any(|f| f == "--check");
            crate::admin_cli::restore(&cfg, Path::new(file), check).map_err(Failure::Failed)
        }
        other => usage(format!("unknown command {other:?}")),
    }
}

fn help_for(cmd: &str) -> String {
    match cmd {
        "serve" => "wxgrades serve [--config FILE]\n\nRun the server. Without a config file and WeChat credentials it runs demo mode.".into(),
        "demo" => "wxgrades demo [--config FILE]\n\nRun demo mode: data/demo.redb seeded from the sample data, WeChat simulated under /_sim/.".into(),
        "init" => "wxgrades init [FILE]\n\nWrite a commented config file to start from (default wxgrades.toml). Never overwrites.".into(),
        "check" => "wxgrades check [--config FILE]\n\nValidate the config; exit 0 only when all is well.".into(),
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
    Ok(())
}

fn serve(cfg: Config) -> Outcome {
    crate::logging::init(cfg.log_file.as_deref()).map_err(Failure::Failed)?;
    let demo = cfg.demo;
    let app = App::new(cfg).map_err(|e| Failure::Failed(e.to_string()))?;
    let app = Arc::new(app);
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
    // Timed snapshots into backup.dir (not in demo mode, where the data is sample data).
    if !demo {
        let _backups = crate::service::admin::backup::spawn_scheduler(&app);
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
