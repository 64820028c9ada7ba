//! Page rendering: one minijinja Environment with the templates compiled into the binary, or,
//! when `templates_dir` is set, that directory first and the built-in templates for the rest;
//! and the one filter for counts, `thousands` (14877 → 14,877).

use minijinja::{Environment, UndefinedBehavior, Value};
use std::path::PathBuf;

use crate::error::AppError;

/// Every built-in template, by name: each `*.html` under `templates/` (listed by `build.rs`).
pub const TEMPLATES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/templates.rs"));

macro_rules! statics {
    ($(($name:literal, $ctype:literal)),* $(,)?) => {
        &[$(($name, $ctype, include_bytes!(concat!("../static/", $name)) as &[u8])),*]
    };
}

/// Static files served under `/static/`: (name, content type, bytes).
pub const STATIC_FILES: &[(&str, &str, &[u8])] = statics![
    ("app.css", "text/css; charset=utf-8"),
    ("favicon.svg", "image/svg+xml"),
    ("admin.css", "text/css; charset=utf-8"),
];

/// A short fingerprint of the static files, appended to their URLs so browsers may cache them
/// for a year and still see a new version at once.
pub fn static_version() -> String {
    let mut parts: Vec<&[u8]> = Vec::new();
    for (_, _, bytes) in STATIC_FILES {
        parts.push(bytes);
    }
    crate::secret::hex(&crate::secret::sha256(&parts)[..6])
}

/// A whole number written in digits, grouped by thousands: "14877" → "14,877", "-1200" →
/// "-1,200"; anything else is returned as it is.
pub fn thousands(number: &str) -> String {
    let (sign, digits) = match number.strip_prefix('-') {
        Some(d) => ("-", d),
        None => ("", number),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return number.to_string();
    }
    let mut out = String::with_capacity(number.len() + digits.len() / 3);
    out.push_str(sign);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The `thousands` filter: integers grouped ([`thousands`]), other values shown as they are.
fn thousands_filter(v: Value) -> String {
    if v.is_integer() {
        thousands(&v.to_string())
    } else {
        v.to_string()
    }
}

pub struct Views {
    env: Environment<'static>,
}

impl Views {
    /// `globals` are available to every template (app_name, org_name, demo, static_version).
    pub fn new(templates_dir: Option<PathBuf>, globals: Vec<(&'static str, Value)>) -> Views {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_loader(move |name| {
            if let Some(dir) = &templates_dir {
                // Names come from our code only, but refuse anything that is not a plain file name.
                if !name.contains("..") {
                    match std::fs::read_to_string(dir.join(name)) {
                        Ok(s) => return Ok(Some(s)),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => {
                            return Err(minijinja::Error::new(
                                minijinja::ErrorKind::TemplateNotFound,
                                format!("cannot read {}: {e}", dir.join(name).display()),
                            ))
                        }
                    }
                }
            }
            Ok(TEMPLATES
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, s)| s.to_string()))
        });
        for (k, v) in globals {
            env.add_global(k, v);
        }
        env.add_filter("thousands", thousands_filter);
        Views { env }
    }

    pub fn render(&self, name: &str, ctx: Value) -> Result<String, AppError> {
        let t = self
            .env
            .get_template(name)
            .map_err(|e| AppError::Internal(format!("template {name}: {e:#}")))?;
        t.render(ctx)
            .map_err(|e| AppError::Internal(format!("template {name}: {e:#}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles() {
        let v = Views::new(None, vec![]);
        for (name, _) in TEMPLATES {
            assert!(v.env.get_template(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn counts_are_grouped_by_thousands() {
        for (n, shown) in [
            ("0", "0"),
            ("999", "999"),
            ("1000", "1,000"),
            ("14877", "14,877"),
            ("1200000", "1,200,000"),
            ("-1234", "-1,234"),
            ("12.5", "12.5"),
            ("-", "-"),
            ("", ""),
        ] {
            assert_eq!(thousands(n), shown, "{n}");
        }
        let v = Views::new(None, vec![]);
        let t = v
            .env
            .template_from_str("{{ a|thousands }} {{ b|thousands }} {{ c|thousands }}");
        let out = t
            .unwrap()
            .render(minijinja::context! { a => 1234567, b => 3.25, c => "x" })
            .unwrap();
        assert_eq!(out, "1,234,567 3.25 x");
    }

    #[test]
    fn directory_overrides_builtin() {
        let d = std::env::temp_dir().join(format!("wxg-views-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("whoami.html"), "custom {{ 1 + 1 }}").unwrap();
        let v = Views::new(Some(d), vec![]);
        assert_eq!(
            v.render("whoami.html", Value::UNDEFINED).unwrap(),
            "custom 2"
        );
    }
}
