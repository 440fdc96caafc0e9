//! Corrections during a stream: a clinician's clicks and acceptances,
//! from a file the run watches (`sammix run --corrections FILE`).
//!
//! A UI appends one JSON object per line:
//!
//! ```text
//! {"frame": 41, "points": ["120,88,+", "40,60,-"]}
//! {"frame": 41, "accept": true}
//! ```
//!
//! `frame` is the sequence number of the frame on display (its line in
//! `results.jsonl`), `points` are clicks in frame pixels in the syntax of
//! `sammix segment --point` (at most [`MAX_CLICKS`] on one frame), and
//! `accept` says the clinician took the frame's mask as it is. The
//! inference thread applies each request between frames: the pipeline
//! re-runs only the mask decoder on the frame's cached embeddings
//! ([`Pipeline::correct`](crate::pipeline::Pipeline::correct)). Only the
//! last processed frame can be corrected, so a UI freezes the stream
//! ([`StreamOptions::pause`](super::StreamOptions::pause)) while the
//! clinician clicks; a request for another frame is rejected, logged, and
//! the stream goes on. A line that is not a request is logged (file and
//! line, what was expected) and skipped: nothing else is lost.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::pipeline::{Click, Correction, MAX_CLICKS};

/// The longest request line read; a longer one is skipped.
pub const MAX_LINE: usize = 16 * 1024;

/// Requests waiting for the inference thread, at most this many (a UI
/// that floods the file loses the oldest, logged).
pub const MAX_PENDING: usize = 256;

/// One request from the corrections file.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Clicks on a frame (they add to the frame's earlier clicks).
    Clicks {
        /// The frame's sequence number.
        frame: u64,
        /// In frame pixels.
        clicks: Vec<Click>,
    },
    /// The clinician accepts the frame's mask as shown.
    Accept {
        /// The frame's sequence number.
        frame: u64,
    },
}

impl Request {
    /// The frame the request is about.
    pub fn frame(&self) -> u64 {
        match self {
            Request::Clicks { frame, .. } | Request::Accept { frame } => *frame,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestLine {
    frame: u64,
    #[serde(default)]
    points: Vec<String>,
    #[serde(default)]
    accept: bool,
}

/// Parses one line of the corrections file; the error says what was
/// expected.
pub fn parse_request(line: &str) -> Result<Request, String> {
    let r: RequestLine = serde_json::from_str(line).map_err(|e| {
        format!(
            "{e}: expected {{\"frame\": N, \"points\": [\"X,Y,+\", ...]}} or {{\"frame\": N, \"accept\": true}}"
        )
    })?;
    match (r.points.is_empty(), r.accept) {
        (true, true) => Ok(Request::Accept { frame: r.frame }),
        (false, false) => {
            if r.points.len() > MAX_CLICKS {
                return Err(format!(
                    "{} points: at most {MAX_CLICKS} on one frame",
                    r.points.len()
                ));
            }
            let clicks = r
                .points
                .iter()
                .map(|p| p.parse::<Click>().map_err(|e| e.to_string()))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Request::Clicks {
                frame: r.frame,
                clicks,
            })
        }
        (true, false) => Err("a request needs \"points\" or \"accept\": true".into()),
        (false, true) => Err("\"points\" and \"accept\" in one request: send them as two".into()),
    }
}

/// What became of one request: a line of `corrections.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CorrectionRecord {
    /// The frame's sequence number.
    pub frame: u64,
    /// `"clicks"` or `"accept"`.
    pub kind: &'static str,
    /// The request's clicks (frame pixels); empty for an acceptance.
    pub points: Vec<Click>,
    /// When the inference thread took the request, ms from the stream's
    /// start (the clock of `results.jsonl`'s `done_ms`).
    pub at_ms: f64,
    /// When the frame's own result was ready (`done_ms`), if it is the
    /// frame on display: `at_ms − shown_ms` is the time the clinician took.
    pub shown_ms: Option<f64>,
    /// What the pipeline did; `None` for an acceptance or a rejection.
    pub correction: Option<Correction>,
    /// Why the request was not applied (the stream went on).
    pub rejected: Option<String>,
}

/// Requests between the file's reader and the inference thread.
#[derive(Debug, Default)]
pub struct CorrectionQueue {
    pending: Mutex<VecDeque<Request>>,
}

impl CorrectionQueue {
    /// An empty queue.
    pub fn new() -> Arc<CorrectionQueue> {
        Arc::new(CorrectionQueue::default())
    }

