//! The binary's command line end to end: exit codes, `verify-file add`, the commands that are
//! parsed but have no engine yet, and `check` naming WeChat's first-call errors and the
//! public_url rules. (The parser itself is unit-tested in `src/cli/tests.rs`.)

mod support;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use support::{APP_ID, APP_SECRET};

struct Setup {
    dir: PathBuf,
    config: PathBuf,
}

/// A config in a fresh directory; `top` goes before the sections.
fn setup(name: &str, public_url: &str, top: &str, api_base: &str) -> Setup {
    let dir = support::temp_dir(name);
    let config = dir.join("wxgrades.toml");
    let toml = format!(
        "listen = \"127.0.0.1:18080\"\npublic_url = \"{public_url}\"\ndata = \"{}\"\n{top}\n\
         [wechat]\napp_id = \"{APP_ID}\"\napp_secret = \"{APP_SECRET}\"\ntoken = \"testtoken\"\n\
         api_base = \"{api_base}\"\nopen_base = \"{api_base}\"\ntimeout_secs = 5\n\
         [backup]\ndir = \"{}\"\n",
        dir.join("data.redb").display(),
        dir.join("backups").display(),
    );
    std::fs::write(&config, toml).expect("write config");
    Setup { dir, config }
}

/// Run the binary with `args` then `--config`; (exit code, stdout, stderr).
fn run<S: AsRef<OsStr>>(config: &Path, args: &[S], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wxgrades"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("WXGRADES_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run wxgrades");
    if let Some(mut i) = child.stdin.take() {
        let _ = std::io::Write::write_all(&mut i, stdin.as_bytes());
    }
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn version_help_and_usage_errors() {
    let s = setup(
        "cli-usage",
        "https://jw.example.edu.cn",
        "",
        "http://127.0.0.1:9",
    );
    let (code, out, _) = run(&s.config, &["--version"], "");
    assert_eq!(code, 0);
    assert_eq!(
        out.trim(),
        format!("wxgrades {}", env!("CARGO_PKG_VERSION"))
    );
    let (code, out, _) = run(&s.config, &["import", "grades", "--help"], "");
    assert_eq!(code, 0);
    assert!(
        out.contains("--publish-at") && out.contains("--map"),
        "{out}"
    );
    let (code, out, _) = run(&s.config, &["--help"], "");
    assert_eq!(code, 0);
    assert!(out.contains("verify-file add FILE"), "{out}");

    for (args, needle) in [
        (&["releases", "publish", "x"][..], "\"x\""),
        (
            &["import", "grades", "g.csv", "--publish-at", "tomorrow"],
            "--publish-at",
        ),
        (&["admin", "add", "bob", "--role", "root"], "--role"),
        (&["verify-file", "add"], "FILE"),
        (&["backup", "--frobnicate", "x"], "--frobnicate"),
    ] {
        let (code, _, err) = run(&s.config, args, "");
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(err.contains("Usage:"), "the overview follows: {err}");
    }
    // An argument that is not UTF-8 is a usage error, not a panic.
    use std::os::unix::ffi::OsStrExt;
    let (code, _, err) = run(&s.config, &[OsStr::from_bytes(b"\xFFserve")], "");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("UTF-8") && !err.contains("panicked"), "{err}");
}

#[test]
fn admin_add_with_a_role_and_list_shows_it() {
    let s = setup(
        "cli-roles",
        "https://jw.example.edu.cn",
        "",
        "http://127.0.0.1:9",
    );
    let add = |name: &str, role: Option<&str>| {
        let mut args = vec!["admin", "add", name, "--password-stdin"];
        if let Some(r) = role {
            args.extend(["--role", r]);
        }
        run(&s.config, &args, "long-enough-pass\n")
    };
    let (code, out, err) = add("bob", Some("viewer"));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("role viewer"), "{out}");
    let (code, _, err) = add("carol", Some("registrar"));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = add("dave", None);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = add("erin", Some("root"));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("admin, registrar or viewer"), "{err}");
    let (code, out, _) = run(&s.config, &["admin", "list"], "");
    assert_eq!(code, 0);
    let line = |n: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{n}\t")))
            .unwrap_or_else(|| panic!("{n} not listed: {out}"))
            .to_string()
    };
    assert!(line("bob").contains("role viewer"), "{out}");
    assert!(line("carol").contains("role registrar"), "{out}");
    assert!(line("dave").contains("role admin"), "{out}");
    assert!(!out.contains("erin"), "{out}");
    let store = wxgrades::store::Store::open(&s.dir.join("data.redb")).expect("open");
    let ev = store.audit_events(0, 10).expect("audit");
    assert!(
        ev.iter()
            .any(|(_, e)| e.action == "account_added" && e.detail.contains("bob（viewer）")),
        "{ev:?}"
    );
}

