//! Unit tests of the command line: every command parsed into its `Command`, every usage error
//! refused with a message naming the bad argument; the pure parts of `check` and `verify-file`.

use std::path::PathBuf;

use super::check::findings;
use super::parse::{column_map, publish_at};
use super::*;
use crate::config::is_verify_file_name;

fn ok(args: &[&str]) -> Invocation {
    match parse(args.iter().copied()) {
        Ok(inv) => inv,
        Err(UsageError(m)) => panic!("{args:?} should parse: {m}"),
    }
}

fn cmd(args: &[&str]) -> Command {
    ok(args).command
}

/// The usage error for `args`, which must mention every one of `needles`.
fn bad(args: &[&str], needles: &[&str]) {
    match parse(args.iter().copied()) {
        Ok(inv) => panic!("{args:?} should be a usage error, parsed as {inv:?}"),
        Err(UsageError(m)) => {
            for n in needles {
                assert!(m.contains(n), "{args:?}: {m:?} should mention {n:?}");
            }
        }
    }
}

fn term(t: &str) -> crate::grades::Term {
    match crate::grades::Term::parse(t) {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn serve_demo_init_check() {
    assert_eq!(cmd(&[]), Command::Serve);
    assert_eq!(cmd(&["serve"]), Command::Serve);
    assert_eq!(cmd(&["demo"]), Command::Demo);
    assert_eq!(cmd(&["check"]), Command::Check);
    assert_eq!(
        cmd(&["init"]),
        Command::Init {
            file: PathBuf::from("wxgrades.toml")
        }
    );
    assert_eq!(
        cmd(&["init", "my.toml"]),
        Command::Init {
            file: PathBuf::from("my.toml")
        }
    );
}

#[test]
fn config_is_global_in_every_position_and_form() {
    for args in [
        &["serve", "--config", "a.toml"][..],
        &["--config", "a.toml", "serve"],
        &["--config=a.toml"],
        &["-c", "a.toml", "check"],
        &["admin", "list", "--config", "a.toml"],
    ] {
        assert_eq!(ok(args).config, Some(PathBuf::from("a.toml")), "{args:?}");
    }
    assert_eq!(ok(&["serve"]).config, None);
    bad(&["serve", "--config"], &["--config", "value"]);
    bad(&["--config", "a", "--config", "b"], &["--config", "twice"]);
}

#[test]
fn help_and_version() {
    assert_eq!(cmd(&["--help"]), Command::Help(None));
    assert_eq!(cmd(&["-h"]), Command::Help(None));
    assert_eq!(
        cmd(&["import", "--help"]),
        Command::Help(Some(Topic::Import))
    );
    assert_eq!(
        cmd(&["import", "grades", "x.csv", "--dry-run", "--help"]),
        Command::Help(Some(Topic::Import))
    );
    // Help wins over the command's own checks: `admin --help` needs no sub-command.
    assert_eq!(cmd(&["admin", "--help"]), Command::Help(Some(Topic::Admin)));
    assert_eq!(
        cmd(&["verify-file", "-h"]),
        Command::Help(Some(Topic::VerifyFile))
    );
    for w in [
        "serve",
        "demo",
        "init",
        "check",
        "menu",
        "admin",
        "import",
        "export",
        "backup",
        "restore",
        "verify-file",
        "presets",
        "releases",
    ] {
        let Command::Help(Some(t)) = cmd(&[w, "--help"]) else {
            panic!("{w} --help");
        };
        assert!(
            !help::page(t).is_empty() && help::page(t).contains(w),
            "{w}"
        );
    }
    bad(&["frobnicate", "--help"], &["frobnicate"]);
    assert_eq!(cmd(&["--version"]), Command::Version);
    assert_eq!(cmd(&["-V"]), Command::Version);
    bad(&["serve", "--version"], &["--version", "serve"]);
}

#[test]
fn menu() {
    assert_eq!(cmd(&["menu", "show"]), Command::Menu(MenuCommand::Show));
    assert_eq!(cmd(&["menu", "push"]), Command::Menu(MenuCommand::Push));
    bad(&["menu"], &["menu", "show"]);
    bad(&["menu", "pull"], &["pull"]);
    bad(&["menu", "show", "extra"], &["extra"]);
    bad(&["menu", "show", "--dry-run"], &["--dry-run", "menu"]);
}

#[test]
fn admin_commands() {
    assert_eq!(
        cmd(&["admin", "add", "alice"]),
        Command::Admin(AdminCommand::Add {
            name: "alice".into(),
            role: Role::Admin,
            password_stdin: false
        })
    );
    assert_eq!(
        cmd(&[
            "admin",
            "add",
            "bob",
            "--role",
            "viewer",
            "--password-stdin"
        ]),
        Command::Admin(AdminCommand::Add {
            name: "bob".into(),
            role: Role::Viewer,
            password_stdin: true
        })
    );
    assert_eq!(
        cmd(&["admin", "add", "--role=registrar", "carol"]),
        Command::Admin(AdminCommand::Add {
            name: "carol".into(),
            role: Role::Registrar,
            password_stdin: false
        })
    );
    assert_eq!(
        cmd(&["admin", "passwd", "alice", "--password-stdin"]),
        Command::Admin(AdminCommand::Passwd {
            name: "alice".into(),
            password_stdin: true
        })
    );
    assert_eq!(cmd(&["admin", "list"]), Command::Admin(AdminCommand::List));
    assert_eq!(
        cmd(&["admin", "remove", "alice"]),
        Command::Admin(AdminCommand::Remove {
            name: "alice".into()
        })
    );
    bad(&["admin"], &["admin", "add NAME"]);
    bad(&["admin", "frobnicate"], &["frobnicate"]);
    bad(&["admin", "add"], &["NAME"]);
    bad(&["admin", "add", "a", "b"], &["\"b\""]);
    bad(
        &["admin", "add", "a", "--role", "root"],
        &["--role", "root"],
    );
    bad(&["admin", "add", "a", "--role"], &["--role"]);
    bad(&["admin", "passwd", "a", "--role", "admin"], &["--role"]);
    bad(&["admin", "list", "--bogus"], &["--bogus"]);
    bad(
        &["admin", "list", "--password-stdin"],
        &["--password-stdin"],
    );
    bad(&["admin", "remove"], &["NAME"]);
    bad(
        &["admin", "remove", "a", "--password-stdin"],
        &["--password-stdin"],
    );
}

#[test]
fn import_commands() {
    let Command::Import(i) = cmd(&["import", "roster", "r.csv"]) else {
        panic!("import roster");
    };
    assert_eq!(i.kind, crate::service::import::plan::ImportKind::Roster);
    assert_eq!(i.file, PathBuf::from("r.csv"));
    assert!(!i.dry_run && i.replace_term.is_none() && i.map.is_none());

    let Command::Import(i) = cmd(&[
        "import",
        "grades",
        "g.xlsx",
        "--dry-run",
        "--replace-term",
        "2025-2026-1",
        "--map",
        "学号=XH, 学期=XNXQDM，course_code=KCH",
        "--preset",
        "教务系统",
        "--publish-at",
        "2026-01-20 08:30",
    ]) else {
        panic!("import grades");
    };
    assert!(i.dry_run);
    assert_eq!(i.replace_term, Some(term("2025-2026-1")));
    assert_eq!(
        i.map,
        Some(ColumnMap(vec![
            ("学号".into(), "XH".into()),
            ("学期".into(), "XNXQDM".into()),
            ("course_code".into(), "KCH".into()),
        ]))
    );
    assert_eq!(i.preset.as_deref(), Some("教务系统"));
    assert_eq!(
        i.publish_at,
        Some(PublishAt {
            year: 2026,
            month: 1,
            day: 20,
            hour: 8,
            minute: 30
        })
    );

    bad(&["import"], &["import", "roster FILE"]);
    bad(&["import", "teachers", "t.csv"], &["teachers"]);
    bad(&["import", "grades"], &["FILE"]);
    bad(&["import", "grades", "a.csv", "b.csv"], &["\"b.csv\""]);
    bad(
        &["import", "roster", "r.csv", "--replace-term", "2025-2026-1"],
        &["--replace-term", "grades only"],
    );
    bad(
        &[
            "import",
            "roster",
            "r.csv",
            "--publish-at",
            "2026-01-20 08:30",
        ],
        &["--publish-at", "grades only"],
    );
    bad(
        &["import", "grades", "g.csv", "--replace-term", "2025"],
        &["--replace-term"],
    );
    bad(
        &["import", "grades", "g.csv", "--replace-term"],
        &["--replace-term", "value"],
    );
    bad(
        &["import", "grades", "g.csv", "--term", "2025-2026-1"],
        &["--term", "import"],
    );
    bad(
        &["import", "grades", "g.csv", "--dry-run", "--dry-run"],
        &["--dry-run", "twice"],
    );
    bad(
        &["import", "grades", "g.csv", "--map", "学号"],
        &["--map", "COLUMN=HEADER"],
    );
    bad(&["import", "grades", "g.csv", "--preset", ""], &["preset"]);
    bad(
        &[
            "import",
            "grades",
            "g.csv",
            "--publish-at",
            "2026-02-30 08:00",
        ],
        &["--publish-at", "2026-02-30"],
    );
    bad(&["import", "grades", "g.csv", "-x"], &["-x"]);
}

#[test]
fn column_maps() {
    assert!(column_map("学号=XH").is_ok());
    assert!(column_map("student_id = XH ,").is_ok());
    for (spec, needle) in [
        ("", "pairs"),
        (",,", "pairs"),
        ("学号", "COLUMN=HEADER"),
        ("wohnort=X", "wohnort"),
        ("学号=", "学号"),
        ("学号=a=b", "学号"),
        ("学号=XH,学号=ID", "twice"),
        ("学号=X\u{7}", "学号"),
    ] {
        match column_map(spec) {
            Ok(m) => panic!("{spec:?} accepted as {m:?}"),
            Err(UsageError(e)) => assert!(e.contains(needle), "{spec:?}: {e}"),
        }
    }
}

#[test]
fn publish_times() {
    assert!(publish_at("2028-02-29 23:59").is_ok(), "leap day");
    assert!(publish_at(" 2026-12-31 00:00 ").is_ok());
    for s in [
        "2026-02-29 08:00",
        "2100-02-29 08:00",
        "2026-13-01 08:00",
        "2026-00-10 08:00",
        "2026-04-31 08:00",
        "2026-01-01 24:00",
        "2026-01-01 12:60",
        "2026-01-01T12:00",
        "2026-1-1 8:00",
        "1999-12-31 23:59",
        "２０２６-01-01 08:00",
        "",
    ] {
        assert!(publish_at(s).is_err(), "{s:?} accepted");
    }
}

#[test]
fn export_backup_restore() {
    assert_eq!(
        cmd(&["export", "grades"]),
        Command::Export {
            term: None,
            output: None
        }
    );
    assert_eq!(
        cmd(&["export", "grades", "--term", "2025-2026-1", "-o", "out.csv"]),
        Command::Export {
            term: Some("2025-2026-1".into()),
            output: Some(PathBuf::from("out.csv"))
        }
    );
    assert_eq!(
        cmd(&["export", "grades", "--output=o.csv"]),
        Command::Export {
            term: None,
            output: Some(PathBuf::from("o.csv"))
        }
    );
    bad(&["export"], &["export grades"]);
    bad(&["export", "roster"], &["roster"]);
    bad(&["export", "grades", "--dry-run"], &["--dry-run", "export"]);
    bad(&["export", "grades", "-o"], &["--output", "value"]);
    bad(&["export", "grades", "x"], &["\"x\""]);

    assert_eq!(
        cmd(&["backup", "b.redb"]),
        Command::Backup {
            file: PathBuf::from("b.redb")
        }
    );
    bad(&["backup"], &["FILE"]);
    bad(&["backup", "a", "b"], &["\"b\""]);
    bad(&["backup", "a", "--check"], &["--check", "backup"]);

    assert_eq!(
        cmd(&["restore", "--check", "b.redb"]),
        Command::Restore {
            file: PathBuf::from("b.redb"),
            check_only: true
        }
    );
    assert_eq!(
        cmd(&["restore", "b.redb"]),
        Command::Restore {
            file: PathBuf::from("b.redb"),
            check_only: false
        }
    );
    bad(&["restore"], &["FILE"]);
    bad(&["restore", "a", "--term", "x"], &["--term"]);
}

#[test]
fn verify_presets_releases() {
    assert_eq!(
        cmd(&["verify-file", "add", "MP_verify_abc.txt"]),
        Command::VerifyFile(VerifyFileCommand::Add {
            file: PathBuf::from("MP_verify_abc.txt")
        })
    );
    bad(&["verify-file"], &["verify-file add FILE"]);
    bad(&["verify-file", "remove", "x.txt"], &["remove"]);
    bad(&["verify-file", "add"], &["FILE"]);

    assert_eq!(
        cmd(&["presets", "list"]),
        Command::Presets(PresetsCommand::List)
    );
    assert_eq!(
        cmd(&["presets", "show", "教务"]),
        Command::Presets(PresetsCommand::Show {
            name: "教务".into()
        })
    );
    assert_eq!(
        cmd(&["presets", "remove", "x"]),
        Command::Presets(PresetsCommand::Remove { name: "x".into() })
    );
    bad(&["presets"], &["presets list"]);
    bad(&["presets", "show"], &["NAME"]);
    bad(&["presets", "add", "x"], &["add"]);
    bad(&["presets", "show", "a/b"], &["a/b"]);

    assert_eq!(
        cmd(&["releases", "list"]),
        Command::Releases(ReleasesCommand::List)
    );
    assert_eq!(
        cmd(&["releases", "publish", "7"]),
        Command::Releases(ReleasesCommand::Publish { id: 7 })
    );
    assert_eq!(
        cmd(&["releases", "withdraw", "12"]),
        Command::Releases(ReleasesCommand::Withdraw { id: 12 })
    );
    bad(&["releases", "publish"], &["ID"]);
    bad(&["releases", "publish", "x"], &["\"x\""]);
    bad(&["releases", "withdraw", "0"], &["\"0\""]);
    bad(&["releases", "withdraw", "-3"], &["-3"]);
    bad(&["releases", "list", "1"], &["\"1\""]);
}

#[test]
fn other_usage_errors() {
    bad(&["frobnicate"], &["unknown command", "frobnicate"]);
    bad(&["serve", "extra"], &["\"extra\""]);
    bad(&["serve", "--dry-run"], &["--dry-run", "serve"]);
    bad(&["--dry-run"], &["--dry-run", "serve"]);
    bad(&["check", "--bogus"], &["unknown option --bogus"]);
    bad(&["demo", "x"], &["\"x\""]);
    bad(&["init", "a", "b"], &["\"b\""]);
    bad(&["init", "--term", "x"], &["--term", "init"]);
    bad(
        &["--password-stdin=yes", "admin", "list"],
        &["--password-stdin"],
    );
}

#[test]
fn arguments_that_are_not_utf8_are_usage_errors_or_paths() {
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;
    let raw = OsString::from_vec(vec![b'a', 0xFF, b'b']);
    // A file name is a path: kept byte for byte.
    match parse([OsString::from("backup"), raw.clone()]) {
        Ok(inv) => assert_eq!(
            inv.command,
            Command::Backup {
                file: PathBuf::from(raw.clone())
            }
        ),
        Err(UsageError(m)) => panic!("{m}"),
    }
    // A command word or a value that must be text is refused, naming it.
    for args in [
        vec![raw.clone()],
        vec![OsString::from("admin"), OsString::from("add"), raw.clone()],
        vec![
            OsString::from("export"),
            OsString::from("grades"),
            OsString::from("--term"),
            raw.clone(),
        ],
    ] {
        match parse(args.clone()) {
            Ok(inv) => panic!("{args:?} parsed as {inv:?}"),
            Err(UsageError(m)) => assert!(m.contains("UTF-8") && m.contains('a'), "{m}"),
        }
    }
}

#[test]
fn check_findings_for_public_url_and_proxy() {
    let f = findings("https://jw.example.edu.cn", "127.0.0.1:8080", true);
    assert_eq!(f, check::Findings::default());

    let f = findings("https://jw.example.edu.cn/grades", "127.0.0.1:8080", true);
    assert_eq!(f.problems.len(), 1, "{f:?}");
    assert!(f.problems[0].contains("path") && f.problems[0].contains("/grades"));

    let f = findings("http://jw.example.edu.cn", "0.0.0.0:80", false);
    assert!(f.problems.iter().any(|p| p.contains("not https")), "{f:?}");
    assert!(
        f.warnings.is_empty(),
        "not loopback: no proxy warning {f:?}"
    );

    let f = findings("https://jw.example.edu.cn", "127.0.0.1:8080", false);
    assert!(f.problems.is_empty());
    assert!(
        f.warnings.iter().any(|w| w.contains("trust_proxy")),
        "{f:?}"
    );
    let f = findings("https://jw.example.edu.cn", "[::1]:8080", false);
    assert!(
        f.warnings.iter().any(|w| w.contains("trust_proxy")),
        "{f:?}"
    );

    let f = findings("https://jw.example.edu.cn:8443", "127.0.0.1:8080", true);
    assert!(f.warnings.iter().any(|w| w.contains("port")), "{f:?}");

    // A local test setup: http on loopback is a warning, not a failure.
    let f = findings("http://127.0.0.1:8080", "127.0.0.1:8080", false);
    assert!(f.problems.is_empty(), "{f:?}");
    assert!(f.warnings.iter().any(|w| w.contains("not https")), "{f:?}");
    let f = findings("http://[::1]:8080?x", "127.0.0.1:8080", false);
    assert!(f.problems.iter().any(|p| p.contains("path")), "{f:?}");
}

#[test]
fn verify_file_names() {
    for ok in [
        "MP_verify_abc123.txt",
        "a.txt",
        "x-y_z.txt",
        &format!("{}.txt", "a".repeat(64)),
    ] {
        assert!(is_verify_file_name(ok), "{ok}");
    }
    for bad in [
        ".txt",
        "a.TXT",
        "a.txt.txt",
        "../a.txt",
        "a/b.txt",
        "a b.txt",
        "é.txt",
        "a.html",
        &format!("{}.txt", "a".repeat(65)),
    ] {
        assert!(!is_verify_file_name(bad), "{bad}");
    }
}
