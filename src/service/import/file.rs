//! An import file kept on disk, not in memory: an unnamed temporary file (the upload's body as
//! the server received it, narrowed to the file's part, or a copy of the file named on the
//! command line), mapped read-only. The plan and the
//! commit each read it from start to end; its pages are the kernel's to drop, so a large file
//! costs no anonymous memory, and nothing but this process can reach an unnamed file to change
//! it under the mapping.

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::path::Path;

pub struct ImportFile {
    /// None for an empty file (a zero-length mapping is not allowed).
    map: Option<memmap2::Mmap>,
    /// The part of the mapping that is the import file (all of it, unless narrowed by `part`).
    range: std::ops::Range<usize>,
    /// Kept open for the mapping's sake; removed by the system when closed.
    _file: File,
}

impl ImportFile {
    /// Write `bytes` to a new unnamed temporary file and map it.
    pub fn from_bytes(bytes: &[u8]) -> io::Result<ImportFile> {
        let mut file = tempfile::tempfile()?;
        file.write_all(bytes)?;
        ImportFile::map(file)
    }

    /// Copy what `source` yields into a new unnamed temporary file and map it.
    pub fn from_reader(source: &mut impl Read) -> io::Result<ImportFile> {
        let mut file = tempfile::tempfile()?;
        io::copy(source, &mut file)?;
        ImportFile::map(file)
    }

    /// A private copy of the file at `path` (which may change or go while the import runs).
    pub fn copy_of(path: &Path) -> io::Result<ImportFile> {
        ImportFile::from_reader(&mut File::open(path)?)
    }

    /// Map an unnamed temporary file that nothing writes to any more (the server's received
    /// body, see `Request::body_file`).
    pub fn from_file(file: File) -> io::Result<ImportFile> {
        ImportFile::map(file)
    }

    /// The same file narrowed to `range` of its bytes (a multipart body's file part), without
    /// a copy. A range past the end is cut to the end.
    pub fn part(mut self, range: std::ops::Range<usize>) -> ImportFile {
        let len = self.len();
        let start = self.range.start + range.start.min(len);
        let end = self.range.start + range.end.clamp(range.start.min(len), len);
        self.range = start..end;
        self
    }

    fn map(mut file: File) -> io::Result<ImportFile> {
        file.flush()?;
        let len = file.seek(io::SeekFrom::End(0))?;
        let Ok(len) = usize::try_from(len) else {
            return Err(io::Error::other("file too large to map"));
        };
        if len == 0 {
            return Ok(ImportFile {
                map: None,
                range: 0..0,
                _file: file,
            });
        }
        // SAFETY: the file is an unnamed temporary file (nothing but this process can open
        // it) that nothing writes to after this point, so the mapped bytes do not change while
        // mapped.
        let map = unsafe { memmap2::Mmap::map(&file)? };
        // The file is read from start to end, twice at most: read ahead, drop behind.
        let _ = map.advise(memmap2::Advice::Sequential);
        Ok(ImportFile {
            map: Some(map),
            range: 0..len,
            _file: file,
        })
    }

    pub fn bytes(&self) -> &[u8] {
        self.map
            .as_deref()
            .and_then(|m| m.get(self.range.clone()))
            .unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.bytes().len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_come_back_as_written_and_empty_is_allowed() {
        let f = ImportFile::from_bytes("学号,姓名\n2021001,张三\n".as_bytes()).expect("temp");
        assert_eq!(f.bytes(), "学号,姓名\n2021001,张三\n".as_bytes());
        let e = ImportFile::from_bytes(b"").expect("temp");
        assert!(e.is_empty());
        let p = f.part(14..21);
        assert_eq!(p.bytes(), "2021001".as_bytes());
        let p = p.part(4..100);
        assert_eq!(p.bytes(), b"001");
        let backwards = std::ops::Range { start: 9, end: 2 };
        assert!(p.part(backwards).is_empty());
        let mut src: &[u8] = b"a,b\n";
        assert_eq!(ImportFile::from_reader(&mut src).expect("temp").len(), 4);
    }
}
