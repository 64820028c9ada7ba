//! Rendered pages kept by student, bounded in bytes (`cache_mb`): a student reloading their
//! grades costs a lookup, not a render. Each page is kept gzip-compressed and, once a client
//! without gzip asks for it, also plain; both count against the bound. Eviction is a segmented
//! LRU: a new page enters on probation, a page read again is promoted to the protected segment
//! (at most 80% of the bound), and the least recently used probation page goes first — so a scan
//! of pages viewed once (release-day first views) cannot push out the pages people reload. A
//! change to one student (a bind, an import that changed their rows) drops only that student's
//! pages; a new pages' epoch drops them all. A page rendered from data read before a drop of
//! its student is not kept (see [`PageCache::stamp`]).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Bytes an entry costs beyond its pages and keys (map slots, the `Arc` headers, the order
/// maps' nodes): an estimate, so the bound holds for small pages too.
const ENTRY_OVERHEAD: usize = 160;

/// Share of the bound the protected segment may hold, in percent.
const PROTECTED_PERCENT: usize = 80;

/// Recent drops remembered, to refuse pages rendered before them; a page rendered before the
/// oldest remembered drop is not kept at all.
const RECENT_DROPS: usize = 1024;

/// Which bytes a client takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Gzip,
    Identity,
}

struct Entry {
    gz: Arc<[u8]>,
    /// The page inflated, kept from the first request without gzip.
    plain: Option<Arc<[u8]>>,
    /// Position in its segment's order (larger: used more recently).
    tick: u64,
    protected: bool,
    /// What this entry counts against the bound.
    cost: usize,
}

#[derive(Default)]
struct Pages {
    /// The data generation the pages were rendered from.
    generation: u64,
    /// Pages by student ID, then by the rest of the key (term, viewer…).
    by_student: HashMap<String, HashMap<String, Entry>>,
    /// Least recently used first: tick → (student, key).
    probation: BTreeMap<u64, (String, String)>,
    protected: BTreeMap<u64, (String, String)>,
    bytes: usize,
    protected_bytes: usize,
    next_tick: u64,
    /// Student drops so far, and the latest ones: (drop number, student).
    drops: u64,
    recent: VecDeque<(u64, String)>,
    /// Drops up to this number are no longer in `recent`.
    forgotten: u64,
}

impl Pages {
    fn tick(&mut self) -> u64 {
        self.next_tick += 1;
        self.next_tick
    }

    fn clear(&mut self, generation: u64) {
        let recent = std::mem::take(&mut self.recent);
        *self = Pages {
            generation,
            next_tick: self.next_tick,
            drops: self.drops,
            recent,
            forgotten: self.forgotten,
            ..Pages::default()
        };
    }

    /// Drop a student's pages and remember the drop.
    fn drop_student(&mut self, student: &str) {
        if let Some(gone) = self.by_student.remove(student) {
            for e in gone.values() {
                self.unlink(e);
            }
        }
        self.drops += 1;
        self.recent.push_back((self.drops, student.to_string()));
        while self.recent.len() > RECENT_DROPS {
            if let Some((n, _)) = self.recent.pop_front() {
                self.forgotten = n;
            }
        }
    }

    /// Whether `student` was dropped after `stamp` (or may have been: forgotten drops).
    fn dropped_since(&self, stamp: u64, student: &str) -> bool {
        stamp < self.drops
            && (stamp < self.forgotten
                || self
                    .recent
                    .iter()
                    .rev()
                    .take_while(|(n, _)| *n > stamp)
                    .any(|(_, s)| s == student))
    }

    /// Take an entry out of the cache entirely.
    fn remove(&mut self, student: &str, key: &str) -> Option<Entry> {
        let pages = self.by_student.get_mut(student)?;
        let e = pages.remove(key)?;
        if pages.is_empty() {
            self.by_student.remove(student);
        }
        self.unlink(&e);
        Some(e)
    }

    /// Remove an entry (already out of `by_student`) from its order and the byte counts.
    fn unlink(&mut self, e: &Entry) {
        if e.protected {
            self.protected.remove(&e.tick);
            self.protected_bytes -= e.cost;
        } else {
            self.probation.remove(&e.tick);
        }
        self.bytes -= e.cost;
    }

