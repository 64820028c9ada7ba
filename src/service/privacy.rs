//! Personal information (PIPL) for students: the privacy notice of the bind page (from
//! `[privacy]`, with a default that names what is stored, why, for how long and whom to ask),
//! everything held about a student gathered for download (JSON and CSV), the deletion of their
//! binding and WeChat data (audited; grades stay, they are the school's records), and the
//! housekeeping sweeps of old sign-ins (`keep_signins_days`) and of the log file's dated days
//! (`keep_logs_days`, files from `log_files`).

use std::net::IpAddr;

use serde_json::{json, Value};

use crate::clock::local_datetime;
use crate::config::Config;
use crate::error::AppError;
use crate::grades::GradeRecord;
use crate::service::admin::audit::{self, Action};
use crate::service::admin::export::cell;
use crate::service::{Changed, Ctx};
use crate::store::auth::WxUser;
use crate::store::notices::Notice;
use crate::store::privacy::SignIn;
use crate::store::students::{BindEvent, Binding, Student};

/// At most this many sign-ins and bind events go into one export (the sweep keeps far fewer).
const EXPORT_LIMIT: usize = 10_000;

/// The bind page's privacy notice: `[privacy] notice`, or the default text.
pub fn notice(config: &Config) -> String {
    if !config.privacy.notice.is_empty() {
        return config.privacy.notice.clone();
    }
    format!(
        "为了让你在微信里查成绩，我们保存：你的学号与这个微信的绑定关系、微信给出的标识（openid）和你授权时的昵称头像、\
         登录记录，以及发给你的成绩通知记录。它们只用于核对身份、显示你的成绩和发送成绩通知，不会提供给其他人。\
         登录记录保存 {} 天，服务器日志（访问时间和地址，不含成绩）保存 {} 天；绑定关系保存到你解除绑定或删除数据为止；\
         成绩是学校的教学记录，由教务处保存。你可以随时在“我的数据”里下载或删除这些信息。",
        config.privacy.keep_signins_days,
        config.privacy.keep_logs_days
    )
}

/// Whom students ask about their data: `[privacy] contact`, or the default.
pub fn contact(config: &Config) -> String {
    if config.privacy.contact.is_empty() {
        "学院教务老师或学校教务处".into()
    } else {
        config.privacy.contact.clone()
    }
}

/// Everything held about the WeChat user `openid` and the student it is bound to.
pub struct MyData {
    pub openid: String,
    pub binding: Option<Binding>,
    pub student: Option<Student>,
    pub wx_user: Option<WxUser>,
    pub grades: Vec<GradeRecord>,
    pub signins: Vec<SignIn>,
    pub bind_events: Vec<BindEvent>,
    pub notices: Vec<Notice>,
    pub notices_on: bool,
}

/// Gather [`MyData`] for `openid`.
pub fn my_data(ctx: &Ctx, openid: &str) -> Result<MyData, AppError> {
    let binding = ctx.store.binding(openid)?;
    let sid = binding.as_ref().map(|b| b.student_id.clone());
    let (student, grades, bind_events) = match &sid {
        Some(sid) => (
            ctx.store.student(sid)?,
            ctx.store.grades_of(sid)?,
            ctx.store.bind_events(sid, EXPORT_LIMIT)?,
        ),
        None => (None, Vec::new(), Vec::new()),
    };
    let notices = ctx
        .store
        .notices()?
        .into_iter()
        .filter(|n| n.openid == openid)
        .collect();
    Ok(MyData {
        openid: openid.to_string(),
        binding,
        student,
        wx_user: ctx.store.wx_user(openid)?,
        grades,
        signins: ctx.store.signins(openid, EXPORT_LIMIT)?,
        bind_events,
        notices,
        notices_on: ctx.store.notices_on(openid)?,
    })
}

fn grade_json(g: &GradeRecord) -> Value {
    json!({
        "学期": g.term.as_str(),
        "课程代码": g.course_code,
        "课程名称": g.course_name,
        "学分": g.credit.to_string(),
        "成绩": g.score.to_string(),
        "考试性质": g.kind.label(),
        "课程性质": g.course.nature,
        "开课学院": g.course.college,
        "教学班": g.course.class_group,
        "成绩构成": g.course.components.iter().map(|(l, v)| json!({ "项目": l, "成绩": v })).collect::<Vec<_>>(),
    })
}

