//! Runs a parsed [`Command`]: loads the config where the command needs one and calls the
//! engine; a command whose engine does not exist yet says so and fails.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{AdminCommand, Command, Invocation, MenuCommand};
use crate::app::App;
use crate::config::{self, Config, Source};

/// A failure (exit 1) with the message for the operator.
type Outcome = Result<(), String>;

fn failed<T>(msg: impl Into<String>) -> Result<T, String> {
    Err(msg.into())
}

/// Why a command failed: exit 1 with a message, or exit 2 for a usage error found only when
/// the command ran (a `--map` header the file lacks).
#[derive(Debug)]
pub enum Failure {
    Failed(String),
    Usage(String),
}

impl From<String> for Failure {
    fn from(m: String) -> Failure {
        Failure::Failed(m)
    }
}

/// Run one parsed command line.
pub fn execute(inv: &Invocation) -> Result<(), Failure> {
    let cfg = || load_config(inv.config.as_deref(), false);
    match &inv.command {
        Command::Import(i) => super::import::run(&cfg()?, i),
        Command::Presets(p) => super::import::presets(&cfg()?, p).map_err(Failure::Failed),
        _ => execute_plain(inv).map_err(Failure::Failed),
    }
}

/// Run a command whose failures all exit 1.
fn execute_plain(inv: &Invocation) -> Outcome {
    let cfg = |demo: bool| load_config(inv.config.as_deref(), demo);
    match &inv.command {
        Command::Help(None) => {
            println!("{}", super::help::USAGE);
            Ok(())
        }
        Command::Help(Some(topic)) => {
            println!("{}", super::help::page(*topic));
            Ok(())
        }
        Command::Version => {
            println!("wxgrades {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Serve => serve(cfg(false)?),
        Command::Demo => serve(cfg(true)?),
        Command::Init { file } => init(file),
        Command::Check => super::check::run(&cfg(false)?),
        Command::Menu(MenuCommand::Show) => menu_show(&cfg(false)?),
        Command::Menu(MenuCommand::Push) => menu_push(&cfg(false)?),
        Command::Admin(a) => admin(&cfg(false)?, a),
        Command::Import(_) | Command::Presets(_) => failed("internal: run by execute"),
        Command::Export { term, output } => {
            crate::admin_cli::export_grades(&cfg(false)?, term.as_deref(), output.as_deref())
        }
        Command::Backup { file } => crate::admin_cli::backup(&cfg(false)?, file),
        Command::Restore { file, check_only } => {
            crate::admin_cli::restore(&cfg(false)?, file, *check_only)
        }
        Command::VerifyFile(super::VerifyFileCommand::Add { file }) => {
            let dest = super::verify_file::add(&cfg(false)?, file)?;
            println!(
                "copied {} to {}; the server answers it at /{}",
                file.display(),
                dest.display(),
                dest.file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default()
            );
            Ok(())
        }
        Command::Releases(r) => super::releases::run(cfg(false)?, r),
    }
}

fn admin(cfg: &Config, a: &AdminCommand) -> Outcome {
    match a {
        AdminCommand::Add {
            name,
            role,
            password_stdin,
        } => crate::admin_cli::admin_set(cfg, name, Some(*role), *password_stdin),
        AdminCommand::Passwd {
            name,
            password_stdin,
        } => crate::admin_cli::admin_set(cfg, name, None, *password_stdin),
        AdminCommand::List => crate::admin_cli::admin_list(cfg),
        AdminCommand::Remove { name } => crate::admin_cli::admin_remove(cfg, name),
    }
}

/// The config: `--config FILE`, else `WXGRADES_CONFIG`, else `wxgrades.toml` if present; the
/// embedded demo config for `demo`. `WXGRADES_*` variables override keys.
fn load_config(explicit: Option<&Path>, demo: bool) -> Result<Config, String> {
    let env = env_pairs();
    let explicit: Option<PathBuf> = explicit
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("WXGRADES_CONFIG").map(PathBuf::from));
    let source = if demo {
        Source::Demo
    } else if let Some(p) = &explicit {
        Source::File(p)
    } else {
        Source::DefaultFile(Path::new("wxgrades.toml"))
    };
    config::load(source, &env).map_err(|e| e.to_string())
}

/// The `WXGRADES_*` variables (a variable that is not UTF-8 is left out, not a panic).
fn env_pairs() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| k.starts_with("WXGRADES_"))
        .collect()
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

fn menu_show(cfg: &Config) -> Outcome {
    let v = crate::service::menu::menu_json(cfg)?;
    println!(
        "{}",
        serde_json::to_string_pretty(&v).unwrap_or_else(|_| v.to_string())
    );
    Ok(())
}

fn menu_push(cfg: &Config) -> Outcome {
    let report = crate::service::wxcheck::push_menu(cfg)?;
    println!("{report}");
    Ok(())
}

fn serve(cfg: Config) -> Outcome {
    crate::logging::init(cfg.log_file.as_deref())?;
    let demo = cfg.demo;
    let app = App::new(cfg).map_err(|e| e.to_string())?;
    let app = Arc::new(app);
    if demo {
        crate::demo::seed(&app)?;
    }
    let demo_password = if demo {
        let pw = crate::service::admin::accounts::reset_demo_admin(&app.store, app.clock.now())
            .map_err(|e| format!("cannot create the demo admin: {e}"))?;
        Some(pw)
    } else {
        None
    };
    let running = crate::app::site::start(app.clone())?;
    // The background threads (import, notices, housekeeping; timed snapshots into backup.dir
    // except in demo mode, whose data is sample data), stopped after the server.
    let background = App::start_background(&app, !demo);
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
    background.stop_and_join();
    drop(app);
    if failed_flag.load(std::sync::atomic::Ordering::SeqCst) {
        return failed("the listener failed; see the log");
    }
    log::info!("stopped; data file closed");
    Ok(())
}
