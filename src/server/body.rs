//! The body readers: a request body is read by the connection's guard thread (never by a worker
//! that serves pages), only while it holds one of a fixed number of body-reader permits, within
//! a total deadline, and never past the route's bound. A few permits are kept for requests that
//! carry an admin session, so that strangers trickling bodies cannot lock admins out of uploads.

use std::io::ErrorKind;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::guard::Client;
use super::head::Framing;

/// A chunk-size line (with extensions) longer than this is refused.
const MAX_CHUNK_LINE: usize = 1024;
/// Trailers after a chunked body, in all.
const MAX_TRAILERS: usize = 16 * 1024;

/// The permits to read a body, some kept for privileged requests.
pub struct Readers {
    total: usize,
    reserved: usize,
    busy: AtomicUsize,
}

/// Held while a body is read; gives the permit back when dropped.
pub struct Permit<'a>(&'a Readers);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Readers {
    /// `total` permits, of which `reserved` only for privileged requests (at least one
    /// permit stays open to everyone).
    pub fn new(total: usize, reserved: usize) -> Readers {
        let total = total.max(1);
        Readers {
            total,
            reserved: reserved.min(total - 1),
            busy: AtomicUsize::new(0),
        }
    }

    /// A permit, or `None` when every permit open to this request is taken.
    pub fn acquire(&self, privileged: bool) -> Option<Permit<'_>> {
        let cap = if privileged {
            self.total
        } else {
            self.total - self.reserved
        };
        self.busy
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| {
                (b < cap).then_some(b + 1)
            })
            .ok()
            .map(|_| Permit(self))
    }

    #[cfg(test)]
    pub fn busy(&self) -> usize {
        self.busy.load(Ordering::SeqCst)
    }
}

/// Why a body was not read.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyError {
    /// Over the route's bound (only known while reading a chunked body).
    TooLarge,
    /// Not complete by its deadline, or silent for the idle timeout: 408.
    Slow,
    /// The client went away.
    Gone,
    /// Broken chunked framing: 400.
    Bad(&'static str),
}

/// When a body of `size` bytes must have arrived: the idle timeout, plus the time it takes at
/// `min_rate` bytes per second. A client slower than that loses its request (408), however
/// regularly it trickles.
pub fn deadline(idle: Duration, size: u64, min_rate: u64) -> Instant {
    let transfer = Duration::from_secs(size / min_rate.max(1));
    Instant::now() + idle + transfer
}

/// Read the body framed by `framing`, at most `limit` bytes, by `deadline`.
pub fn read(
    c: &mut Client,
    framing: Framing,
    limit: u64,
    deadline: Instant,
) -> Result<Vec<u8>, BodyError> {
    match framing {
        Framing::None => Ok(Vec::new()),
        Framing::Length(n) if n > limit => Err(BodyError::TooLarge),
        Framing::Length(n) => {
            // n is at most the route's bound, decided before reading.
            let n = usize::try_from(n).map_err(|_| BodyError::TooLarge)?;
            need(c, n, deadline)?;
            Ok(c.take(n))
        }
        Framing::Chunked => chunked(c, limit, deadline),
    }
}

/// Wait until `n` bytes are buffered.
fn need(c: &mut Client, n: usize, deadline: Instant) -> Result<(), BodyError> {
    while c.pending() < n {
        fill(c, deadline)?;
    }
    Ok(())
}

fn fill(c: &mut Client, deadline: Instant) -> Result<(), BodyError> {
    match c.fill(deadline) {
        Ok(0) => Err(BodyError::Gone),
        Ok(_) => Ok(()),
        Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => {
            Err(BodyError::Slow)
        }
        Err(_) => Err(BodyError::Gone),
    }
}

/// One CRLF-ended line of at most `max` bytes, CRLF removed.
fn line(c: &mut Client, max: usize, deadline: Instant) -> Result<Vec<u8>, BodyError> {
    let mut from = 0;
    loop {
        if let Some(i) = memchr::memmem::find(&c.buffered()[from..], b"\r\n") {
            let mut l = c.take(from + i + 2);
            l.truncate(from + i);
            return Ok(l);
        }
        from = c.pending().saturating_sub(1);
        if from > max {
            return Err(BodyError::Bad("chunk line too long"));
        }
        fill(c, deadline)?;
    }
}

fn chunked(c: &mut Client, limit: u64, deadline: Instant) -> Result<Vec<u8>, BodyError> {
    let mut body = Vec::new();
    loop {
        let l = line(c, MAX_CHUNK_LINE, deadline)?;
        let size = l.split(|&b| b == b';').next().unwrap_or_default();
        let size = std::str::from_utf8(size)
            .ok()
            .map(|s| s.trim_matches([' ', '\t']))
            .filter(|s| !s.is_empty() && s.len() <= 16)
            .and_then(|s| u64::from_str_radix(s, 16).ok())
            .ok_or(BodyError::Bad("bad chunk size"))?;
        if size == 0 {
            let mut trailers = 0;
            loop {
                let t = line(c, MAX_TRAILERS, deadline)?;
                if t.is_empty() {
                    return Ok(body);
                }
                trailers += t.len() + 2;
                if trailers > MAX_TRAILERS {
                    return Err(BodyError::Bad("trailers too large"));
                }
            }
        }
        if body.len() as u64 + size > limit {
            return Err(BodyError::TooLarge);
        }
        // size is at most `limit` here.
        let n = usize::try_from(size).map_err(|_| BodyError::TooLarge)?;
        need(c, n + 2, deadline)?;
        let chunk = c.take(n + 2);
        if !chunk.ends_with(b"\r\n") {
            return Err(BodyError::Bad("chunk not followed by CRLF"));
        }
        body.extend_from_slice(&chunk[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_keep_a_reserve() {
        let r = Readers::new(4, 1);
        let a: Vec<_> = (0..3).filter_map(|_| r.acquire(false)).collect();
        assert_eq!(a.len(), 3);
        assert!(r.acquire(false).is_none(), "the fourth is reserved");
        let admin = r.acquire(true);
        assert!(admin.is_some());
        assert!(r.acquire(true).is_none());
        drop(a);
        assert_eq!(r.busy(), 1);
        assert!(r.acquire(false).is_some());
        // A reserve never takes every permit.
        let r = Readers::new(2, 5);
        assert!(r.acquire(false).is_some());
    }
}
