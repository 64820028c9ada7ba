//! The log file's days: [`DailyFile`], the writer behind `log_file` that, when the China date
//! changes, renames `<log_file>` to `<log_file>.YYYY-MM-DD` (the day it covers) and opens a
//! fresh one; and [`sweep`], which deletes those dated files once they are older than
//! `[privacy] keep_logs_days`. Nothing else in the log's folder is touched.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::clock::{china_date, parse_china_date, unix_now};

/// Where a [`DailyFile`] reads the time (Unix seconds): the wall clock, or a test's.
pub type Now = Box<dyn Fn() -> i64 + Send>;

/// The log file, appended to, started afresh each China day. Rotation happens only between
/// lines (a log record arrives in several writes), at the first line of a new day. A failed
/// rotation keeps writing to the file already open and says so once on stderr.
pub struct DailyFile {
    path: PathBuf,
    file: File,
    /// The China date the open file covers.
    day: String,
    now: Now,
    /// Whether the last write ended a line.
    at_line_start: bool,
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// `<log_file>.YYYY-MM-DD`: the name of the file covering `day`.
pub fn dated_path(log_file: &Path, day: &str) -> Option<PathBuf> {
    let name = log_file.file_name()?.to_str()?;
    Some(log_file.with_file_name(format!("{name}.{day}")))
}

impl DailyFile {
    /// Open (or create) `path` for appending, on the wall clock.
    pub fn open(path: &Path) -> io::Result<DailyFile> {
        DailyFile::open_with_clock(path, Box::new(unix_now))
    }

    /// Open (or create) `path` for appending, reading the time from `now`.
    pub fn open_with_clock(path: &Path, now: Now) -> io::Result<DailyFile> {
        let file = open_append(path)?;
        // A file left by an earlier run covers the day it was last written, so a server stopped
        // over midnight still rotates it at its first line.
        let meta = file.metadata()?;
        let written = meta
            .modified()
            .ok()
            .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let day = match written {
            Some(at) if meta.len() > 0 => china_date(at),
            _ => china_date(now()),
        };
        Ok(DailyFile {
            path: path.to_path_buf(),
            file,
            day,
            now,
            at_line_start: true,
        })
    }

    fn rotate_if_new_day(&mut self) {
        let today = china_date((self.now)());
        if today == self.day {
            return;
        }
        // Whatever happens, the next try is tomorrow: one warning, not one per line.
        let covered = std::mem::replace(&mut self.day, today);
        if let Err(e) = self.rotate(&covered) {
            eprintln!(
                "wxgrades: cannot rotate the log file {} for {covered}: {e}; writing on in it",
                self.path.display()
            );
        }
    }

