//! `wxgrades releases list|publish ID|withdraw ID`: the staged releases (定时发布) from the
//! command line, through the same service as `/admin/releases` (server stopped). Notices a
//! publish writes are sent by the server when it next runs.

use super::ReleasesCommand;
use crate::config::Config;
use crate::error::AppError;
use crate::service::admin::audit::{self, Action};
use crate::service::notices::Wake;
use crate::service::releases::{self, Release, ReleaseState};
use crate::service::Ctx;

type Outcome = Result<(), String>;

fn message(e: AppError) -> String {
    match e {
        AppError::NotFoundWith { message, .. } => message,
        AppError::Conflict(m) | AppError::BadRequest(m) => m,
        AppError::Store(e) => e.to_string(),
        other => other.to_string(),
    }
}

fn state(r: &Release) -> &'static str {
    match r.state {
        ReleaseState::Scheduled => "scheduled",
        ReleaseState::Published => "published",
        ReleaseState::Withdrawn => "withdrawn",
    }
}

pub fn run(cfg: Config, c: &ReleasesCommand) -> Outcome {
    let ctx = Ctx::new(cfg).map_err(|e| e.to_string())?;
    match *c {
        ReleasesCommand::List => {
            let all = releases::list(&ctx).map_err(message)?;
            if all.is_empty() {
                println!("no releases");
            }
            for r in all {
                println!(
                    "#{}\t{}\t{} (China time)\t{}\tadd {}, change {}, remove {}\t{}{}",
                    r.id,
                    state(&r),
                    crate::clock::local_datetime(r.publish_at),
                    r.file_name,
                    r.added,
                    r.changed,
                    r.removed,
                    if r.notify { "notify" } else { "no notices" },
                    match r.state {
                        ReleaseState::Published =>
                            format!("\t{} rows changed, {} notices", r.published_rows, r.notices),
                        _ => String::new(),
                    }
                );
            }
            Ok(())
        }
        ReleasesCommand::Publish { id } => {
            let r = releases::publish(&ctx, &Wake::default(), id, "cli").map_err(message)?;
            audit::note(
                &ctx,
                "cli",
                Action::ReleasePublished,
                &format!(
                    "发布 #{}《{}》，{} 条成绩生效，{} 条通知",
                    r.id, r.file_name, r.published_rows, r.notices
                ),
                None,
            );
            println!(
                "published release #{}: {} rows changed, {} notices written (sent by the server when it runs)",
                r.id, r.published_rows, r.notices
            );
            Ok(())
        }
        ReleasesCommand::Withdraw { id } => {
            let r = releases::withdraw(&ctx, id, "cli").map_err(message)?;
            audit::note(
                &ctx,
                "cli",
                Action::ReleaseWithdrawn,
                &format!("撤回 #{}《{}》", r.id, r.file_name),
                None,
            );
            println!("withdrew release #{}: nothing was published", r.id);
            Ok(())
        }
    }
}
