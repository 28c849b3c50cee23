//! Where log lines go: stderr, with request lines gathered and written a few times a second, and
//! every other line (start, stop, warnings, errors) written at once, after those gathered before
//! it.
//!
//! A line a request produces is copied into a buffer under a lock and nothing else; a thread
//! writes the buffer out every [`FLUSH_EVERY`] (or when it fills). Handing each line to a writer
//! thread instead woke that thread once per request, which cost a busy server about a third of
//! its read throughput. What a crash (kill -9) can lose is the request lines of the last
//! [`FLUSH_EVERY`]; never a warning or an error, which are written before the event returns.

use std::io::{BufWriter, Stderr, Write};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// How long a request line may wait in the buffer.
pub const FLUSH_EVERY: Duration = Duration::from_millis(50);

/// The buffer's size; a full buffer is written at once.
const CAPACITY: usize = 256 << 10;

/// The shared writer; clones write to the same buffer.
#[derive(Clone)]
pub struct Lines {
    out: Arc<Mutex<BufWriter<Stderr>>>,
}

/// Writes what is buffered when dropped (at the end of `main`).
pub struct Guard(Lines);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.lock().flush();
    }
}

impl Lines {
    /// The writer and its guard; starts the thread that writes the buffer out.
    pub fn start() -> (Self, Guard) {
        let lines = Lines {
            out: Arc::new(Mutex::new(BufWriter::with_capacity(
                CAPACITY,
                std::io::stderr(),
            ))),
        };
        let flusher = lines.clone();
        std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(FLUSH_EVERY);
                    let _ = flusher.lock().flush();
                }
            })
            .expect("spawn the log writer thread");
        (lines.clone(), Guard(lines))
    }

    fn lock(&self) -> MutexGuard<'_, BufWriter<Stderr>> {
        self.out.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One line being written; written out at once when it is not a request line.
pub struct Line<'a> {
    out: MutexGuard<'a, BufWriter<Stderr>>,
    at_once: bool,
}

impl Write for Line<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.out.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

impl Drop for Line<'_> {
    fn drop(&mut self) {
        if self.at_once {
            let _ = self.out.flush();
        }
    }
}

impl<'a> MakeWriter<'a> for Lines {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line {
            out: self.lock(),
            at_once: true,
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Line<'a> {
        let request_line =
            meta.target() == "dropshot" && !matches!(*meta.level(), Level::ERROR | Level::WARN);
        Line {
            out: self.lock(),
            at_once: !request_line,
        }
    }
}