    /// Adds a request; beyond [`MAX_PENDING`] the oldest is dropped (logged).
    pub fn push(&self, request: Request) {
        let mut q = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if q.len() >= MAX_PENDING {
            if let Some(old) = q.pop_front() {
                log::warn!(
                    "corrections: more than {MAX_PENDING} requests waiting: the oldest (frame {}) dropped",
                    old.frame()
                );
            }
        }
        q.push_back(request);
    }

    /// The oldest waiting request.
    pub fn pop(&self) -> Option<Request> {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()
    }
}

/// A thread that follows a corrections file as a UI appends to it and
/// queues its requests. The file need not exist yet; a file that shrinks
/// (truncated, replaced) is read again from its start. Dropping the feed
/// stops the thread.
#[derive(Debug)]
pub struct FileFeed {
    queue: Arc<CorrectionQueue>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FileFeed {
    /// Starts following `path`, looking for new lines every `poll`. What
    /// the file already holds is queued before this returns, so a scripted
    /// session written ahead of the run is served frame by frame.
    pub fn watch(path: &Path, poll: Duration) -> std::io::Result<FileFeed> {
        let queue = CorrectionQueue::new();
        let stop = Arc::new(AtomicBool::new(false));
        let mut reader = LineReader::new(path.to_path_buf());
        let shown = path.display().to_string();
        let feed = move |reader: &mut LineReader, q: &CorrectionQueue| {
            reader.poll(&mut |n, line| match parse_request(line) {
                Ok(r) => q.push(r),
                Err(e) => log::warn!("{shown}:{n}: not a correction request, skipped: {e}"),
            });
        };
        feed(&mut reader, &queue);
        let (q, s) = (Arc::clone(&queue), Arc::clone(&stop));
        let thread = std::thread::Builder::new()
            .name("corrections".into())
            .spawn(move || {
                while !s.load(Ordering::Acquire) {
                    std::thread::sleep(poll);
                    feed(&mut reader, &q);
                }
            })?;
        log::info!("corrections: following {}", path.display());
        Ok(FileFeed {
            queue,
            stop,
            thread: Some(thread),
        })
    }

    /// The queue the stream takes requests from.
    pub fn queue(&self) -> Arc<CorrectionQueue> {
        Arc::clone(&self.queue)
    }
}

impl Drop for FileFeed {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads the complete lines appended to a file since the last poll.
#[derive(Debug)]
pub struct LineReader {
    path: PathBuf,
    offset: u64,
    line_no: usize,
    partial: Vec<u8>,
    skipping: bool,
    chunk: Vec<u8>,
}

impl LineReader {
    /// A reader at the start of `path` (which may not exist yet).
    pub fn new(path: PathBuf) -> LineReader {
        LineReader {
            path,
            offset: 0,
            line_no: 0,
            partial: Vec::new(),
            skipping: false,
            chunk: vec![0; 64 * 1024],
        }
    }

