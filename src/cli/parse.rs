//! Turns the argument list into an [`Invocation`] in one step, or a [`UsageError`] naming the bad
//! argument. Pure: no files, no environment, no printing.

use std::ffi::OsString;
use std::path::PathBuf;

use super::{
    AdminCommand, Command, ImportCommand, Invocation, MenuCommand, PresetsCommand, ReleasesCommand,
    Role, Topic, VerifyFileCommand,
};
use crate::grades::Term;
use crate::service::import::plan::ImportKind;

pub use super::values::{column_map, preset_name, publish_at, release_id};

/// Bad usage (exit 2): what was wrong, naming the argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

fn usage<T>(msg: impl Into<String>) -> Result<T, UsageError> {
    Err(UsageError(msg.into()))
}

/// An option the command line knows: its long name, short letter, and whether it takes a value.
struct Opt {
    long: &'static str,
    short: Option<char>,
    value: bool,
}

const OPTIONS: &[Opt] = &[
    Opt {
        long: "config",
        short: Some('c'),
        value: true,
    },
    Opt {
        long: "help",
        short: Some('h'),
        value: false,
    },
    Opt {
        long: "version",
        short: Some('V'),
        value: false,
    },
    Opt {
        long: "dry-run",
        short: None,
        value: false,
    },
    Opt {
        long: "replace-term",
        short: None,
        value: true,
    },
    Opt {
        long: "term",
        short: None,
        value: true,
    },
    Opt {
        long: "output",
        short: Some('o'),
        value: true,
    },
    Opt {
        long: "map",
        short: None,
        value: true,
    },
    Opt {
        long: "preset",
        short: None,
        value: true,
    },
    Opt {
        long: "publish-at",
        short: None,
        value: true,
    },
    Opt {
        long: "role",
        short: None,
        value: true,
    },
    Opt {
        long: "password-stdin",
        short: None,
        value: false,
    },
    Opt {
        long: "check",
        short: None,
        value: false,
    },
];

/// The arguments sorted by kind, before they become a `Command`.
#[derive(Default)]
struct Raw {
    config: Option<PathBuf>,
    help: bool,
    version: bool,
    words: Vec<OsString>,
    /// Command options in order: (long name, value when it takes one).
    opts: Vec<(&'static str, Option<String>)>,
}

impl Raw {
    fn flag(&self, name: &str) -> bool {
        self.opts.iter().any(|(k, _)| *k == name)
    }
    fn value(&self, name: &str) -> Option<&str> {
        self.opts
            .iter()
            .find(|(k, _)| *k == name)
            .and_then(|(_, v)| v.as_deref())
    }
    /// Refuse any option `cmd` does not take.
    fn only(&self, cmd: &str, allowed: &[&str]) -> Result<(), UsageError> {
        match self.opts.iter().find(|(k, _)| !allowed.contains(k)) {
            Some((k, _)) => usage(format!("option --{k} does not apply to `{cmd}`")),
            None => Ok(()),
        }
    }
}

/// Parse the arguments after the program name.
pub fn parse<I, A>(args: I) -> Result<Invocation, UsageError>
where
    I: IntoIterator<Item = A>,
    A: Into<OsString>,
{
    let raw = collect(args)?;
    let command = if raw.help {
        Command::Help(match raw.words.first() {
            None => None,
            Some(w) => Some(Topic::parse(&word(w)?).ok_or_else(|| unknown_command(w))?),
        })
    } else if raw.version {
        if let Some(w) = raw.words.first() {
            return usage(format!(
                "--version takes no command, got {:?}",
                w.to_string_lossy()
            ));
        }
        Command::Version
    } else {
        command(&raw)?
    };
    Ok(Invocation {
        config: raw.config,
        command,
    })
}

fn unknown_command(w: &OsString) -> UsageError {
    UsageError(format!("unknown command {:?}", w.to_string_lossy()))
}

/// A command word or a name: must be UTF-8.
fn word(w: &OsString) -> Result<String, UsageError> {
    w.to_str()
        .map(str::to_string)
        .ok_or_else(|| UsageError(format!("{:?} is not valid UTF-8", w.to_string_lossy())))
}

fn collect<I, A>(args: I) -> Result<Raw, UsageError>
where
    I: IntoIterator<Item = A>,
    A: Into<OsString>,
{
    use lexopt::Arg;
    let mut p = lexopt::Parser::from_args(args.into_iter().map(Into::into));
    let mut raw = Raw::default();
    loop {
        let arg = match p.next() {
            Ok(Some(a)) => a,
            Ok(None) => break,
            Err(e) => return usage(e.to_string()),
        };
        let opt = match arg {
            Arg::Value(v) => {
                raw.words.push(v);
                continue;
            }
            Arg::Long(name) => OPTIONS.iter().find(|o| o.long == name),
            Arg::Short(c) => OPTIONS.iter().find(|o| o.short == Some(c)),
        };
        let Some(opt) = opt else {
            return usage(format!("unknown option {}", shown_arg(&arg)));
        };
        let value = if opt.value {
            match p.value() {
                Ok(v) => Some(v),
                Err(_) => return usage(format!("--{} needs a value", opt.long)),
            }
        } else {
            None
        };
        match (opt.long, value) {
            ("config", Some(v)) => {
                if raw.config.replace(PathBuf::from(v)).is_some() {
                    return usage("--config given twice");
                }
            }
            ("help", _) => raw.help = true,
            ("version", _) => raw.version = true,
            (long, value) => {
                if raw.opts.iter().any(|(k, _)| *k == long) {
                    return usage(format!("--{long} given twice"));
                }
                let value = match value {
                    Some(v) => Some(v.into_string().map_err(|v| {
                        UsageError(format!(
                            "--{long}: {:?} is not valid UTF-8",
                            v.to_string_lossy()
                        ))
                    })?),
                    None => None,
                };
                raw.opts.push((long, value));
            }
        }
    }
    Ok(raw)
}

fn shown_arg(arg: &lexopt::Arg<'_>) -> String {
    match arg {
        lexopt::Arg::Long(l) => format!("--{l}"),
        lexopt::Arg::Short(c) => format!("-{c}"),
        lexopt::Arg::Value(v) => format!("{:?}", v.to_string_lossy()),
    }
}

/// The words after the command word, checked for count: exactly `names.len()`.
fn exactly<'a>(
    rest: &'a [OsString],
    names: &[&str],
    form: &str,
) -> Result<&'a [OsString], UsageError> {
    if rest.len() == names.len() {
        return Ok(rest);
    }
    match rest.get(names.len()) {
        Some(extra) => usage(format!(
            "unexpected argument {:?}; expected `{form}`",
            extra.to_string_lossy()
        )),
        None => usage(format!(
            "missing {}; expected `{form}`",
            names[rest.len()..].join(" ")
        )),
    }
}

