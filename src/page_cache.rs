//! Rendered pages kept gzip-compressed, by student: a student reloading their grades costs a
//! lookup, not a render, and a thousand cached pages cost a few megabytes. A change to one
//! student drops only that student's pages; a new data generation drops them all.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const PAGE_CACHE_MAX: usize = 20_000;

#[derive(Default)]
struct Pages {
    /// The data generation the pages were rendered from.
    generation: u64,
    /// Pages by student ID, then by the rest of the key (term, viewer…).
    by_student: HashMap<String, HashMap<String, Arc<[u8]>>>,
    len: usize,
}

#[derive(Default)]
pub struct PageCache {
    pages: Mutex<Pages>,
}

impl PageCache {
    /// The page of `student` under `key`, if it was rendered from data `generation`.
    pub fn get(&self, generation: u64, student: &str, key: &str) -> Option<Arc<[u8]>> {
        let p = self.pages.lock().ok()?;
        if p.generation != generation {
            return None;
        }
        p.by_student.get(student)?.get(key).cloned()
    }

    /// Compress and keep `html`; returns the compressed bytes.
    pub fn put(&self, generation: u64, student: &str, key: String, html: &str) -> Arc<[u8]> {
        let gz: Arc<[u8]> = gzip(html.as_bytes()).into();
        if let Ok(mut p) = self.pages.lock() {
            if p.generation != generation || p.len >= PAGE_CACHE_MAX {
                *p = Pages {
                    generation,
                    ..Pages::default()
                };
            }
            let old = p
                .by_student
                .entry(student.to_string())
                .or_default()
                .insert(key, gz.clone());
            if old.is_none() {
                p.len += 1;
            }
        }
        gz
    }

    /// Drop the pages of one student (their binding or data changed).
    pub fn drop_student(&self, student: &str) {
        if let Ok(mut p) = self.pages.lock() {
            if let Some(gone) = p.by_student.remove(student) {
                p.len -= gone.len();
            }
        }
    }
}

/// gzip at a moderate level (pages are compressed once, served many times).
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 6),
        flate2::Compression::new(6),
    );
    // Writing into a Vec cannot fail.
    let _ = e.write_all(bytes);
    e.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_one_student_or_a_generation() {
        let c = PageCache::default();
        c.put(1, "s1", "a".into(), "<p>1</p>");
        c.put(1, "s2", "a".into(), "<p>2</p>");
        assert!(c.get(1, "s1", "a").is_some());
        c.drop_student("s1");
        assert!(c.get(1, "s1", "a").is_none());
        assert!(c.get(1, "s2", "a").is_some());
        assert!(c.get(2, "s2", "a").is_none());
        c.put(2, "s1", "a".into(), "<p>1</p>");
        assert!(c.get(1, "s2", "a").is_none());
        assert!(c.get(2, "s1", "a").is_some());
    }
}
