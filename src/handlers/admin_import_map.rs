//! The column-mapping page for a file no layout reads (`/admin/import/ID/map`: the file's
//! columns with their Excel letters and first rows, one `<select>` per field of ours — those
//! whose header names we know already chosen — an optional preset name) and the presets page
//! (`/admin/presets`: list, delete). Saving and deleting a preset are audited. The work is
//! `service::import::{mapping, presets}`.

use minijinja::{context, Value};

use super::admin::page;
use super::session::AdminPost;
use super::Handled;
use crate::app::App;
use crate::error::AppError;
use crate::http::{Request, Response};
use crate::service::admin::audit::{self, Action};
use crate::service::admin::auth::Admin;
use crate::service::admin::local_datetime;
use crate::service::import::file::ImportFile;
use crate::service::import::jobs::Job;
use crate::service::import::layout::HEADER_SEARCH_ROWS;
use crate::service::import::layout::{fields, Required};
use crate::service::import::mapping::{self, column_letter, ChosenMap, ColumnMap, Sample};
use crate::service::import::plan::ImportKind;
use crate::service::import::presets;
use crate::service::import::table::{HeaderRule, XlsxLimits};

/// The job and its file, while the file waits for a column map.
fn waiting(
    app: &App,
    id: &str,
) -> Result<(std::sync::Arc<Job>, std::sync::Arc<ImportFile>), AppError> {
    let gone = || {
        AppError::NotFoundWith {
        heading: "无法指定列对应",
        message: "找不到这次上传的文件（只有未能识别列的文件才能指定列对应；服务器重启后也不保留）。请重新上传。"
            .into(),
        link: ("/admin/import", "重新上传"),
    }
    };
    let job = app.jobs.get(id).ok_or_else(gone)?;
    if !job.plan().is_some_and(|p| p.needs_mapping) {
        return Err(gone());
    }
    let bytes = job.source().ok_or_else(gone)?;
    Ok((job, bytes))
}

/// The file's header row and first rows; `header_line` names the header row when staff chose
/// it (title rows above a header no layout knows).
fn read_sample(
    app: &App,
    job: &Job,
    bytes: &[u8],
    header_line: Option<&str>,
) -> Result<Sample, AppError> {
    let limits = XlsxLimits::for_upload(app.config.max_upload_bytes);
    let rule = match header_line.and_then(|h| h.trim().parse::<usize>().ok()) {
        Some(line) if line > 0 => HeaderRule::Line(line),
        _ => HeaderRule::Auto,
    };
    mapping::sample(&job.file_name, bytes, &limits, &rule)
        .map_err(|e| AppError::BadRequest(format!("无法读取这个文件：{e}")))
}

/// What the form shows filled in: the choices so far, the preset name, the problems.
#[derive(Default)]
struct Filled {
    chosen: ColumnMap,
    preset_name: String,
    errors: Vec<String>,
}

/// The form: columns, first rows, a select per field (pre-selected from `filled`).
fn form_page(
    app: &App,
    admin: &Admin,
    status: u16,
    (job, sample): (&Job, &Sample),
    filled: Filled,
) -> Handled {
    let Filled {
        chosen,
        preset_name,
        errors,
    } = filled;
    let roster = job.kind == ImportKind::Roster;
    let columns: Vec<Value> = sample
        .headers
        .iter()
        .enumerate()
        .map(|(i, h)| context! { letter => column_letter(i), header => h.clone() })
        .collect();
    let field_rows: Vec<Value> = fields(roster)
        .iter()
        .map(|f| {
            context! {
                key => f.key,
                label => f.label,
                required => matches!(f.required, Required::Yes),
                chosen => chosen.header_for(f.key).unwrap_or("").to_string(),
            }
        })
        .collect();
    page(
        app,
        status,
        "admin/import_map.html",
        Some(admin),
        "import",
        context! {
            id => job.id.clone(),
            kind => job.kind.label(),
            roster => roster,
            file_name => job.file_name.clone(),
            header_line => sample.header_line,
            search_rows => HEADER_SEARCH_ROWS,
            columns => columns,
            rows => sample.rows.clone(),
            fields => field_rows,
            preset_name => preset_name,
            errors => errors,
            cut => sample.headers.len() >= mapping::MAX_COLUMNS,
        },
    )
}

