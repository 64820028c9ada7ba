//! WeChat's domain-check files (`MP_verify_<code>.txt` and the like): which files in
//! `verify_dir` may be served at `/<name>`, and their contents. Only regular files directly in
//! the folder whose names pass `config::is_verify_file_name` (no path separators, no dots but
//! the `.txt`), at most `MAX_BYTES` each; symbolic links and everything else are never served.

use std::io::Read;
use std::path::Path;

use crate::config::is_verify_file_name;

/// A domain-check file holds a short code; anything larger is not one.
pub const MAX_BYTES: u64 = 4096;

/// The contents of `verify_dir/name`, when `name` is a served name and the file is a regular
/// file of at most `MAX_BYTES`; `None` otherwise (a missing folder included).
pub fn read(verify_dir: &Path, name: &str) -> Option<Vec<u8>> {
    if !is_verify_file_name(name) {
        return None;
    }
    let path = verify_dir.join(name);
    // symlink_metadata: a link placed in the folder is not followed out of it.
    let meta = std::fs::symlink_metadata(&path).ok()?;
    if !meta.file_type().is_file() || meta.len() > MAX_BYTES {
        return None;
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    std::fs::File::open(&path)
        .ok()?
        .take(MAX_BYTES)
        .read_to_end(&mut bytes)
        .ok()?;
    Some(bytes)
}

/// The names served from `verify_dir`, sorted.
pub fn list(verify_dir: &Path) -> Vec<String> {
    listing(verify_dir).into_iter().map(|(n, _)| n).collect()
}

/// The files served from `verify_dir` with their sizes in bytes, sorted by name (for the
/// admin dashboard).
pub fn listing(verify_dir: &Path) -> Vec<(String, u64)> {
    let Ok(entries) = std::fs::read_dir(verify_dir) else {
        return Vec::new();
    };
    let mut files: Vec<(String, u64)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            // DirEntry::metadata does not follow symbolic links, as `read` does not.
            let m = e.metadata().ok()?;
            let name = e.file_name().into_string().ok()?;
            (m.file_type().is_file() && m.len() <= MAX_BYTES && is_verify_file_name(&name))
                .then_some((name, m.len()))
        })
        .collect();
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_only_regular_files_with_a_served_name() {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        std::fs::write(d.join("MP_verify_abc123.txt"), b"abc123").expect("write");
        std::fs::write(d.join("notes.md"), b"secret").expect("write");
        std::fs::write(d.join("big.txt"), vec![b'x'; MAX_BYTES as usize + 1]).expect("write");
        std::fs::create_dir(d.join("sub.txt")).expect("mkdir");
        assert_eq!(
            read(d, "MP_verify_abc123.txt").as_deref(),
            Some(&b"abc123"[..])
        );
        for bad in [
            "notes.md",
            "big.txt",
            "sub.txt",
            "../MP_verify_abc123.txt",
            "a/b.txt",
            ".txt",
            "MP_verify_abc123.txt.bak",
            "missing.txt",
        ] {
            assert_eq!(read(d, bad), None, "{bad} must not be served");
        }
        #[cfg(unix)]
        {
            let outside = dir.path().join("sub.txt").join("x");
            std::fs::write(&outside, b"outside").expect("write");
            std::os::unix::fs::symlink(&outside, d.join("link.txt")).expect("symlink");
            assert_eq!(read(d, "link.txt"), None, "a symbolic link is not followed");
        }
        assert_eq!(list(d), vec!["MP_verify_abc123.txt".to_string()]);
        assert!(list(&d.join("nowhere")).is_empty());
    }
}
