//! Counters for `/metrics` (Prometheus text format): requests by route and status, a latency
//! histogram, OAuth outcomes, WeChat API errors by errcode, imports and notices.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
    events: Mutex<BTreeMap<(&'static str, String), u64>>,
}

impl Metrics {
    pub fn request(&self, route: &'static str, status: u16, secs: f64) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((route, status)).or_default() += 1;
        }
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us
            .fetch_add((secs * 1e6) as u64, Ordering::Relaxed);
    }

    /// Count one event of a family: `oauth` + outcome, `wechat_error` + errcode, `import` +
    /// result, `notice` + result.
    pub fn event(&self, family: &'static str, label: impl Into<String>) {
        self.add(family, label, 1);
    }

    /// Count `n` events of a family at once (`notice_sender` + `writes`, `claimed`,
    /// `returned`: the grade-notice sender's write transactions and the notices they claimed
    /// and handed back).
    pub fn add(&self, family: &'static str, label: impl Into<String>, n: u64) {
        if let Ok(mut m) = self.events.lock() {
            let c = m.entry((family, label.into())).or_default();
            *c = c.saturating_add(n);
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# TYPE wxgrades_requests_total counter\n");
        if let Ok(m) = self.requests.lock() {
            for ((route, status), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "wxgrades_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
        }
        out.push_str("# TYPE wxgrades_request_seconds histogram\n");
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "wxgrades_request_seconds_bucket{{le=\"{b}\"}} {}",
                self.buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "wxgrades_request_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "wxgrades_request_seconds_sum {}",
            self.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "wxgrades_request_seconds_count {count}");
        if let Ok(m) = self.events.lock() {
            let mut last = "";
            for ((family, label), n) in m.iter() {
                let (name, key) = match *family {
                    "oauth" => ("wxgrades_oauth_total", "outcome"),
                    "wechat_error" => ("wxgrades_wechat_errors_total", "errcode"),
                    "import" => ("wxgrades_imports_total", "result"),
                    "notice" => ("wxgrades_notices_total", "result"),
                    "notice_sender" => ("wxgrades_notice_sender_total", "what"),
                    "wx_message" => ("wxgrades_wx_messages_total", "kind"),
                    other => (other, "label"),
                };
                if name != last {
                    let _ = writeln!(out, "# TYPE {name} counter");
                    last = name;
                }
                let label: String = label
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                    .collect();
                let _ = writeln!(out, "{name}{{{key}=\"{label}\"}} {n}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts() {
        let m = Metrics::default();
        m.request("grades", 200, 0.0015);
        m.event("oauth", "ok");
        m.event("wechat_error", "40029");
        let t = m.render();
        assert!(t.contains("wxgrades_requests_total{route=\"grades\",status=\"200\"} 1"));
        assert!(t.contains("wxgrades_request_seconds_bucket{le=\"0.001\"} 0"));
        assert!(t.contains("wxgrades_request_seconds_bucket{le=\"0.002\"} 1"));
        assert!(t.contains("wxgrades_oauth_total{outcome=\"ok\"} 1"));
        assert!(t.contains("wxgrades_wechat_errors_total{errcode=\"40029\"} 1"));
    }
}
