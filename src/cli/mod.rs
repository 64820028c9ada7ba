//! The command line of SPEC.md as data: every command is one value of [`Command`], parsed in one
//! step by [`parse::parse`] (no I/O, unit-tested without the binary) and then run by
//! [`run::execute`]. Exit codes: 0 success, 1 failure, 2 bad usage.

mod check;
mod help;
mod import;
pub mod parse;
mod releases;
mod run;
#[cfg(test)]
mod tests;
mod values;
mod verify_file;

use std::ffi::OsString;
use std::path::PathBuf;

use crate::grades::Term;
use crate::service::import::plan::ImportKind;

pub use parse::{parse, UsageError};

/// One parsed command line: the global `--config FILE` and the command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// `--config FILE`; when absent, `WXGRADES_CONFIG`, then `wxgrades.toml`.
    pub config: Option<PathBuf>,
    pub command: Command,
}

/// Every command of SPEC.md (and its Additions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `wxgrades` / `wxgrades serve`.
    Serve,
    /// `wxgrades demo`.
    Demo,
    /// `wxgrades init [FILE]` (default `wxgrades.toml`).
    Init { file: PathBuf },
    /// `wxgrades check`.
    Check,
    /// `wxgrades menu show|push`.
    Menu(MenuCommand),
    /// `wxgrades admin …`.
    Admin(AdminCommand),
    /// `wxgrades import roster|grades FILE …`.
    Import(ImportCommand),
    /// `wxgrades export grades [--term TERM] [-o FILE]`. The term is checked when the command
    /// runs (a bad term is a failure, exit 1, as before).
    Export {
        term: Option<String>,
        output: Option<PathBuf>,
    },
    /// `wxgrades backup FILE`.
    Backup { file: PathBuf },
    /// `wxgrades restore [--check] FILE`.
    Restore { file: PathBuf, check_only: bool },
    /// `wxgrades verify-file add FILE`.
    VerifyFile(VerifyFileCommand),
    /// `wxgrades presets list|show NAME|remove NAME`.
    Presets(PresetsCommand),
    /// `wxgrades releases list|publish ID|withdraw ID`.
    Releases(ReleasesCommand),
    /// `--help`: the overview (`None`) or one command's page.
    Help(Option<Topic>),
    /// `--version`.
    Version,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MenuCommand {
    Show,
    Push,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminCommand {
    Add {
        name: String,
        role: Role,
        password_stdin: bool,
    },
    Passwd {
        name: String,
        password_stdin: bool,
    },
    List,
    Remove {
        name: String,
    },
}

/// `admin add NAME --role …`: the role stored on the account (see `service::admin::roles`).
pub use crate::service::admin::accounts::Role;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportCommand {
    pub kind: ImportKind,
    pub file: PathBuf,
    pub dry_run: bool,
    /// Grades only.
    pub replace_term: Option<Term>,
    /// `--map "学号=XH,学期=XNXQDM"`: our column → the file's header.
    pub map: Option<ColumnMap>,
    /// `--preset NAME`: a saved column mapping.
    pub preset: Option<String>,
    /// `--publish-at "YYYY-MM-DD HH:MM"` (China time), grades only.
    pub publish_at: Option<PublishAt>,
}

/// A column mapping from `--map`: pairs (our column, as named in SPEC.md; the file's header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnMap(pub Vec<(String, String)>);

/// A China-time minute from `--publish-at`, checked to exist in the calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishAt {
    pub year: u16,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyFileCommand {
    Add { file: PathBuf },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresetsCommand {
    List,
    Show { name: String },
    Remove { name: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleasesCommand {
    List,
    Publish { id: u64 },
    Withdraw { id: u64 },
}

/// The commands that have a help page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    Serve,
    Demo,
    Init,
    Check,
    Menu,
    Admin,
    Import,
    Export,
    Backup,
    Restore,
    VerifyFile,
    Presets,
    Releases,
}

impl Topic {
    pub fn parse(word: &str) -> Option<Topic> {
        Some(match word {
            "serve" => Topic::Serve,
            "demo" => Topic::Demo,
            "init" => Topic::Init,
            "check" => Topic::Check,
            "menu" => Topic::Menu,
            "admin" => Topic::Admin,
            "import" => Topic::Import,
            "export" => Topic::Export,
            "backup" => Topic::Backup,
            "restore" => Topic::Restore,
            "verify-file" => Topic::VerifyFile,
            "presets" => Topic::Presets,
            "releases" => Topic::Releases,
            _ => return None,
        })
    }
}

/// Parse and run one command line (the arguments after the program name); returns the exit code.
pub fn run<I, A>(args: I) -> i32
where
    I: IntoIterator<Item = A>,
    A: Into<OsString>,
{
    match parse(args) {
        Ok(inv) => match run::execute(&inv) {
            Ok(()) => 0,
            Err(run::Failure::Failed(message)) => {
                eprintln!("wxgrades: {message}");
                1
            }
            Err(run::Failure::Usage(message)) => {
                eprintln!("wxgrades: {message}");
                2
            }
        },
        Err(UsageError(m)) => {
            eprintln!("wxgrades: {m}\n\n{}", help::USAGE);
            2
        }
    }
}
