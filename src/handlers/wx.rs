//! `GET /wx` (server verification) and `POST /wx` (messages and events pushed by WeChat).
//! Thin: read the query and body, let `service::messages` decide, answer in plain text or XML.
//! Refusals are short plain-text bodies: WeChat reads only the status.

use crate::app::App;
use crate::http::{Request, Response};
use crate::service::messages::{self, Refusal, WxQuery};

fn query(req: &Request) -> WxQuery {
    let q = |k: &str| req.query_param(k);
    WxQuery {
        signature: q("signature").unwrap_or_default(),
        timestamp: q("timestamp").unwrap_or_default(),
        nonce: q("nonce").unwrap_or_default(),
        echostr: q("echostr"),
        encrypt_type: q("encrypt_type"),
        msg_signature: q("msg_signature"),
    }
}

fn refused(r: &Refusal) -> Response {
    Response::text(r.status(), r.message())
}

pub fn verify(app: &App, req: &Request) -> Response {
    match messages::echo(app, &app.wx_inbox, &query(req)) {
        Ok(echostr) => Response::text(200, echostr),
        Err(r) => refused(&r),
    }
}

pub fn message(app: &App, req: &Request) -> Response {
    let started = std::time::Instant::now();
    let resp = match messages::receive(app, &app.wx_inbox, &query(req), &req.body) {
        Ok(a) if a.xml => Response::new(
            200,
            "application/xml; charset=utf-8",
            crate::http::Body::Bytes(a.body.into_bytes()),
        ),
        Ok(a) => Response::text(200, a.body),
        Err(r) => refused(&r),
    };
    if started.elapsed().as_secs() >= 4 {
        log::warn!(
            "a WeChat message took {:.1} s to answer (WeChat gives up at 5 s)",
            started.elapsed().as_secs_f64()
        );
    }
    resp
}