    fn rotate(&mut self, covered: &str) -> io::Result<()> {
        if self.file.metadata()?.len() == 0 {
            return Ok(()); // nothing was logged that day
        }
        let dated = dated_path(&self.path, covered)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
        if std::fs::symlink_metadata(&dated).is_ok() {
            // That day already has a file (the clock went back): add to its end, start afresh.
            let mut target = OpenOptions::new().append(true).open(&dated)?;
            io::copy(&mut File::open(&self.path)?, &mut target)?;
            File::create(&self.path)?;
        } else {
            match std::fs::rename(&self.path, &dated) {
                Ok(()) => {}
                // Someone removed the file under us: the fresh one below is all there is to do.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        self.file = open_append(&self.path)?;
        Ok(())
    }
}

impl Write for DailyFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.at_line_start && !buf.is_empty() {
            self.rotate_if_new_day();
        }
        let n = self.file.write(buf)?;
        if let Some(&last) = buf.get(..n).and_then(<[u8]>::last) {
            self.at_line_start = last == b'\n';
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Delete the dated files of `log_file` — regular files named exactly `<name>.YYYY-MM-DD` in
/// its folder — whose day ended more than `keep_days` days before `now`. Returns how many went;
/// a file that cannot be deleted is logged and skipped.
pub fn sweep(log_file: &Path, keep_days: u32, now: i64) -> io::Result<usize> {
    let Some(name) = log_file.file_name().and_then(|n| n.to_str()) else {
        return Ok(0);
    };
    let dir = match log_file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let cutoff = now.saturating_sub(i64::from(keep_days) * 86_400);
    let mut deleted = 0;
    for entry in std::fs::read_dir(dir)? {
        let Ok(entry) = entry else { continue };
        let file_name = entry.file_name();
        let Some(day_start) = file_name
            .to_str()
            .and_then(|f| f.strip_prefix(name))
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(parse_china_date)
        else {
            continue;
        };
        if day_start + 86_400 > cutoff || !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        match std::fs::remove_file(entry.path()) {
            Ok(()) => deleted += 1,
            Err(e) => log::warn!("cannot delete the old log file {file_name:?}: {e}"),
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::sync::Arc;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "wxgrades-logfiles-{name}-{}-{}",
            std::process::id(),
            unix_now()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    fn read(p: &Path) -> String {
        std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    /// 2026-11-30 23:59:00 China time.
    const LATE: i64 = 1_796_054_340;

    #[test]
    fn a_new_china_day_rotates_between_lines() {
        assert_eq!(china_date(LATE), "2026-11-30");
        let dir = temp_dir("rotate");
        let path = dir.join("wxgrades.log");
        let clock = Arc::new(AtomicI64::new(LATE));
        let c = clock.clone();
        let mut log = DailyFile::open_with_clock(&path, Box::new(move || c.load(Ordering::SeqCst)))
            .expect("open");
        log.write_all(b"first line\n").expect("write");
        // A record in pieces: midnight passes in the middle, the line stays whole.
        log.write_all(b"second ").expect("write");
        clock.store(LATE + 120, Ordering::SeqCst); // 2026-12-01 00:01
        log.write_all(b"line\n").expect("write");
        assert_eq!(read(&path), "first line\nsecond line\n");
        assert!(!dir.join("wxgrades.log.2026-11-30").exists());
        // The next line is the new day's: the old day's file is renamed, a fresh one opened.
        log.write_all(b"third line\n").expect("write");
        log.flush().expect("flush");
        assert_eq!(
            read(&dir.join("wxgrades.log.2026-11-30")),
            "first line\nsecond line\n"
        );
        assert_eq!(read(&path), "third line\n");
        // The same day again: nothing moves.
        log.write_all(b"fourth line\n").expect("write");
        assert_eq!(read(&path), "third line\nfourth line\n");

        // The clock goes back a day: that day's file gets the lines at its end.
        clock.store(LATE, Ordering::SeqCst);
        log.write_all(b"fifth line\n").expect("write");
        assert_eq!(
            read(&dir.join("wxgrades.log.2026-12-01")),
            "third line\nfourth line\n"
        );
        clock.store(LATE + 120, Ordering::SeqCst);
        log.write_all(b"sixth line\n").expect("write");
        assert_eq!(
            read(&dir.join("wxgrades.log.2026-11-30")),
            "first line\nsecond line\nfifth line\n"
        );
        assert_eq!(read(&path), "sixth line\n");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_file_left_from_an_earlier_day_is_rotated_at_the_first_line() {
        let dir = temp_dir("restart");
        let path = dir.join("server.log");
        std::fs::write(&path, "from the last run\n").expect("write");
        let written = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .expect("mtime")
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs() as i64;
        let mut log = DailyFile::open_with_clock(&path, Box::new(move || written + 3 * 86_400))
            .expect("open");
        log.write_all(b"new run\n").expect("write");
        assert_eq!(
            read(&dir.join(format!("server.log.{}", china_date(written)))),
            "from the last run\n"
        );
        assert_eq!(read(&path), "new run\n");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_failed_rotation_keeps_writing_to_the_open_file() {
        let dir = temp_dir("fail");
        let path = dir.join("wxgrades.log");
        let clock = Arc::new(AtomicI64::new(LATE));
        let c = clock.clone();
        let mut log = DailyFile::open_with_clock(&path, Box::new(move || c.load(Ordering::SeqCst)))
            .expect("open");
        log.write_all(b"before\n").expect("write");
        // A directory where the day's file would go: neither rename nor append can work.
        std::fs::create_dir(dir.join("wxgrades.log.2026-11-30")).expect("mkdir");
        clock.store(LATE + 120, Ordering::SeqCst);
        log.write_all(b"after\n").expect("write");
        log.write_all(b"and more\n").expect("write");
        assert_eq!(read(&path), "before\nafter\nand more\n");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_sweep_deletes_only_old_dated_files_of_the_log() {
        let dir = temp_dir("sweep");
        let path = dir.join("wxgrades.log");
        let now = LATE; // 2026-11-30 in China
        let files = [
            "wxgrades.log",
            "wxgrades.log.2026-11-29", // recent
            "wxgrades.log.2026-10-31", // ended 30 days ago minus a minute: kept
            "wxgrades.log.2026-10-30", // old
            "wxgrades.log.2025-01-01", // old
            "wxgrades.log.2025-01-01.gz",
            "wxgrades.log.2025-1-01",
            "wxgrades.log.2025-02-30",
            "wxgrades.log.old",
            "other.log.2025-01-01",
            "xwxgrades.log.2025-01-01",
            "notes.txt",
        ];
        for f in files {
            std::fs::write(dir.join(f), f).expect("write");
        }
        // A folder with a dated name is not a log file.
        std::fs::create_dir(dir.join("wxgrades.log.2024-01-01")).expect("mkdir");
        assert_eq!(sweep(&path, 30, now).expect("sweep"), 2);
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let mut expected: Vec<String> = files
            .iter()
            .filter(|f| !["wxgrades.log.2026-10-30", "wxgrades.log.2025-01-01"].contains(f))
            .map(|f| f.to_string())
            .chain(["wxgrades.log.2024-01-01".to_string()])
            .collect();
        expected.sort();
        assert_eq!(left, expected);
        // A day later the 31st of October goes too.
        assert_eq!(sweep(&path, 30, now + 86_400).expect("sweep"), 1);
        assert!(!dir.join("wxgrades.log.2026-10-31").exists());
        assert!(dir.join("wxgrades.log.2026-11-29").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