    /// Hands each new complete line (1-based line number, text without the
    /// newline; blank lines skipped) to `each`. A missing or unreadable
    /// file is not an error: there is nothing new yet.
    pub fn poll(&mut self, each: &mut dyn FnMut(usize, &str)) {
        let Ok(mut f) = File::open(&self.path) else {
            return;
        };
        let Ok(len) = f.metadata().map(|m| m.len()) else {
            return;
        };
        if len < self.offset {
            log::warn!(
                "{}: shorter than before (truncated or replaced): read again from its start",
                self.path.display()
            );
            self.offset = 0;
            self.line_no = 0;
            self.partial.clear();
            self.skipping = false;
        }
        if len == self.offset || f.seek(SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        loop {
            let n = match f.read(&mut self.chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            self.offset += n as u64;
            for &b in &self.chunk[..n] {
                if b != b'\n' {
                    if self.partial.len() < MAX_LINE {
                        self.partial.push(b);
                    } else {
                        self.skipping = true;
                    }
                    continue;
                }
                self.line_no += 1;
                if self.skipping {
                    log::warn!(
                        "{}:{}: a line longer than {MAX_LINE} bytes, skipped",
                        self.path.display(),
                        self.line_no
                    );
                } else {
                    match std::str::from_utf8(&self.partial) {
                        Ok(text) if text.trim().is_empty() => {}
                        Ok(text) => each(self.line_no, text),
                        Err(_) => log::warn!(
                            "{}:{}: not UTF-8, skipped",
                            self.path.display(),
                            self.line_no
                        ),
                    }
                }
                self.partial.clear();
                self.skipping = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_bad_ones_say_what_was_expected() {
        assert_eq!(
            parse_request(r#"{"frame": 41, "points": ["120,88,+", "40, 60, -"]}"#),
            Ok(Request::Clicks {
                frame: 41,
                clicks: vec![
                    Click {
                        x: 120.0,
                        y: 88.0,
                        positive: true
                    },
                    Click {
                        x: 40.0,
                        y: 60.0,
                        positive: false
                    }
                ]
            })
        );
        assert_eq!(
            parse_request(r#"{"frame": 7, "accept": true}"#),
            Ok(Request::Accept { frame: 7 })
        );
        for (line, says) in [
            ("not json", "expected {\"frame\": N"),
            (r#"{"frame": -1, "accept": true}"#, "expected"),
            (r#"{"frame": 1}"#, "needs \"points\" or \"accept\""),
            (r#"{"frame": 1, "accept": false}"#, "needs"),
            (
                r#"{"frame": 1, "points": ["1,2,+"], "accept": true}"#,
                "two",
            ),
            (
                r#"{"frame": 1, "points": ["1,2,x"]}"#,
                "expected X,Y,+ or X,Y,-",
            ),
            (r#"{"frame": 1, "points": ["nan,2,+"]}"#, "expected X,Y,+"),
            (r#"{"frame": 1, "points": ["-1,2,+"]}"#, "expected X,Y,+"),
            (r#"{"frame": 1, "point": ["1,2,+"]}"#, "unknown field"),
        ] {
            let e = parse_request(line).unwrap_err();
            assert!(e.contains(says), "{line}: {e}");
        }
        let many: Vec<String> = (0..=MAX_CLICKS).map(|i| format!("\"{i},1,+\"")).collect();
        let line = format!(r#"{{"frame": 1, "points": [{}]}}"#, many.join(","));
        assert!(parse_request(&line).unwrap_err().contains("at most"));
    }

    #[test]
    fn the_reader_takes_complete_lines_as_they_are_appended() {
        use std::io::Write;
        let dir = std::env::temp_dir().join(format!("sammix-corrections-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("corrections.jsonl");
        let _ = std::fs::remove_file(&path);
        let mut r = LineReader::new(path.clone());
        let mut got = Vec::new();
        r.poll(&mut |n, l| got.push((n, l.to_string())));
        assert!(got.is_empty(), "no file yet");
        let mut f = File::create(&path).unwrap();
        f.write_all(b"one\n\ntw").unwrap();
        r.poll(&mut |n, l| got.push((n, l.to_string())));
        assert_eq!(got, vec![(1, "one".to_string())]);
        f.write_all(b"o\n").unwrap();
        r.poll(&mut |n, l| got.push((n, l.to_string())));
        assert_eq!(got[1], (3, "two".to_string()));
        // a line too long is skipped whole; the next one is read
        f.write_all(&vec![b'x'; MAX_LINE + 10]).unwrap();
        f.write_all(b"\nthree\n").unwrap();
        r.poll(&mut |n, l| got.push((n, l.to_string())));
        assert_eq!(got[2], (5, "three".to_string()));
        assert_eq!(got.len(), 3);
        // truncated: read again from the start
        drop(f);
        std::fs::write(&path, b"four\n").unwrap();
        r.poll(&mut |n, l| got.push((n, l.to_string())));
        assert_eq!(got[3], (1, "four".to_string()));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_queue_keeps_the_newest_requests() {
        let q = CorrectionQueue::new();
        for frame in 0..(MAX_PENDING as u64 + 3) {
            q.push(Request::Accept { frame });
        }
        assert_eq!(q.pop(), Some(Request::Accept { frame: 3 }));
    }
}
