//! An import file kept on disk, not in memory: an unnamed temporary file (an upload written
//! out, or a copy of the file named on the command line), mapped read-only. The plan and the
//! commit each read it from start to end; its pages are the kernel's to drop, so a large file
//! costs no anonymous memory, and nothing but this process can reach an unnamed file to change
//! it under the mapping.

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::path::Path;

pub struct ImportFile {
    /// None for an empty file (a zero-length mapping is not allowed).
    map: Option<memmap2::Mmap>,
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

    fn map(mut file: File) -> io::Result<ImportFile> {
        file.flush()?;
        let len = file.seek(io::SeekFrom::End(0))?;
        if len == 0 {
            return Ok(ImportFile {
                map: None,
                _file: file,
            });
        }
        // SAFETY: the file is an unnamed temporary file that only this value holds open and
        // nothing writes to after this point, so the mapped bytes do not change while mapped.
        let map = unsafe { memmap2::Mmap::map(&file)? };
        // The file is read from start to end, twice at most: read ahead, drop behind.
        let _ = map.advise(memmap2::Advice::Sequential);
        Ok(ImportFile {
            map: Some(map),
            _file: file,
        })
    }

    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or_default()
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
        let mut src: &[u8] = b"a,b\n";
        assert_eq!(ImportFile::from_reader(&mut src).expect("temp").len(), 4);
    }
}