    /// Mark an entry used: to the protected segment's most recent end, then demote the
    /// protected segment's oldest pages to probation while it holds more than its share.
    fn touch(&mut self, student: &str, key: &str, protected_max: usize) {
        let tick = self.tick();
        let Some(e) = self
            .by_student
            .get_mut(student)
            .and_then(|pages| pages.get_mut(key))
        else {
            return;
        };
        let (old, was_protected, cost) = (e.tick, e.protected, e.cost);
        e.tick = tick;
        e.protected = true;
        let id = if was_protected {
            self.protected.remove(&old)
        } else {
            self.protected_bytes += cost;
            self.probation.remove(&old)
        };
        if let Some(id) = id {
            self.protected.insert(tick, id);
        }
        while self.protected_bytes > protected_max && self.protected.len() > 1 {
            let Some((_, (s, k))) = self.protected.pop_first() else {
                break;
            };
            let tick = self.tick();
            if let Some(e) = self.by_student.get_mut(&s).and_then(|p| p.get_mut(&k)) {
                e.protected = false;
                e.tick = tick;
                self.protected_bytes -= e.cost;
            }
            self.probation.insert(tick, (s, k));
        }
    }

    /// Evict least recently used pages, probation first, until the cache fits `max`.
    fn evict_to(&mut self, max: usize) {
        while self.bytes > max {
            let Some((s, k)) = self
                .probation
                .first_key_value()
                .or_else(|| self.protected.first_key_value())
                .map(|(_, id)| id.clone())
            else {
                break;
            };
            if self.remove(&s, &k).is_none() {
                // Cannot happen (every order entry has its page); never loop on it.
                break;
            }
        }
    }
}

pub struct PageCache {
    max_bytes: usize,
    pages: Mutex<Pages>,
    /// Lookups answered from the cache, and not.
    hits: AtomicU64,
    misses: AtomicU64,
}

impl Default for PageCache {
    /// The default bound: 32 MB.
    fn default() -> Self {
        PageCache::new(32 * 1024 * 1024)
    }
}