fn command(raw: &Raw) -> Result<Command, UsageError> {
    let Some(first) = raw.words.first() else {
        raw.only("serve", &[])?;
        return Ok(Command::Serve);
    };
    let cmd = word(first)?;
    let rest = &raw.words[1..];
    Ok(match cmd.as_str() {
        "serve" | "demo" | "check" => {
            raw.only(&cmd, &[])?;
            exactly(rest, &[], &format!("wxgrades {cmd}"))?;
            match cmd.as_str() {
                "serve" => Command::Serve,
                "demo" => Command::Demo,
                _ => Command::Check,
            }
        }
        "init" => {
            raw.only("init", &[])?;
            match rest {
                [] => Command::Init {
                    file: PathBuf::from("wxgrades.toml"),
                },
                [f] => Command::Init {
                    file: PathBuf::from(f),
                },
                [_, extra, ..] => {
                    return usage(format!(
                        "unexpected argument {:?}; init takes at most one file name",
                        extra.to_string_lossy()
                    ))
                }
            }
        }
        "menu" => {
            raw.only("menu", &[])?;
            let sub = sub_word(rest, "menu", "show | push")?;
            let m = match sub.as_str() {
                "show" => MenuCommand::Show,
                "push" => MenuCommand::Push,
                _ => return bad_sub("menu", &sub, "show, push"),
            };
            exactly(&rest[1..], &[], &format!("wxgrades menu {sub}"))?;
            Command::Menu(m)
        }
        "admin" => Command::Admin(admin(raw, rest)?),
        "import" => Command::Import(import(raw, rest)?),
        "export" => {
            raw.only("export", &["term", "output"])?;
            let form = "wxgrades export grades [--term TERM] [-o FILE]";
            let sub = sub_word(rest, "export", "grades")?;
            if sub != "grades" {
                return bad_sub("export", &sub, "grades");
            }
            exactly(&rest[1..], &[], form)?;
            Command::Export {
                term: raw.value("term").map(str::to_string),
                output: raw.value("output").map(PathBuf::from),
            }
        }
        "backup" => {
            raw.only("backup", &[])?;
            let f = exactly(rest, &["FILE"], "wxgrades backup FILE")?;
            Command::Backup {
                file: PathBuf::from(&f[0]),
            }
        }
        "restore" => {
            raw.only("restore", &["check"])?;
            let f = exactly(rest, &["FILE"], "wxgrades restore [--check] FILE")?;
            Command::Restore {
                file: PathBuf::from(&f[0]),
                check_only: raw.flag("check"),
            }
        }
        "verify-file" => {
            raw.only("verify-file", &[])?;
            let sub = sub_word(rest, "verify-file", "add FILE")?;
            if sub != "add" {
                return bad_sub("verify-file", &sub, "add");
            }
            let f = exactly(&rest[1..], &["FILE"], "wxgrades verify-file add FILE")?;
            Command::VerifyFile(VerifyFileCommand::Add {
                file: PathBuf::from(&f[0]),
            })
        }
        "presets" => {
            raw.only("presets", &[])?;
            let sub = sub_word(rest, "presets", "list | show NAME | remove NAME")?;
            Command::Presets(match sub.as_str() {
                "list" => {
                    exactly(&rest[1..], &[], "wxgrades presets list")?;
                    PresetsCommand::List
                }
                "show" | "remove" => {
                    let n = exactly(
                        &rest[1..],
                        &["NAME"],
                        &format!("wxgrades presets {sub} NAME"),
                    )?;
                    let name = preset_name(&word(&n[0])?)?;
                    if sub == "show" {
                        PresetsCommand::Show { name }
                    } else {
                        PresetsCommand::Remove { name }
                    }
                }
                _ => return bad_sub("presets", &sub, "list, show, remove"),
            })
        }
        "releases" => {
            raw.only("releases", &[])?;
            let sub = sub_word(rest, "releases", "list | publish ID | withdraw ID")?;
            Command::Releases(match sub.as_str() {
                "list" => {
                    exactly(&rest[1..], &[], "wxgrades releases list")?;
                    ReleasesCommand::List
                }
                "publish" | "withdraw" => {
                    let n = exactly(&rest[1..], &["ID"], &format!("wxgrades releases {sub} ID"))?;
                    let id = release_id(&word(&n[0])?)?;
                    if sub == "publish" {
                        ReleasesCommand::Publish { id }
                    } else {
                        ReleasesCommand::Withdraw { id }
                    }
                }
                _ => return bad_sub("releases", &sub, "list, publish, withdraw"),
            })
        }
        _ => return Err(unknown_command(first)),
    })
}

