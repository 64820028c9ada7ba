//! The body readers: a request body is read by the connection's guard thread (never by a worker
//! that serves pages), only while it holds one of a fixed number of body-reader permits, within
//! a total deadline, and never past the route's bound. A few permits are kept for requests that
//! carry an admin session, so that strangers trickling bodies cannot lock admins out of uploads.
//! A large body goes to disk as it arrives (`spool.rs`).

use std::io::ErrorKind;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::guard::Client;
use super::head::Framing;
use super::spool::{Received, Sink};

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
    /// A large body could not be written to a temporary file: 503.
    Disk,
}

/// When a body of `size` bytes must have arrived: the idle timeout, plus the time it takes at
/// `min_rate` bytes per second. A client slower than that loses its request (408), however
/// regularly it trickles.
pub fn deadline(idle: Duration, size: u64, min_rate: u64) -> Instant {
    let transfer = Duration::from_secs(size / min_rate.max(1));
    Instant::now() + idle + transfer
}

/// Read the body framed by `framing`, at most `limit` bytes, by `deadline`; a large one is
/// written to a temporary file as it arrives.
pub fn read(
    c: &mut Client,
    framing: Framing,
    limit: u64,
    deadline: Instant,
) -> Result<Received, BodyError> {
    let mut sink = Sink::default();
    match framing {
        Framing::None => return Ok(Received::empty()),
        Framing::Length(n) if n > limit => return Err(BodyError::TooLarge),
        Framing::Length(n) => copy(c, &mut sink, n, deadline)?,
        Framing::Chunked => chunked(c, &mut sink, limit, deadline)?,
    }
    sink.finish().map_err(|e| disk(&e))
}

fn disk(e: &std::io::Error) -> BodyError {
    log::error!("cannot write a large request body to a temporary file: {e}");
    BodyError::Disk
}

/// Move the next `n` bytes of the body into `sink`, as they arrive.
fn copy(c: &mut Client, sink: &mut Sink, n: u64, deadline: Instant) -> Result<(), BodyError> {
    let mut left = n;
    while left > 0 {
        if c.pending() == 0 {
            fill(c, deadline)?;
        }
        // At most what is buffered (16 KiB a read), never more than is left.
        let k = usize::try_from(left).map_or(c.pending(), |l| l.min(c.pending()));
        sink.push(&c.take(k)).map_err(|e| disk(&e))?;
        left -= k as u64;
    }
    Ok(())
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

fn chunked(
    c: &mut Client,
    sink: &mut Sink,
    limit: u64,
    deadline: Instant,
) -> Result<(), BodyError> {
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
                    return Ok(());
                }
                trailers += t.len() + 2;
                if trailers > MAX_TRAILERS {
                    return Err(BodyError::Bad("trailers too large"));
                }
            }
        }
        if sink.len().saturating_add(size) > limit {
            return Err(BodyError::TooLarge);
        }
        copy(c, sink, size, deadline)?;
        need(c, 2, deadline)?;
        if c.take(2) != b"\r\n" {
            return Err(BodyError::Bad("chunk not followed by CRLF"));
        }
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
