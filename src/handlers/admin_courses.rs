//! The course pages under `/admin/courses`: the list of courses with their statistics (sorted,
//! filtered by term or to the unusual ones, paged), one course with its histogram and its
//! teaching classes, and the statistics as CSV. The figures are `service::admin::stats`.

use std::io::{Seek, SeekFrom};

use minijinja::{context, Value};
use serde::Serialize;

use super::admin::{page, page_number, pager, PAGE};
use super::Handled;
use crate::app::App;
use crate::error::AppError;
use crate::grades::Term;
use crate::http::form::percent_encode;
use crate::http::{Body, Request, Response};
use crate::service::admin::accounts::Role;
use crate::service::admin::audit::{self, Action};
use crate::service::admin::auth::Admin;
use crate::service::admin::stats::{self, one_decimal, CourseStat, Figures};
use crate::service::admin::{overview, stats_csv};

fn course_href(c: &CourseStat) -> String {
    format!(
        "/admin/courses/{}/{}",
        percent_encode(&c.term),
        percent_encode(&c.course_code)
    )
}

/// The figures of a course or class as the templates show them (numbers with one decimal).
fn figures(f: &Figures) -> Value {
    context! {
        count => f.count,
        numeric => f.numeric,
        mean => f.mean_hundredths().map(one_decimal),
        median => f.median.map(one_decimal),
        sd => f.sd.map(one_decimal),
        passed => f.passed,
        decided => f.decided,
        pass => f.pass_basis_points().map(one_decimal),
        excellent => f.excellent,
        excellent_rate => f.excellent_basis_points().map(one_decimal),
        bands => f.histogram.to_vec(),
    }
}

fn course_line(c: &CourseStat) -> Value {
    let unusual = c
        .unusual
        .zip(c.pass_basis_points())
        .map(|(u, p)| u.describe(p));
    context! {
        term => c.term,
        code => c.course_code,
        name => c.course_name,
        href => course_href(c),
        f => figures(&c.figures),
        // Kept for the templates of before: the same figures, flat.
        count => c.count,
        mean => c.mean_hundredths().map(one_decimal),
        pass => c.pass_basis_points().map(one_decimal),
        low_pass => c.unusual.is_some(),
        unusual => unusual,
    }
}

/// The sortable columns of the course list.
const SORTS: [&str; 9] = [
    "term",
    "code",
    "name",
    "count",
    "mean",
    "median",
    "sd",
    "pass",
    "excellent",
];

/// Columns sorted largest first when first clicked.
fn numeric_sort(s: &str) -> bool {
    !matches!(s, "code" | "name")
}

/// The list's query: term, sort, direction, only the unusual ones.
struct ListQuery {
    term: Option<String>,
    sort: String,
    desc: bool,
    unusual_only: bool,
}

impl ListQuery {
    fn parse(req: &Request) -> Result<ListQuery, AppError> {
        let term = req.query_param("term").filter(|t| !t.is_empty());
        if let Some(t) = &term {
            Term::parse(t).map_err(AppError::BadRequest)?;
        }
        let sort = req
            .query_param("sort")
            .filter(|s| SORTS.contains(&s.as_str()))
            .unwrap_or_else(|| "term".into());
        let desc = match req.query_param("dir").as_deref() {
            Some("asc") => false,
            Some("desc") => true,
            _ => numeric_sort(&sort),
        };
        let unusual_only = req.query_param("unusual").as_deref() == Some("1");
        Ok(ListQuery {
            term,
            sort,
            desc,
            unusual_only,
        })
    }

    /// The query string of the filters (term, unusual), ending in `&` when not empty.
    fn filters(&self) -> String {
        let mut q = String::new();
        if let Some(t) = &self.term {
            q.push_str(&format!("term={}&", percent_encode(t)));
        }
        if self.unusual_only {
            q.push_str("unusual=1&");
        }
        q
    }

