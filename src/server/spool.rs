//! Large request bodies on disk: a body over [`SPOOL_OVER`] bytes is written to an unnamed
//! temporary file as it arrives (never held whole in memory), and handed to the worker that
//! serves the request through [`Spools`], keyed by a one-time token the guard puts in a private
//! header (`SPOOL_HEADER`, removed from every client's request). The worker gets the open file
//! (`Request::body_file`); nothing else can reach an unnamed file, and the system removes it
//! when the last handle closes.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Seek, Write};
use std::sync::Mutex;

use crate::secret;

/// Bodies larger than this go to a temporary file; smaller ones stay in memory.
pub const SPOOL_OVER: usize = 256 * 1024;
/// Spooled bodies waiting for their worker, at most (one per body-reader permit is the most
/// that can be in flight; this is only a guard against a bug leaking entries).
const MAX_WAITING: usize = 1024;

/// A body as the guard received it.
pub enum Received {
    Memory(Vec<u8>),
    /// On disk, in an unnamed temporary file positioned at its start.
    Spooled(File),
}

impl Received {
    pub fn empty() -> Received {
        Received::Memory(Vec::new())
    }
}

/// Collects a body: in memory up to [`SPOOL_OVER`] bytes, then in a temporary file.
#[derive(Default)]
pub struct Sink {
    memory: Vec<u8>,
    file: Option<File>,
    len: u64,
}

impl Sink {
    /// Bytes collected so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn push(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.len += bytes.len() as u64;
        if let Some(f) = self.file.as_mut() {
            return f.write_all(bytes);
        }
        if self.memory.len() + bytes.len() <= SPOOL_OVER {
            self.memory.extend_from_slice(bytes);
            return Ok(());
        }
        let mut f = tempfile::tempfile()?;
        f.write_all(&self.memory)?;
        f.write_all(bytes)?;
        self.memory = Vec::new();
        self.file = Some(f);
        Ok(())
    }

    pub fn finish(self) -> std::io::Result<Received> {
        match self.file {
            None => Ok(Received::Memory(self.memory)),
            Some(mut f) => {
                f.flush()?;
                f.rewind()?;
                Ok(Received::Spooled(f))
            }
        }
    }
}

/// Spooled bodies between the guard that received them and the worker that serves them.
#[derive(Default)]
pub struct Spools {
    waiting: Mutex<HashMap<String, File>>,
}

impl Spools {
    /// Keep `file` for the worker; `None` when too many wait already.
    pub fn put(&self, file: File) -> Option<String> {
        let mut w = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        if w.len() >= MAX_WAITING {
            return None;
        }
        let token = secret::random_hex::<16>();
        w.insert(token.clone(), file);
        Some(token)
    }

    /// The file kept under `token`, once.
    pub fn take(&self, token: &str) -> Option<File> {
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(token)
    }

    #[cfg(test)]
    pub fn waiting(&self) -> usize {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn small_bodies_stay_in_memory_and_large_ones_go_to_disk_whole() {
        let mut s = Sink::default();
        s.push(b"abc").unwrap();
        assert!(matches!(s.finish().unwrap(), Received::Memory(b) if b == b"abc"));

        let mut s = Sink::default();
        let chunk = vec![7u8; 100_000];
        for _ in 0..5 {
            s.push(&chunk).unwrap();
        }
        assert_eq!(s.len(), 500_000);
        let Received::Spooled(mut f) = s.finish().unwrap() else {
            panic!("a 500 kB body stayed in memory");
        };
        let mut back = Vec::new();
        f.read_to_end(&mut back).unwrap();
        assert_eq!(back.len(), 500_000);
        assert!(back.iter().all(|&b| b == 7));
    }

    #[test]
    fn a_spooled_body_is_taken_once_by_its_token() {
        let spools = Spools::default();
        let t = spools.put(tempfile::tempfile().unwrap()).unwrap();
        assert_eq!(spools.waiting(), 1);
        assert!(spools.take("not-a-token").is_none());
        assert!(spools.take(&t).is_some());
        assert!(spools.take(&t).is_none());
        assert_eq!(spools.waiting(), 0);
    }
}
