//! One error type for request handling, [`AppError`]; its HTTP status and the friendly Chinese
//! page it shows are decided in one place.

use std::fmt;

use crate::store::StoreError;
use crate::wechat::client::WxError;

/// Why an OAuth callback could not sign the visitor in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OAuthFailure {
    /// The user pressed "refuse" (no `code`).
    Refused,
    /// `state` missing, unknown, from another browser or expired.
    BadState,
    /// WeChat said the code is invalid, used or expired.
    BadCode,
    /// A snapshot (virtual) user: the page was opened outside WeChat proper.
    Snapshot,
}

#[derive(Debug)]
pub enum AppError {
    NotFound,
    /// Not found, with a page of its own and a link onwards.
    NotFoundWith {
        heading: &'static str,
        message: String,
        link: (&'static str, &'static str),
    },
    /// A form's CSRF token or Origin was wrong.
    Csrf,
    /// A bad request with a message fit for the visitor.
    BadRequest(String),
    /// Over the body bound for the route.
    TooLarge {
        limit: u64,
    },
    /// Rate limited; `until` is a human time like "21:30".
    TooMany {
        until: String,
        message: String,
    },
    /// A conflict with the current state, message fit for the visitor.
    Conflict(String),
    Forbidden(String),
    OAuth(OAuthFailure),
    WeChat(WxError),
    Store(StoreError),
    /// A bug or an unexpected fault; the text goes to the log only.
    Internal(String),
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppError::NotFound | AppError::NotFoundWith { .. } => f.write_str("not found"),
            AppError::Csrf => f.write_str("CSRF check failed"),
            AppError::BadRequest(m) => write!(f, "bad request: {m}"),
            AppError::TooLarge { limit } => write!(f, "body over {limit} bytes"),
            AppError::TooMany { until, .. } => write!(f, "rate limited until {until}"),
            AppError::Conflict(m) => write!(f, "conflict: {m}"),
            AppError::Forbidden(m) => write!(f, "forbidden: {m}"),
            AppError::OAuth(o) => write!(f, "oauth: {o:?}"),
            AppError::WeChat(e) => write!(f, "wechat: {e}"),
            AppError::Store(e) => write!(f, "store: {e}"),
            AppError::Internal(m) => write!(f, "internal: {m}"),
        }
    }
}

impl std::error::Error for AppError {}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        AppError::Store(e)
    }
}

impl From<WxError> for AppError {
    fn from(e: WxError) -> Self {
        AppError::WeChat(e)
    }
}

/// What the error page shows.
pub struct ErrorPage {
    pub status: u16,
    pub heading: &'static str,
    pub message: String,
    /// A link onwards: (url, label), e.g. "try again" through web authorization.
    pub link: Option<(&'static str, &'static str)>,
}

impl AppError {
    pub fn status(&self) -> u16 {
        self.page().status
    }

    pub fn page(&self) -> ErrorPage {
        const RETRY: Option<(&str, &str)> = Some(("/wx/oauth/start?next=/", "重新进入"));
        let p = |status, heading, message: &str, retry: bool| ErrorPage {
            status,
            heading,
            message: message.to_string(),
            link: if retry { RETRY } else { None },
        };
        match self {
            AppError::NotFound => p(404, "页面不存在", "你访问的页面不存在或已被移除。", false),
            AppError::NotFoundWith { heading, message, link } => ErrorPage {
                status: 404,
                heading,
                message: message.clone(),
                link: Some(*link),
            },
            AppError::Csrf => p(
                403,
                "请求已失效",
                "页面已过期或来源不明，请返回后刷新页面再试。",
                false,
            ),
            AppError::BadRequest(m) => p(400, "请求有误", m, false),
            AppError::TooLarge { limit } => ErrorPage {
                status: 413,
                heading: "内容过大",
                message: format!("提交的内容超过上限（{}）。", human_size(*limit)),
                link: None,
            },
            AppError::TooMany { message, .. } => p(429, "操作过于频繁", message, false),
            AppError::Conflict(m) => p(409, "无法完成", m, false),
            AppError::Forbidden(m) => p(403, "无权访问", m, false),
            AppError::OAuth(OAuthFailure::Refused) => p(
                403,
                "未授权",
                "你拒绝了微信授权，我们无法确认你的身份。如需查询成绩，请重新进入并点击“允许”。",
                true,
            ),
            AppError::OAuth(OAuthFailure::BadState) => p(
                400,
                "登录已失效",
                "登录链接已过期或不属于当前浏览器，请重新进入。",
                true,
            ),
            AppError::OAuth(OAuthFailure::BadCode) => p(
                400,
                "授权已失效",
                "微信授权码无效或已被使用，请重新进入。",
                true,
            ),
            AppError::OAuth(OAuthFailure::Snapshot) => p(
                403,
                "请在微信中打开",
                "你正在浏览页面快照，无法确认身份。请点击页面下方“使用完整服务”，或从公众号菜单重新进入。",
                false,
            ),
            AppError::WeChat(e) if e.is_timeout() => p(
                504,
                "微信响应超时",
                "微信服务器暂时没有响应，请稍后重试。",
                true,
            ),
            AppError::WeChat(_) => p(
                502,
                "微信服务暂时不可用",
                "与微信服务器通信时出错，请稍后重试。",
                true,
            ),
            AppError::Store(_) | AppError::Internal(_) => p(
                500,
                "服务器开小差了",
                "服务器内部错误，请稍后重试。如果问题持续，请联系教务处。",
                false,
            ),
        }
    }
}

pub fn human_size(bytes: u64) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
    } else if bytes >= 1024 {
        format!("{:.1} KB", bytes as f64 / 1024.0)
    } else {
        format!("{bytes} B")
    }
}