    /// The courses it selects, in its order.
    fn select<'a>(&self, all: &'a [CourseStat]) -> Vec<&'a CourseStat> {
        let mut list: Vec<&CourseStat> = all
            .iter()
            .filter(|c| self.term.as_deref().is_none_or(|t| c.term == t))
            .filter(|c| !self.unusual_only || c.unusual.is_some())
            .collect();
        // Stable sorts: the secondary order (term desc, code) comes from the cache.
        match self.sort.as_str() {
            "code" => list.sort_by(|a, b| a.course_code.cmp(&b.course_code)),
            "name" => list.sort_by(|a, b| a.course_name.cmp(&b.course_name)),
            "count" => list.sort_by_key(|c| c.count),
            "mean" => list.sort_by_key(|c| c.mean_hundredths()),
            "median" => list.sort_by_key(|c| c.median),
            "sd" => list.sort_by_key(|c| c.sd),
            "pass" => list.sort_by_key(|c| c.pass_basis_points()),
            "excellent" => list.sort_by_key(|c| c.excellent_basis_points()),
            _ => list.sort_by(|a, b| a.term.cmp(&b.term)),
        }
        if self.desc {
            list.reverse();
        }
        list
    }
}

pub fn courses(app: &App, admin: &Admin, req: &Request) -> Handled {
    let stats = overview::stats(app, &app.admin)?;
    let q = ListQuery::parse(req)?;
    let list = q.select(&stats.courses);
    let total = list.len();
    let page_no = page_number(req);
    let rows: Vec<Value> = list
        .iter()
        .skip((page_no - 1) * PAGE)
        .take(PAGE)
        .map(|c| course_line(c))
        .collect();
    let filters = q.filters();
    let headers: Vec<Value> = SORTS
        .iter()
        .map(|s| {
            let active = *s == q.sort;
            let next_dir = match (active, q.desc) {
                (true, true) => "asc",
                (true, false) => "desc",
                _ if numeric_sort(s) => "desc",
                _ => "asc",
            };
            context! {
                key => *s,
                href => format!("/admin/courses?{filters}sort={s}&dir={next_dir}"),
                active => active,
                arrow => if active { if q.desc { "▼" } else { "▲" } } else { "" },
                sort => if active { if q.desc { "descending" } else { "ascending" } } else { "none" },
                numeric => numeric_sort(s) && *s != "term",
            }
        })
        .collect();
    let dir = if q.desc { "desc" } else { "asc" };
    let base = format!("/admin/courses?{filters}sort={}&dir={dir}", q.sort);
    let term_q = q
        .term
        .as_deref()
        .map(|t| format!("?term={}", percent_encode(t)))
        .unwrap_or_default();
    let unusual_in_view = stats
        .courses
        .iter()
        .filter(|c| q.term.as_deref().is_none_or(|t| c.term == t))
        .filter(|c| c.unusual.is_some())
        .count();
    page(
        app,
        200,
        "admin/courses.html",
        Some(admin),
        "courses",
        context! {
            term => q.term,
            terms => stats.terms.clone(),
            unusual_only => q.unusual_only,
            unusual_count => unusual_in_view,
            rows => rows,
            headers => headers,
            pager => pager(page_no, total, &base),
            // Personal data: registrar and admin only (the page shows the link to them only).
            export_href => admin.may(Role::Registrar).then(|| format!("/admin/export.csv{term_q}")),
            stats_href => format!("/admin/courses.csv?{filters}sort={}&dir={dir}", q.sort),
            low_pass => one_decimal(stats::LOW_PASS_BP),
            far => one_decimal(stats::FAR_FROM_TERM_BP),
        },
    )
}