impl PageCache {
    /// A cache holding at most `max_bytes` of pages (0: keep nothing).
    pub fn new(max_bytes: usize) -> PageCache {
        PageCache {
            max_bytes,
            pages: Mutex::new(Pages::default()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The page of `student` under `key` in `encoding`, if it was rendered from data
    /// `generation`. The first request without gzip inflates the page once and keeps that.
    pub fn get(
        &self,
        generation: u64,
        student: &str,
        key: &str,
        encoding: Encoding,
    ) -> Option<Arc<[u8]>> {
        let found = self.lookup(generation, student, key, encoding);
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    fn lookup(
        &self,
        generation: u64,
        student: &str,
        key: &str,
        encoding: Encoding,
    ) -> Option<Arc<[u8]>> {
        let gz = {
            let mut p = self.pages.lock().ok()?;
            if p.generation != generation {
                return None;
            }
            let e = p.by_student.get(student)?.get(key)?;
            let found = match encoding {
                Encoding::Gzip => Ok(e.gz.clone()),
                Encoding::Identity => e.plain.clone().ok_or_else(|| e.gz.clone()),
            };
            p.touch(student, key, self.protected_max());
            match found {
                Ok(bytes) => return Some(bytes),
                Err(gz) => gz,
            }
        };
        // Inflate outside the lock, then keep the plain bytes if the page is still there.
        let plain: Arc<[u8]> = gunzip(&gz)?.into();
        if let Ok(mut p) = self.pages.lock() {
            let max = self.max_bytes;
            let grown = p
                .by_student
                .get_mut(student)
                .and_then(|pages| pages.get_mut(key))
                .filter(|e| e.plain.is_none() && Arc::ptr_eq(&e.gz, &gz))
                .map(|e| {
                    e.plain = Some(plain.clone());
                    e.cost += plain.len();
                    (e.protected, plain.len())
                });
            if let Some((protected, extra)) = grown {
                p.bytes += extra;
                if protected {
                    p.protected_bytes += extra;
                }
                p.evict_to(max);
            }
        }
        Some(plain)
    }

    /// Where the drops are now: taken before reading the data a page is rendered from, and
    /// given back to [`Self::put`], which keeps the page only if its student was not dropped
    /// in between (the page may show data from before the change).
    pub fn stamp(&self) -> u64 {
        self.pages.lock().map(|p| p.drops).unwrap_or(u64::MAX)
    }

    /// Compress and keep `html` (and keep it plain too when the client asking takes no gzip);
    /// returns the bytes for `encoding`. A page rendered from an older generation than the
    /// cache holds, or whose student was dropped since `stamp`, is returned but not kept; a
    /// newer generation retires every older page.
    #[allow(clippy::too_many_arguments)]
    pub fn put(
        &self,
        generation: u64,
        stamp: u64,
        student: &str,
        key: String,
        html: String,
        encoding: Encoding,
    ) -> Arc<[u8]> {
        let gz: Arc<[u8]> = gzip(html.as_bytes()).into();
        let plain: Option<Arc<[u8]>> = match encoding {
            Encoding::Gzip => None,
            Encoding::Identity => Some(html.into_bytes().into()),
        };
        let out = match &plain {
            Some(plain) => plain.clone(),
            None => gz.clone(),
        };
        let cost = ENTRY_OVERHEAD
            + gz.len()
            + plain.as_ref().map_or(0, |p| p.len())
            + 2 * (student.len() + key.len());
        if cost > self.max_bytes {
            return out;
        }
        let Ok(mut p) = self.pages.lock() else {
            return out;
        };
        if generation < p.generation {
            return out;
        }
        if generation > p.generation {
            p.clear(generation);
        }
        if p.dropped_since(stamp, student) {
            return out;
        }
        p.remove(student, &key);
        let tick = p.tick();
        p.probation.insert(tick, (student.to_string(), key.clone()));
        p.bytes += cost;
        p.by_student.entry(student.to_string()).or_default().insert(
            key,
            Entry {
                gz,
                plain,
                tick,
                protected: false,
                cost,
            },
        );
        p.evict_to(self.max_bytes);
        out
    }

    /// Drop the pages of one student (their binding or data changed).
    pub fn drop_student(&self, student: &str) {
        if let Ok(mut p) = self.pages.lock() {
            p.drop_student(student);
        }
    }

    /// Drop the pages of these students (an import changed their rows), under one lock.
    pub fn drop_students(&self, students: &[String]) {
        if let Ok(mut p) = self.pages.lock() {
            for s in students {
                p.drop_student(s);
            }
        }
    }

    /// Bytes held (pages, keys and the per-entry estimate) and the number of pages.
    pub fn usage(&self) -> (usize, usize) {
        self.pages
            .lock()
            .map(|p| (p.bytes, p.probation.len() + p.protected.len()))
            .unwrap_or((0, 0))
    }

    /// Lookups answered from the cache and not, since start.
    pub fn hits_and_misses(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// The cache's lines for `/metrics`.
    pub fn render_metrics(&self) -> String {
        let (hits, misses) = self.hits_and_misses();
        let (bytes, pages) = self.usage();
        format!(
            "# TYPE wxgrades_page_cache_lookups_total counter\n\
             wxgrades_page_cache_lookups_total{{result=\"hit\"}} {hits}\n\
             wxgrades_page_cache_lookups_total{{result=\"miss\"}} {misses}\n\
             # TYPE wxgrades_page_cache_bytes gauge\n\
             wxgrades_page_cache_bytes {bytes}\n\
             # TYPE wxgrades_page_cache_pages gauge\n\
             wxgrades_page_cache_pages {pages}\n"
        )
    }

    fn protected_max(&self) -> usize {
        self.max_bytes / 100 * PROTECTED_PERCENT
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

/// Inflate bytes this module compressed.
fn gunzip(gz: &[u8]) -> Option<Vec<u8>> {
    let mut plain = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz), &mut plain).ok()?;
    Some(plain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Encoding::{Gzip, Identity};

    /// A page of about `n` bytes compressed (random-looking, so gzip cannot shrink it much).
    fn page(seed: u64, n: usize) -> String {
        let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                char::from(b'a' + ((x >> 33) % 26) as u8)
            })
            .collect()
    }

    #[test]
    fn drops_one_student_or_a_generation() {
        let c = PageCache::default();
        c.put(1, c.stamp(), "s1", "a".into(), "<p>1</p>".into(), Gzip);
        c.put(1, c.stamp(), "s2", "a".into(), "<p>2</p>".into(), Gzip);
        assert!(c.get(1, "s1", "a", Gzip).is_some());
        c.drop_student("s1");
        assert!(c.get(1, "s1", "a", Gzip).is_none());
        assert!(c.get(1, "s2", "a", Gzip).is_some());
        assert!(c.get(2, "s2", "a", Gzip).is_none());
        c.put(2, c.stamp(), "s1", "a".into(), "<p>1</p>".into(), Gzip);
        assert!(c.get(1, "s2", "a", Gzip).is_none());
        assert!(c.get(2, "s1", "a", Gzip).is_some());
        // A page rendered before the bump is not kept over the newer ones.
        c.put(1, c.stamp(), "s3", "a".into(), "<p>3</p>".into(), Gzip);
        assert!(c.get(2, "s1", "a", Gzip).is_some());
        assert!(c.get(1, "s3", "a", Gzip).is_none());
    }

    #[test]
    fn dropping_a_student_drops_all_their_pages_and_their_bytes_only() {
        let c = PageCache::new(1 << 20);
        for key in ["all|o1", "2024-2025-1|o1", "all|o2"] {
            c.put(1, c.stamp(), "s1", key.into(), page(1, 500), Gzip);
            c.put(1, c.stamp(), "s2", key.into(), page(2, 500), Gzip);
        }
        c.get(1, "s1", "all|o1", Gzip);
        c.get(1, "s1", "all|o1", Identity);
        let (before, n) = c.usage();
        assert_eq!(n, 6);
        c.drop_student("s1");
        let (after, n) = c.usage();
        assert_eq!(n, 3);
        for key in ["all|o1", "2024-2025-1|o1", "all|o2"] {
            assert!(c.get(1, "s1", key, Gzip).is_none());
            assert!(c.get(1, "s2", key, Gzip).is_some());
        }
        assert!(after < before / 2, "{after} of {before} bytes left");
        c.drop_student("s2");
        assert_eq!(c.usage(), (0, 0));
    }

    #[test]
    fn bytes_stay_within_the_bound() {
        let max = 64 * 1024;
        let c = PageCache::new(max);
        for i in 0..500u64 {
            let student = format!("s{i}");
            c.put(1, c.stamp(), &student, "all".into(), page(i, 1000), Gzip);
            // Every third page is also asked for without gzip (plain bytes count too).
            if i % 3 == 0 {
                let plain = c.get(1, &student, "all", Identity);
                assert_eq!(plain.as_deref(), Some(page(i, 1000).as_bytes()));
            }
            let (bytes, n) = c.usage();
            assert!(bytes <= max, "{bytes} > {max} after {i}");
            assert!(n > 0);
        }
        let (bytes, n) = c.usage();
        assert!(bytes > max / 2, "the cache should be well used: {bytes}");
        assert!(n >= 30, "{n} pages");
        // A page bigger than the whole bound is served but not kept.
        let big = c.put(
            1,
            c.stamp(),
            "big",
            "all".into(),
            page(9, 2 * max),
            Identity,
        );
        assert_eq!(big.len(), 2 * max);
        assert!(c.get(1, "big", "all", Gzip).is_none());
        // A zero bound keeps nothing.
        let off = PageCache::new(0);
        off.put(1, off.stamp(), "s", "all".into(), "<p>x</p>".into(), Gzip);
        assert!(off.get(1, "s", "all", Gzip).is_none());
        assert_eq!(off.usage(), (0, 0));
    }

    #[test]
    fn hot_pages_survive_a_scan_of_cold_ones() {
        let max = 200 * 1024;
        let c = PageCache::new(max);
        let hot: Vec<String> = (0..50).map(|i| format!("hot{i}")).collect();
        for (i, s) in hot.iter().enumerate() {
            c.put(7, c.stamp(), s, "all".into(), page(i as u64, 1000), Gzip);
            assert!(c.get(7, s, "all", Gzip).is_some());
        }
        // Ten times the bound of pages each viewed once (first-time binds on release day),
        // while the hot students reload only every 500 cold pages (more than the bound: a plain
        // LRU would have evicted them by then).
        for i in 0..2000u64 {
            c.put(
                7,
                c.stamp(),
                &format!("cold{i}"),
                "all".into(),
                page(10_000 + i, 1000),
                Gzip,
            );
            if i % 500 == 0 {
                for s in &hot {
                    assert!(
                        c.get(7, s, "all", Gzip).is_some(),
                        "{s} evicted by cold page {i}"
                    );
                }
            }
        }
        for s in &hot {
            assert!(c.get(7, s, "all", Gzip).is_some(), "{s} evicted");
        }
        assert!(c.usage().0 <= max);
        // The scan still gets room: the latest cold pages are there.
        assert!(c.get(7, "cold1999", "all", Gzip).is_some());
        assert!(c.get(7, "cold0", "all", Gzip).is_none());
    }

    #[test]
    fn both_encodings_are_kept_and_counted() {
        let c = PageCache::new(1 << 20);
        let html = format!("<p>{}</p>", "成绩 ".repeat(400));
        let gz = c.put(3, c.stamp(), "s1", "all".into(), html.clone(), Gzip);
        assert_eq!(gunzip(&gz).as_deref(), Some(html.as_bytes()));
        let (gz_only, _) = c.usage();
        assert_eq!(c.get(3, "s1", "all", Gzip).as_deref(), Some(&gz[..]));
        let plain = c.get(3, "s1", "all", Identity).expect("kept");
        assert_eq!(&plain[..], html.as_bytes());
        let (both, _) = c.usage();
        assert_eq!(both, gz_only + html.len());
        // The second plain request is the same kept bytes, not a new inflation.
        let again = c.get(3, "s1", "all", Identity).expect("kept");
        assert!(Arc::ptr_eq(&plain, &again));
        assert_eq!(c.usage().0, both);
        // A client without gzip that renders the page keeps both at once.
        let first = c.put(3, c.stamp(), "s2", "all".into(), html.clone(), Identity);
        assert_eq!(&first[..], html.as_bytes());
        let kept = c.get(3, "s2", "all", Identity).expect("kept");
        assert!(Arc::ptr_eq(&first, &kept));
        let gz2 = c.get(3, "s2", "all", Gzip).expect("kept");
        assert_eq!(gunzip(&gz2).as_deref(), Some(html.as_bytes()));
    }

    #[test]
    fn a_page_rendered_before_its_student_was_dropped_is_not_kept() {
        let c = PageCache::default();
        let before = c.stamp();
        c.drop_students(&["s1".to_string()]);
        c.put(1, before, "s1", "all".into(), "<p>old</p>".into(), Gzip);
        assert!(c.get(1, "s1", "all", Gzip).is_none(), "stale page kept");
        // Another student's page from the same moment is kept; so is s1's next render.
        c.put(1, before, "s2", "all".into(), "<p>2</p>".into(), Gzip);
        assert!(c.get(1, "s2", "all", Gzip).is_some());
        c.put(1, c.stamp(), "s1", "all".into(), "<p>new</p>".into(), Gzip);
        assert!(c.get(1, "s1", "all", Gzip).is_some());
        // Past the drops remembered, an old stamp keeps nothing.
        let old = c.stamp();
        let many: Vec<String> = (0..RECENT_DROPS + 1).map(|i| format!("x{i}")).collect();
        c.drop_students(&many);
        c.put(1, old, "s3", "all".into(), "<p>3</p>".into(), Gzip);
        assert!(c.get(1, "s3", "all", Gzip).is_none());
    }
}