/// GET: the mapping form (`?header=N`: the header is row N).
pub fn form(app: &App, admin: &Admin, req: &Request, id: &str) -> Handled {
    let (job, bytes) = waiting(app, id)?;
    let sample = read_sample(
        app,
        &job,
        bytes.bytes(),
        req.query_param("header").as_deref(),
    )?;
    let filled = Filled {
        chosen: mapping::guess(job.kind == ImportKind::Roster, &sample.headers),
        ..Filled::default()
    };
    form_page(app, admin, 200, (&job, &sample), filled)
}

/// POST: check the map against the file's header row; save it as a preset when named
/// (audited); plan the file again with it → the new preview.
pub fn submit(app: &App, req: &Request, post: &AdminPost, id: &str) -> Handled {
    let (job, bytes) = waiting(app, id)?;
    let form = post.form();
    let sample = read_sample(app, &job, bytes.bytes(), form.get("header_line"))?;
    let roster = job.kind == ImportKind::Roster;
    let pairs: Vec<(String, String)> = fields(roster)
        .iter()
        .filter_map(|f| {
            let v = form.get(&format!("f_{}", f.key))?.trim();
            (!v.is_empty()).then(|| (f.key.to_string(), v.to_string()))
        })
        .collect();
    let preset_name = form.get("preset_name").unwrap_or("").trim().to_string();
    let again = |errors: Vec<String>| {
        let filled = Filled {
            chosen: ColumnMap {
                pairs: pairs.clone(),
            },
            preset_name: preset_name.clone(),
            errors,
        };
        form_page(app, post.admin(), 422, (&job, &sample), filled)
    };
    let map = match ColumnMap::from_names(roster, &pairs) {
        Ok(m) => m,
        Err(e) => return again(vec![e]),
    };
    let checked = if roster {
        map.resolve(
            &crate::service::import::layout::ROSTER_FIELDS,
            &sample.headers,
            sample.header_line,
        )
        .map(|_| ())
    } else {
        map.resolve(
            &crate::service::import::layout::GRADE_FIELDS,
            &sample.headers,
            sample.header_line,
        )
        .map(|_| ())
    };
    if let Err(errors) = checked {
        return again(errors.into_iter().map(|e| e.message).collect());
    }
    let actor = post.admin().actor();
    let source = if preset_name.is_empty() {
        "手动指定的列对应".to_string()
    } else {
        match presets::save(app, &preset_name, job.kind, &sample.headers, &map, &actor) {
            Ok(name) => {
                audit::note(
                    app,
                    &actor,
                    Action::PresetSaved,
                    &format!(
                        "{}《{}》：{}",
                        job.kind.label(),
                        name,
                        describe(&map, roster)
                    ),
                    req.remote,
                );
                format!("预设 {name}")
            }
            Err(e) => return again(vec![e]),
        }
    };
    let next = app.jobs.submit_mapped(
        &actor,
        job.kind,
        &job.file_name,
        bytes,
        job.replace_term,
        Some(ChosenMap { map, source }),
        app.clock.now(),
    )?;
    Ok(Response::redirect(
        303,
        &format!("/admin/import/{}", next.id),
    ))
}

fn describe(map: &ColumnMap, roster: bool) -> String {
    map.listed(roster)
        .iter()
        .map(|(f, h)| format!("{f}={h}"))
        .collect::<Vec<_>>()
        .join("，")
}

/// GET /admin/presets: the saved column maps.
pub fn list(app: &App, admin: &Admin) -> Handled {
    let rows: Vec<Value> = presets::list(app)?
        .into_iter()
        .map(|(name, p)| {
            let roster = p.kind == "roster";
            let map = ColumnMap { pairs: p.mapping };
            context! {
                name => name,
                kind => ImportKind::parse(&p.kind).map(|k| k.label()).unwrap_or("?"),
                mapping => describe(&map, roster),
                by => p.created_by.strip_prefix("admin:").unwrap_or(&p.created_by).to_string(),
                at => local_datetime(p.at),
            }
        })
        .collect();
    page(
        app,
        200,
        "admin/presets.html",
        Some(admin),
        "import",
        context! { presets => rows },
    )
}

/// POST /admin/presets/delete: delete one preset (audited) → the list.
pub fn delete(app: &App, req: &Request, post: &AdminPost) -> Handled {
    let name = post.form().get("name").unwrap_or("").trim().to_string();
    if !presets::remove(app, &name)? {
        return Err(AppError::NotFound);
    }
    audit::note(
        app,
        &post.admin().actor(),
        Action::PresetRemoved,
        &name,
        req.remote,
    );
    Ok(Response::redirect(303, "/admin/presets"))
}