/// The statistics of the courses the list shows (all pages), as CSV.
pub fn courses_csv(app: &App, admin: &Admin, req: &Request) -> Handled {
    let stats = overview::stats(app, &app.admin)?;
    let q = ListQuery::parse(req)?;
    let list = q.select(&stats.courses);
    let mut file = tempfile::tempfile()
        .map_err(|e| AppError::Internal(format!("course statistics: temporary file: {e}")))?;
    let lines = {
        let mut w = std::io::BufWriter::new(&mut file);
        let n = stats_csv::write_csv(list.iter().copied(), &mut w)
            .and_then(|n| std::io::Write::flush(&mut w).map(|_| n))
            .map_err(|e| AppError::Internal(format!("course statistics: {e}")))?;
        n
    };
    file.seek(SeekFrom::Start(0))
        .map_err(|e| AppError::Internal(format!("course statistics: {e}")))?;
    audit::note(
        app,
        &admin.actor(),
        Action::Export,
        &format!(
            "课程统计 {}：{lines} 行",
            q.term.as_deref().unwrap_or("全部学期")
        ),
        req.remote,
    );
    Ok(
        Response::new(200, "text/csv; charset=utf-8", Body::File(file))
            .with_header(
                "Content-Disposition",
                format!(
                    "attachment; filename=\"{}\"",
                    stats_csv::file_name(q.term.as_deref())
                ),
            )
            .with_header("Cache-Control", "no-store"),
    )
}

/// Bars of the score histogram, laid out for an inline SVG.
#[derive(Serialize)]
struct Bar {
    x: u64,
    y: u64,
    width: u64,
    height: u64,
    label: String,
    count: u64,
    fail: bool,
}

const CHART_W: u64 = 640;
const CHART_H: u64 = 220;
const CHART_TOP: u64 = 20;
const CHART_BOTTOM: u64 = 24;

/// The labels of the 10-point bands.
fn band_labels() -> Vec<String> {
    (0..10)
        .map(|i| {
            if i == 9 {
                "90–100".to_string()
            } else {
                format!("{}–{}", i * 10, i * 10 + 9)
            }
        })
        .collect()
}

fn histogram_bars(hist: &[u64; 10]) -> Vec<Bar> {
    let max = hist.iter().copied().max().unwrap_or(0).max(1);
    let slot = CHART_W / 10;
    let plot = CHART_H - CHART_TOP - CHART_BOTTOM;
    hist.iter()
        .zip(band_labels())
        .enumerate()
        .map(|(i, (&n, label))| {
            let height = n * plot / max;
            Bar {
                x: i as u64 * slot + 6,
                y: CHART_TOP + plot - height,
                width: slot - 12,
                height,
                label,
                count: n,
                fail: i < 6,
            }
        })
        .collect()
}

pub fn course(app: &App, admin: &Admin, term: &str, code: &str) -> Handled {
    let stats = overview::stats(app, &app.admin)?;
    let Some(c) = stats.course(term, code) else {
        return Err(AppError::NotFound);
    };
    let classes: Vec<Value> = c
        .classes
        .iter()
        .map(|k| {
            context! {
                name => k.class_group.clone(),
                f => figures(&k.figures),
            }
        })
        .collect();
    page(
        app,
        200,
        "admin/course.html",
        Some(admin),
        "courses",
        context! {
            c => course_line(c),
            term_href => format!("/admin/courses?term={}", percent_encode(term)),
            term_label => Term::parse(term).map(|t| t.label()).unwrap_or_else(|_| term.to_string()),
            numeric => c.numeric,
            passed => c.passed,
            decided => c.decided,
            bars => histogram_bars(&c.histogram),
            band_labels => band_labels(),
            classes => classes,
            chart => context! { width => CHART_W, height => CHART_H, base => CHART_H - CHART_BOTTOM },
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_layout() {
        let mut h = [0u64; 10];
        h[9] = 4;
        h[5] = 2;
        let bars = histogram_bars(&h);
        assert_eq!(bars.len(), 10);
        assert_eq!(bars[9].height, CHART_H - CHART_TOP - CHART_BOTTOM);
        assert_eq!(bars[5].height * 2, bars[9].height);
        assert_eq!(bars[0].height, 0);
        assert_eq!(bars[0].y, CHART_H - CHART_BOTTOM);
        assert_eq!(bars[9].label, "90–100");
        assert!(bars[5].fail && !bars[6].fail);
    }
}
