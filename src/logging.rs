//! Logging to stderr and optionally a file, through `log` + `simplelog`. Only our own crate
//! logs: the HTTP client's debug lines would carry URLs with secrets in them. The file is
//! started afresh each China day (`log_files::DailyFile`).

use simplelog::{
    ColorChoice, CombinedLogger, ConfigBuilder, LevelFilter, SharedLogger, TermLogger,
    TerminalMode, WriteLogger,
};
use std::path::Path;

/// Start logging. `WXGRADES_LOG` = error|warn|info|debug|trace (default info).
pub fn init(log_file: Option<&Path>) -> Result<(), String> {
    let level = match std::env::var("WXGRADES_LOG").as_deref() {
        Ok("error") => LevelFilter::Error,
        Ok("warn") => LevelFilter::Warn,
        Ok("debug") => LevelFilter::Debug,
        Ok("trace") => LevelFilter::Trace,
        _ => LevelFilter::Info,
    };
    let config = ConfigBuilder::new()
        .add_filter_allow_str("wxgrades")
        .set_target_level(LevelFilter::Off)
        .set_thread_level(LevelFilter::Off)
        .set_time_format_rfc3339()
        .build();
    let mut loggers: Vec<Box<dyn SharedLogger>> = vec![TermLogger::new(
        level,
        config.clone(),
        TerminalMode::Stderr,
        ColorChoice::Never,
    )];
    if let Some(p) = log_file {
        let f = crate::log_files::DailyFile::open(p)
            .map_err(|e| format!("cannot open log_file {}: {e}", p.display()))?;
        loggers.push(WriteLogger::new(level, config, f));
    }
    // A second init (tests) keeps the first logger.
    let _ = CombinedLogger::init(loggers);
    Ok(())
}