#[test]
fn verify_file_add_copies_only_well_named_small_files() {
    let base = support::temp_dir("cli-verify-dir");
    let verify_dir = base.join("verify-here");
    let s = setup(
        "cli-verify",
        "https://jw.example.edu.cn",
        &format!("verify_dir = \"{}\"", verify_dir.display()),
        "http://127.0.0.1:9",
    );
    let good = s.dir.join("MP_verify_AbC123xyz.txt");
    std::fs::write(&good, "AbC123xyz").expect("write");
    let (code, out, err) = run(
        &s.config,
        &[
            OsStr::new("verify-file"),
            OsStr::new("add"),
            good.as_os_str(),
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("/MP_verify_AbC123xyz.txt"), "{out}");
    assert_eq!(
        std::fs::read_to_string(verify_dir.join("MP_verify_AbC123xyz.txt")).expect("copied"),
        "AbC123xyz"
    );

    for (name, content, needle) in [
        ("notes.md", "x".to_string(), "[A-Za-z0-9_-]"),
        ("MP verify.txt", "x".to_string(), "[A-Za-z0-9_-]"),
        ("MP_verify_big.txt", "x".repeat(5000), "bytes"),
    ] {
        let f = s.dir.join(name);
        std::fs::write(&f, content).expect("write");
        let (code, _, err) = run(
            &s.config,
            &[OsStr::new("verify-file"), OsStr::new("add"), f.as_os_str()],
            "",
        );
        assert_eq!(code, 1, "{name}: {err}");
        assert!(err.contains(needle), "{name}: {err}");
        assert!(!verify_dir.join(name).exists(), "{name} copied");
    }
    let (code, out, err) = run(&s.config, &["check"], "");
    assert_eq!(code, 1, "no WeChat at this api_base: {out}{err}");
    assert!(
        out.contains("domain-check files in") && out.contains("MP_verify_AbC123xyz.txt"),
        "check lists the verify files: {out}"
    );
    let missing = s.dir.join("MP_verify_missing.txt");
    let (code, _, err) = run(
        &s.config,
        &[
            OsStr::new("verify-file"),
            OsStr::new("add"),
            missing.as_os_str(),
        ],
        "",
    );
    assert_eq!(code, 1);
    assert!(err.contains("cannot read"), "{err}");
}

#[test]
fn check_names_first_call_errors_and_the_public_url_rules() {
    let fake = support::FakeWeChat::start(APP_ID, APP_SECRET);

    // A root https URL behind a loopback listener with trust_proxy: all well.
    let s = setup(
        "cli-check",
        "https://jw.example.edu.cn",
        "trust_proxy = true",
        &fake.url,
    );
    let (code, out, err) = run(&s.config, &["check"], "");
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("WeChat credentials OK") && !out.contains("warning"),
        "{out}"
    );

    // trust_proxy off behind a loopback listener: a warning, still exit 0.
    let s = setup(
        "cli-check-proxy",
        "https://jw.example.edu.cn",
        "",
        &fake.url,
    );
    let (code, out, err) = run(&s.config, &["check"], "");
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("warning") && out.contains("trust_proxy = true"),
        "{out}"
    );

    // A path, or plain http on a real domain: problems, exit 1.
    for url in [
        "https://jw.example.edu.cn/grades",
        "http://jw.example.edu.cn",
    ] {
        let s = setup("cli-check-url", url, "trust_proxy = true", &fake.url);
        let (code, out, err) = run(&s.config, &["check"], "");
        assert_eq!(code, 1, "{url}: {out}{err}");
        assert!(err.contains("problem: public_url"), "{url}: {err}");
    }

    // First-call errcodes, each with its fix.
    let s = setup(
        "cli-check-codes",
        "https://jw.example.edu.cn",
        "trust_proxy = true",
        &fake.url,
    );
    for (errcode, needles) in [
        (40164, &["40164", "203.0.113.7", "IP白名单"][..]),
        (40125, &["40125", "app_secret"]),
        (40001, &["40001", "app_secret"]),
        (40013, &["40013", "app_id"]),
        (48001, &["48001", "verified"]),
    ] {
        fake.script("/cgi-bin/stable_token", &[errcode]);
        let (code, out, err) = run(&s.config, &["check"], "");
        assert_eq!(code, 1, "{errcode}: {out}{err}");
        for n in needles {
            assert!(err.contains(n), "{errcode}: {n} missing from {err}");
        }
    }
}
