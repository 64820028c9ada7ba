//! The operator's commands around admins and the data file: `admin add|passwd|list|remove`,
//! `export grades`, `backup` and `restore`. `cli.rs` parses the command line and calls these;
//! each returns a message for the operator on failure.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::Path;

use crate::config::Config;
use crate::grades::Term;
use crate::service::admin::accounts::Role;
use crate::service::admin::audit::{self, Action};
use crate::service::admin::backup::{note_backup, LastBackup};
use crate::service::admin::{accounts, export, local_datetime, stamp};
use crate::store::backup as store_backup;
use crate::store::{Store, StoreError};

fn now() -> i64 {
    crate::clock::unix_now()
}

/// Open the data file for a command; `instead` says what to do while the server holds it.
fn open(cfg: &Config, must_exist: bool, instead: &str) -> Result<Store, String> {
    if must_exist && !cfg.data.exists() {
        return Err(format!(
            "there is no data file at {} (check `data` in the config)",
            cfg.data.display()
        ));
    }
    Store::open(&cfg.data).map_err(|e| match e {
        StoreError::Locked(p) => format!(
            "the data file {} is in use by another process (most likely the running wxgrades server). {instead}",
            p.display()
        ),
        other => other.to_string(),
    })
}

const STOP_FIRST: &str = "Stop the server first, then run this command again.";

/// Read the new password: one line from stdin, or twice from a no-echo prompt.
fn read_password(from_stdin: bool) -> Result<String, String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .take(4096)
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
        let pw = line.strip_suffix('\n').unwrap_or(&line);
        let pw = pw.strip_suffix('\r').unwrap_or(pw);
        return Ok(pw.to_string());
    }
    if !std::io::stdin().is_terminal() {
        return Err(
            "no terminal to ask for the password on; pipe it in with --password-stdin".into(),
        );
    }
    let first = rpassword::prompt_password("New password (at least 10 characters): ")
        .map_err(|e| format!("cannot read the password: {e}"))?;
    accounts::check_password(&first).map_err(|e| e.to_string())?;
    let again = rpassword::prompt_password("Repeat the password: ")
        .map_err(|e| format!("cannot read the password: {e}"))?;
    if first != again {
        return Err("the two passwords differ; nothing changed".into());
    }
    Ok(first)
}

/// `wxgrades admin add NAME --role ROLE` (`add`: the new account's role) / `admin passwd NAME`
/// (`add` None).
pub fn admin_set(
    cfg: &Config,
    name: &str,
    add: Option<Role>,
    from_stdin: bool,
) -> Result<(), String> {
    let new = add.is_some();
    accounts::check_name(name).map_err(|e| e.to_string())?;
    let store = open(cfg, false, STOP_FIRST)?;
    // Fail early, before asking for a password that cannot be used.
    let exists = store
        .admin_account(name)
        .map_err(|e| e.to_string())?
        .is_some();
    if new && exists {
        return Err(accounts::AccountError::Exists(name.into()).to_string());
    }
    if !new && !exists {
        return Err(accounts::AccountError::Missing(name.into()).to_string());
    }
    let password = read_password(from_stdin)?;
    let t = now();
    let (result, action, done) = if let Some(role) = add {
        (
            accounts::add_with_role(&store, name, &password, role, t),
            Action::AccountAdded,
            match role {
                Role::Admin => "added (role admin)",
                Role::Registrar => "added (role registrar)",
                Role::Viewer => "added (role viewer)",
            },
        )
    } else {
        (
            accounts::set_password(&store, name, &password, t),
            Action::PasswordChanged,
            "password changed (their sessions have ended)",
        )
    };
    result.map_err(|e| e.to_string())?;
    let detail = match add {
        Some(role) => format!("{name}（{role}）"),
        None => name.to_string(),
    };
    audit::record(&store, t, "cli", action, &detail, None);
    println!("admin {name}: {done}");
    Ok(())
}

/// `wxgrades admin list`.
pub fn admin_list(cfg: &Config) -> Result<(), String> {
    let store = open(cfg, false, STOP_FIRST)?;
    let all = store.admin_accounts().map_err(|e| e.to_string())?;
    if all.is_empty() {
        println!("no admins yet; add one with `wxgrades admin add NAME`");
    }
    for a in all {
        println!(
            "{}\trole {}\tcreated {}\tpassword set {}",
            a.name,
            a.role,
            local_datetime(a.created),
            local_datetime(a.updated)
        );
    }
    Ok(())
}

/// `wxgrades admin remove NAME`.
pub fn admin_remove(cfg: &Config, name: &str) -> Result<(), String> {
    let store = open(cfg, false, STOP_FIRST)?;
    accounts::remove(&store, name).map_err(|e| e.to_string())?;
    audit::record(&store, now(), "cli", Action::AccountRemoved, name, None);
    println!("admin {name}: removed (their sessions have ended)");
    Ok(())
}

