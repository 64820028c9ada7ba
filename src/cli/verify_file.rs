//! `wxgrades verify-file add FILE`: put a WeChat domain-check file (`MP_verify_….txt`) into
//! `verify_dir`, where the server answers it at `/<name>` (names: `config::is_verify_file_name`).

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::config::{is_verify_file_name, Config, VERIFY_FILE_RULE};

/// Largest file accepted: WeChat's files hold a 16-character code; 4 KiB leaves room for any
/// other domain-check file and keeps a wrong file (a PDF, an image) out.
const MAX_BYTES: u64 = 4096;

/// Copy `file` into `cfg.verify_dir` under its own name; returns where it went.
pub fn add(cfg: &Config, file: &Path) -> Result<PathBuf, String> {
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| format!("{}: not a file name", file.display()))?;
    if !is_verify_file_name(name) {
        return Err(format!(
            "{name:?}: a domain-check file's name must match {VERIFY_FILE_RULE} (as WeChat's \
             MP_verify_<code>.txt does); use the file exactly as the 公众号 settings offer it"
        ));
    }
    let meta =
        std::fs::metadata(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", file.display()));
    }
    if meta.len() > MAX_BYTES {
        return Err(format!(
            "{} is {} bytes; a domain-check file is a few bytes of text (at most {MAX_BYTES})",
            file.display(),
            meta.len()
        ));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(file)
        .and_then(|f| f.take(MAX_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    if bytes.len() as u64 > MAX_BYTES || bytes.contains(&0) {
        return Err(format!("{} is not a small text file", file.display()));
    }
    let dir = &cfg.verify_dir;
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create verify_dir {}: {e}", dir.display()))?;
    let dest = dir.join(name);
    // Write beside the destination, then rename: the server never serves half a file.
    let tmp = dir.join(format!(".{name}.tmp"));
    let written = std::fs::write(&tmp, &bytes)
        .and_then(|()| std::fs::rename(&tmp, &dest))
        .map_err(|e| format!("cannot write {}: {e}", dest.display()));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    Ok(dest)
}
