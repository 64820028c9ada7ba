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
  wxgrades menu show | push            print / publish the custom menu built from [[menu]]
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
}

fn parse(args: &[String]) -> Result<Args, Failure> {
    let mut out = Args {
        config: None,
        help: false,
        words: vec![],
        flags: vec![],
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
        "menu" => {
            no_flags(&a.flags)?;
            let cfg = load_config(a, false)?;
            match rest {
                [w] if w == "show" => menu_show(&cfg),
                [w] if w == "push" => menu_push(&cfg),
                _ => usage("menu takes one of: show, push"),
            }
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
    let running = crate::server::start(app.clone()).map_err(Failure::Failed)?;
    let url = app.config.public_url.clone();
    if demo {
        let bar = "=".repeat(72);
        eprintln!("{bar}\n  DEMO MODE — WeChat is SIMULATED; nothing here talks to real WeChat.\n  Open {url}/ in a browser (or {url}/_sim/ for the simulator's start page).\n  Data: {}\n{bar}", app.config.data.display());
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
