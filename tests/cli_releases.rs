//! `wxgrades import grades FILE --publish-at` and `wxgrades releases list|publish|withdraw`
//! end to end through the binary: held grades are not exported (not visible) until
//! published; a withdrawn release never is; a past time and an unknown id fail with exit 1.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use support::{APP_ID, APP_SECRET};

fn setup(name: &str) -> (PathBuf, PathBuf) {
    let dir = support::temp_dir(name);
    let config = dir.join("wxgrades.toml");
    let toml = format!(
        "listen = \"127.0.0.1:18080\"\npublic_url = \"https://jw.example.edu.cn\"\ndata = \"{}\"\n\
         [wechat]\napp_id = \"{APP_ID}\"\napp_secret = \"{APP_SECRET}\"\ntoken = \"testtoken\"\n\
         api_base = \"http://127.0.0.1:9\"\nopen_base = \"http://127.0.0.1:9\"\n\
         [backup]\ndir = \"{}\"\n",
        dir.join("data.redb").display(),
        dir.join("backups").display(),
    );
    std::fs::write(&config, toml).expect("write config");
    (dir, config)
}

fn run(config: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_wxgrades"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("WXGRADES_CONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("run wxgrades");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(config: &Path, args: &[&str]) -> String {
    let (code, out, err) = run(config, args);
    assert_eq!(code, 0, "{args:?}: {out}{err}");
    out
}

#[test]
fn held_imports_publish_and_withdraw_from_the_command_line() {
    let (dir, config) = setup("cli-releases");
    let file = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write");
        p.display().to_string()
    };
    let roster = file("r.csv", "学号,姓名,身份证后六位\n2024001,张三,12345X\n");
    let first = file(
        "g1.csv",
        "学号,学期,课程代码,课程名称,学分,成绩\n2024001,2025-2026-1,MA2001,线性代数,3,91\n",
    );
    let second = file(
        "g2.csv",
        "学号,学期,课程代码,课程名称,学分,成绩\n2024001,2025-2026-1,PH1001,大学物理,3,77\n",
    );
    let future = wxgrades::clock::local_datetime(wxgrades::clock::unix_now() + 86_400);
    let past = wxgrades::clock::local_datetime(wxgrades::clock::unix_now() - 3600);
    ok(&config, &["import", "roster", &roster]);

    // A past time: exit 1, nothing held or written.
    let (code, _, err) = run(
        &config,
        &["import", "grades", &first, "--publish-at", &past],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("--publish-at") && err.contains("已经过去"),
        "{err}"
    );
    assert!(ok(&config, &["releases", "list"]).contains("no releases"));

    let out = ok(
        &config,
        &["import", "grades", &first, "--publish-at", &future],
    );
    assert!(out.contains("held as release #2"), "{out}");
    let list = ok(&config, &["releases", "list"]);
    assert!(
        list.contains("#2\tscheduled") && list.contains(&future),
        "{list}"
    );
    let export = ok(&config, &["export", "grades"]);
    assert!(
        !export.contains("线性代数"),
        "held grades exported: {export}"
    );

    let out = ok(&config, &["releases", "publish", "2"]);
    assert!(
        out.contains("published release #2: 1 rows changed"),
        "{out}"
    );
    assert!(ok(&config, &["export", "grades"]).contains("线性代数"));
    let (code, _, err) = run(&config, &["releases", "publish", "2"]);
    assert_eq!(code, 1);
    assert!(err.contains("已经发布"), "{err}");

    ok(
        &config,
        &["import", "grades", &second, "--publish-at", &future],
    );
    let out = ok(&config, &["releases", "withdraw", "3"]);
    assert!(out.contains("withdrew release #3"), "{out}");
    let list = ok(&config, &["releases", "list"]);
    assert!(
        list.contains("#3\twithdrawn") && list.contains("#2\tpublished"),
        "{list}"
    );
    assert!(!ok(&config, &["export", "grades"]).contains("大学物理"));

    let (code, _, err) = run(&config, &["releases", "withdraw", "99"]);
    assert_eq!(code, 1);
    assert!(err.contains("99"), "{err}");
}