/// The sub-command word (`admin add`, `menu show`, …).
fn sub_word(rest: &[OsString], cmd: &str, choices: &str) -> Result<String, UsageError> {
    match rest.first() {
        Some(w) => word(w),
        None => usage(format!("{cmd}: expected `{cmd} {choices}`")),
    }
}

fn bad_sub<T>(cmd: &str, got: &str, choices: &str) -> Result<T, UsageError> {
    usage(format!(
        "{cmd}: unknown sub-command {got:?}; expected one of: {choices}"
    ))
}

fn admin(raw: &Raw, rest: &[OsString]) -> Result<AdminCommand, UsageError> {
    let sub = sub_word(rest, "admin", "add NAME | passwd NAME | list | remove NAME")?;
    let args = &rest[1..];
    Ok(match sub.as_str() {
        "add" => {
            raw.only("admin add", &["password-stdin", "role"])?;
            let n = exactly(
                args,
                &["NAME"],
                "wxgrades admin add NAME [--role ROLE] [--password-stdin]",
            )?;
            let role = match raw.value("role") {
                None => Role::Admin,
                Some(r) => Role::parse(r).ok_or_else(|| {
                    UsageError(format!(
                        "--role: expected admin, registrar or viewer, got {r:?}"
                    ))
                })?,
            };
            AdminCommand::Add {
                name: word(&n[0])?,
                role,
                password_stdin: raw.flag("password-stdin"),
            }
        }
        "passwd" => {
            raw.only("admin passwd", &["password-stdin"])?;
            let n = exactly(
                args,
                &["NAME"],
                "wxgrades admin passwd NAME [--password-stdin]",
            )?;
            AdminCommand::Passwd {
                name: word(&n[0])?,
                password_stdin: raw.flag("password-stdin"),
            }
        }
        "list" => {
            raw.only("admin list", &[])?;
            exactly(args, &[], "wxgrades admin list")?;
            AdminCommand::List
        }
        "remove" => {
            raw.only("admin remove", &[])?;
            let n = exactly(args, &["NAME"], "wxgrades admin remove NAME")?;
            AdminCommand::Remove { name: word(&n[0])? }
        }
        _ => return bad_sub("admin", &sub, "add, passwd, list, remove"),
    })
}

fn import(raw: &Raw, rest: &[OsString]) -> Result<ImportCommand, UsageError> {
    let form = "wxgrades import roster|grades FILE [--dry-run] [--replace-term TERM] [--map MAP] [--preset NAME] [--publish-at \"YYYY-MM-DD HH:MM\"]";
    let sub = sub_word(rest, "import", "roster FILE | grades FILE")?;
    let Some(kind) = ImportKind::parse(&sub) else {
        return bad_sub("import", &sub, "roster, grades");
    };
    let f = exactly(&rest[1..], &["FILE"], form)?;
    let allowed: &[&str] = match kind {
        ImportKind::Roster => &["dry-run", "map", "preset"],
        ImportKind::Grades => &["dry-run", "replace-term", "map", "preset", "publish-at"],
    };
    if let Some((k, _)) = raw.opts.iter().find(|(k, _)| !allowed.contains(k)) {
        return usage(match *k {
            "replace-term" | "publish-at" => format!("--{k} applies to grades only"),
            _ => format!("option --{k} does not apply to `import`"),
        });
    }
    let replace_term = match raw.value("replace-term") {
        None => None,
        Some(t) => Some(Term::parse(t).map_err(|e| UsageError(format!("--replace-term: {e}")))?),
    };
    Ok(ImportCommand {
        kind,
        file: PathBuf::from(&f[0]),
        dry_run: raw.flag("dry-run"),
        replace_term,
        map: raw.value("map").map(column_map).transpose()?,
        preset: raw.value("preset").map(preset_name).transpose()?,
        publish_at: raw.value("publish-at").map(publish_at).transpose()?,
    })
}