impl MyData {
    /// The export as JSON (keys in Chinese, times in China time).
    pub fn to_json(&self) -> Value {
        json!({
            "微信": {
                "openid": self.openid,
                "昵称": self.wx_user.as_ref().and_then(|u| u.nickname.clone()),
                "头像": self.wx_user.as_ref().and_then(|u| u.avatar_url.clone()),
                "unionid": self.wx_user.as_ref().and_then(|u| u.unionid.clone()),
                "成绩通知": if self.notices_on { "开启" } else { "关闭" },
            },
            "绑定": self.binding.as_ref().map(|b| json!({
                "学号": b.student_id,
                "绑定时间": local_datetime(b.bound_at),
            })),
            "名单信息": self.student.as_ref().map(|s| json!({
                "学号": s.student_id,
                "姓名": s.name,
                "班级": s.class,
                "专业": s.major,
                "学院": s.college,
                "年级": s.cohort,
            })),
            "成绩": self.grades.iter().map(grade_json).collect::<Vec<_>>(),
            "登录记录": self.signins.iter().map(|s| json!({
                "时间": local_datetime(s.at),
                "授权昵称头像": s.userinfo,
            })).collect::<Vec<_>>(),
            "绑定记录": self.bind_events.iter().map(|e| json!({
                "时间": local_datetime(e.at),
                "操作": if e.action == "bind" { "绑定" } else { "解除绑定" },
            })).collect::<Vec<_>>(),
            "成绩通知记录": self.notices.iter().map(|n| json!({
                "时间": local_datetime(n.created),
                "学期": n.terms,
                "课程": n.courses,
                "状态": format!("{:?}", n.state),
            })).collect::<Vec<_>>(),
        })
    }

    /// The export as CSV (UTF-8 with BOM, one record a line): 类别, 时间, 项目, 内容.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("\u{feff}类别,时间,项目,内容\r\n");
        let mut line = |kind: &str, at: &str, item: &str, value: &str| {
            out.push_str(&format!(
                "{},{},{},{}\r\n",
                cell(kind),
                cell(at),
                cell(item),
                cell(value)
            ));
        };
        line("微信", "", "openid", &self.openid);
        if let Some(u) = &self.wx_user {
            line("微信", "", "昵称", u.nickname.as_deref().unwrap_or(""));
            line("微信", "", "头像", u.avatar_url.as_deref().unwrap_or(""));
        }
        line(
            "微信",
            "",
            "成绩通知",
            if self.notices_on { "开启" } else { "关闭" },
        );
        if let Some(b) = &self.binding {
            line("绑定", &local_datetime(b.bound_at), "学号", &b.student_id);
        }
        if let Some(s) = &self.student {
            line("名单信息", "", "姓名", &s.name);
            for (k, v) in [
                ("班级", &s.class),
                ("专业", &s.major),
                ("学院", &s.college),
                ("年级", &s.cohort),
            ] {
                if let Some(v) = v {
                    line("名单信息", "", k, v);
                }
            }
        }
        for g in &self.grades {
            let item = format!(
                "{} {} {}（{}）",
                g.term.as_str(),
                g.course_code,
                g.course_name,
                g.kind.label()
            );
            let mut value = format!("{}；{} 学分", g.score, g.credit);
            if let Some(n) = &g.course.nature {
                value.push_str(&format!("；{n}"));
            }
            for (l, v) in &g.course.components {
                value.push_str(&format!("；{l} {v}"));
            }
            line("成绩", "", &item, &value);
        }
        for s in &self.signins {
            let how = if s.userinfo {
                "授权昵称头像"
            } else {
                "静默识别"
            };
            line("登录记录", &local_datetime(s.at), "登录", how);
        }
        for e in &self.bind_events {
            let what = if e.action == "bind" {
                "绑定"
            } else {
                "解除绑定"
            };
            line("绑定记录", &local_datetime(e.at), what, &e.student_id);
        }
        for n in &self.notices {
            let item = n.terms.join(" ");
            let value = format!("{}（{:?}）", n.courses.join("、"), n.state);
            line("成绩通知记录", &local_datetime(n.created), &item, &value);
        }
        out
    }
}

/// Delete the binding and WeChat data of `openid` at the student's own request: written in one
/// transaction, audited (the student ID and a short openid, nothing else), and the student
/// whose pages changed. Grades and the roster entry stay.
pub fn delete_my_data(ctx: &Ctx, openid: &str, ip: Option<IpAddr>) -> Result<Changed, AppError> {
    let now = ctx.clock.now();
    let d = ctx
        .store
        .delete_wechat_data(openid, now, "student:delete")?;
    let short: String = openid.chars().take(8).collect();
    let who = d.student_id.as_deref().unwrap_or("未绑定");
    audit::record(
        &ctx.store,
        now,
        "student",
        Action::Unbind,
        &format!(
            "学生本人删除绑定与微信数据：学号 {who}（微信 {short}…），登录记录 {} 条，成绩通知 {} 条",
            d.signins, d.notices
        ),
        ip,
    );
    Ok(d.student_id.map_or(Changed::Nothing, Changed::Student))
}

/// The housekeeping sweep: drop sign-ins older than `[privacy] keep_signins_days`.
pub fn sweep(ctx: &Ctx) -> Result<usize, AppError> {
    let keep = i64::from(ctx.config.privacy.keep_signins_days) * 86_400;
    Ok(ctx.store.purge_signins(ctx.clock.now() - keep)?)
}

/// The housekeeping sweep of the log file's dated days (`<log_file>.YYYY-MM-DD`) older than
/// `[privacy] keep_logs_days`; nothing without a `log_file`.
pub fn sweep_logs(ctx: &Ctx) -> std::io::Result<usize> {
    match &ctx.config.log_file {
        Some(log_file) => {
            crate::log_files::sweep(log_file, ctx.config.privacy.keep_logs_days, ctx.clock.now())
        }
        None => Ok(0),
    }
}