/// `wxgrades export grades [--term TERM] [-o FILE]`.
pub fn export_grades(
    cfg: &Config,
    term: Option<&str>,
    output: Option<&Path>,
) -> Result<(), String> {
    let term = match term {
        Some(t) => Some(Term::parse(t).map_err(|e| format!("--term: {e}"))?),
        None => None,
    };
    let term = term.as_ref().map(|t| t.as_str());
    let store = open(
        cfg,
        true,
        "While it runs, download the same CSV from /admin/export.csv.",
    )?;
    let rows = match output {
        Some(path) => {
            let tmp = path.with_extension("csv.tmp");
            let written = std::fs::File::create(&tmp)
                .map_err(|e| format!("cannot create {}: {e}", tmp.display()))
                .and_then(|f| {
                    let mut w = std::io::BufWriter::new(f);
                    let n = export::write_csv(&store, term, &mut w).map_err(|e| e.to_string())?;
                    let f = w.into_inner().map_err(|e| e.to_string())?;
                    f.sync_all().map_err(|e| e.to_string())?;
                    Ok(n)
                })
                .and_then(|n| {
                    std::fs::rename(&tmp, path)
                        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                    Ok(n)
                });
            if written.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            written?
        }
        None => {
            let out = std::io::stdout();
            let mut w = std::io::BufWriter::new(out.lock());
            let n = export::write_csv(&store, term, &mut w).map_err(|e| e.to_string())?;
            w.flush().map_err(|e| e.to_string())?;
            n
        }
    };
    audit::record(
        &store,
        now(),
        "cli",
        Action::Export,
        &format!("{}：{rows} 行", term.unwrap_or("全部学期")),
        None,
    );
    if let Some(p) = output {
        eprintln!("wrote {rows} grade rows to {}", p.display());
    }
    Ok(())
}

/// `wxgrades backup FILE`.
pub fn backup(cfg: &Config, dest: &Path) -> Result<(), String> {
    if store_backup::is_same_file(dest, &cfg.data) {
        return Err(format!(
            "{} is the data file itself; name another file",
            dest.display()
        ));
    }
    if dest.is_dir() {
        return Err(format!(
            "{} is a directory; name the backup file",
            dest.display()
        ));
    }
    let store = open(
        cfg,
        true,
        &format!(
            "While it runs, copy a snapshot from {} (written every {} hours) or download one from /admin/backup.",
            cfg.backup.dir.display(),
            cfg.backup.every_hours
        ),
    )?;
    let info = store.write_snapshot(dest).map_err(|e| e.to_string())?;
    let t = now();
    note_backup(
        &store,
        t,
        "cli",
        &LastBackup {
            at: t,
            kind: "cli".into(),
            file: dest.display().to_string(),
            bytes: info.bytes,
        },
    );
    println!(
        "wrote {} ({} rows, {})",
        dest.display(),
        info.rows,
        crate::error::human_size(info.bytes)
    );
    println!("{}", key_note(cfg));
    Ok(())
}

/// The verification key lives beside the data file, not in it (nor in any backup).
fn key_note(cfg: &Config) -> String {
    format!(
        "note: the key of the verification values, {}, is not in backups; keep one copy of it \
         with them (without it, students cannot bind after a restore on another machine)",
        crate::service::verify::key_path(&cfg.data).display()
    )
}

fn describe(s: &store_backup::BackupSummary) -> String {
    format!(
        "schema {}, {} students, {} bindings, {} grade rows, {} imports, {} admins, {}",
        s.schema_version,
        s.students,
        s.bindings,
        s.grades,
        s.imports,
        s.admins,
        crate::error::human_size(s.bytes)
    )
}

/// `wxgrades restore [--check] FILE`.
pub fn restore(cfg: &Config, file: &Path, check_only: bool) -> Result<(), String> {
    let refuse = |e: StoreError| {
        match e {
        StoreError::Locked(p) => format!(
            "the data file {} is in use by another process (most likely the running wxgrades server). \
             Stop the server, run the restore, then start it again",
            p.display()
        ),
        other => format!("{} cannot be restored: {other}", file.display()),
    }
    };
    if check_only {
        let (summary, _) =
            store_backup::check_backup(file, &std::env::temp_dir(), false).map_err(refuse)?;
        println!("{}: a good backup ({})", file.display(), describe(&summary));
        return Ok(());
    }
    let t = now();
    let restored = store_backup::restore(file, &cfg.data, &stamp(t)).map_err(refuse)?;
    if let Ok(store) = Store::open(&cfg.data) {
        audit::record(
            &store,
            t,
            "cli",
            Action::Restore,
            &format!("从 {} 恢复", file.display()),
            None,
        );
    }
    println!(
        "restored {} into {} ({})",
        file.display(),
        cfg.data.display(),
        describe(&restored.summary)
    );
    if let Some(old) = restored.replaced {
        println!("the data file it replaced is kept as {}", old.display());
    }
    if !crate::service::verify::key_path(&cfg.data).exists() {
        println!("{}", key_note(cfg));
    }
    Ok(())
}
