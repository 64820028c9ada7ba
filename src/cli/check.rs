//! `wxgrades check`: the config's own sanity (public_url as WeChat needs it, the proxy settings)
//! and then the WeChat credentials, each refusal named with its fix (`service::wxcheck`).

use crate::config::Config;

/// What `check` found in the config before calling WeChat.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Findings {
    /// Each makes `check` fail (exit 1).
    pub problems: Vec<String>,
    /// Printed; `check` still succeeds.
    pub warnings: Vec<String>,
}

fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare == "localhost"
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Split `host[:port]` (IPv6 in brackets) into the host and whether a port is given.
fn host_and_port(authority: &str) -> (&str, bool) {
    if let Some(end) = authority.strip_prefix('[').and_then(|r| r.find(']')) {
        let host = &authority[..end + 2];
        return (host, authority.len() > host.len());
    }
    match authority.rsplit_once(':') {
        Some((h, _)) => (h, true),
        None => (authority, false),
    }
}

/// The config checks of `wxgrades check` that need no network: `public_url` is https with no
/// path (WeChat authorises whole domains and fetches its check files from the root), and a
/// loopback `listen` (so a proxy in front) comes with `trust_proxy`.
pub fn findings(public_url: &str, listen: &str, trust_proxy: bool) -> Findings {
    let mut f = Findings::default();
    let (https, rest) = match public_url.strip_prefix("https://") {
        Some(r) => (true, r),
        None => (
            false,
            public_url.strip_prefix("http://").unwrap_or(public_url),
        ),
    };
    let cut = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(cut);
    let (host, has_port) = host_and_port(authority);
    let local = is_loopback_host(host);
    if !path.is_empty() {
        f.problems.push(format!(
            "public_url {public_url:?} has a path ({path:?}): wxgrades must be the site's root, \
             because WeChat authorises a whole domain (网页授权域名) and fetches its MP_verify file \
             from the root; use \"{}://{authority}\" and give wxgrades its own (sub)domain",
            if https { "https" } else { "http" }
        ));
    }
    if !https {
        let msg = format!(
            "public_url {public_url:?} is not https: WeChat pages and OAuth need https \
             (put nginx with TLS in front, see deploy/nginx.conf)"
        );
        if local {
            f.warnings.push(format!("{msg}; fine for a local test"));
        } else {
            f.problems.push(msg);
        }
    }
    if has_port && !local {
        f.warnings.push(format!(
            "public_url {public_url:?} names a port: WeChat's 网页授权域名 takes a domain on the \
             standard ports 80/443 only"
        ));
    }
    let listen_loopback = listen
        .parse::<std::net::SocketAddr>()
        .is_ok_and(|a| a.ip().is_loopback());
    if listen_loopback && !trust_proxy && !local {
        f.warnings.push(format!(
            "listen is {listen} (loopback, so a proxy is in front) but trust_proxy is off: every \
             client looks like 127.0.0.1, so one attacker's failed admin logins lock every admin \
             out. Set trust_proxy = true when nginx sets X-Forwarded-For (deploy/nginx.conf does)"
        ));
    }
    f
}

/// What `verify_dir` holds for WeChat's domain checks (网页授权域名 needs one file there).
fn verify_files_line(dir: &std::path::Path) -> String {
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| crate::config::is_verify_file_name(n))
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    if names.is_empty() {
        format!(
            "note: no domain-check file in verify_dir {}: WeChat's 网页授权域名 needs its \
             MP_verify_….txt there (`wxgrades verify-file add FILE`)",
            dir.display()
        )
    } else {
        format!(
            "domain-check files in {}: {}",
            dir.display(),
            names.join(", ")
        )
    }
}

/// Run `wxgrades check`.
pub fn run(cfg: &Config) -> Result<(), String> {
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
    let found = findings(&cfg.public_url, &cfg.listen, cfg.trust_proxy);
    for w in &found.warnings {
        println!("warning: {w}");
    }
    for p in &found.problems {
        eprintln!("problem: {p}");
    }
    println!("{}", verify_files_line(&cfg.verify_dir));
    let report = crate::service::wxcheck::check_wechat(cfg)?;
    println!("{report}");
    match found.problems.len() {
        0 => Ok(()),
        n => Err(format!("{n} problem(s) in the config; see above")),
    }
}
