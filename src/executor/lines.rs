//! Turning a child's raw output pipe into stamped [`OutputLine`]s: the line splitter (lossy UTF-8,
//! long lines split at [`MAX_LINE_BYTES`], a final unterminated line still emitted) and the reader task
//! that drains one pipe, with a bounded drain once the step's main process has exited.

use std::time::Duration;

use chrono::Utc;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{OutputLine, Stream};

/// Longest line emitted in one piece; longer lines are split into several [`OutputLine`]s.
pub(crate) const MAX_LINE_BYTES: usize = 16 * 1024;

/// Once the main process has exited, a pipe that stays silent this long is abandoned: whatever still
/// holds it escaped the step's process group.
const DRAIN_IDLE: Duration = Duration::from_millis(500);

/// Hard limit on reading a pipe after the main process exited, even if something keeps writing to it.
const DRAIN_MAX: Duration = Duration::from_secs(5);

/// Splits a byte stream into text lines.
///
/// `\n` ends a line and a `\r` just before it is dropped; invalid UTF-8 is replaced (lossy); a line
/// reaching `max` bytes is cut, at a character boundary when one is close.
#[derive(Debug)]
pub(crate) struct LineSplitter {
    pending: Vec<u8>,
    max: usize,
}

impl LineSplitter {
    /// A splitter that cuts lines at `max` bytes (at least 4, so a UTF-8 character always fits).
    pub(crate) fn new(max: usize) -> Self {
        Self {
            pending: Vec::new(),
            max: max.max(4),
        }
    }

    /// Feeds bytes and returns every line they complete.
    pub(crate) fn push(&mut self, mut bytes: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let room = self.max - self.pending.len();
            let window = &bytes[..bytes.len().min(room + 1)];
            match window.iter().position(|&b| b == b'\n') {
                Some(i) if i <= room => {
                    self.pending.extend_from_slice(&bytes[..i]);
                    if self.pending.last() == Some(&b'\r') {
                        self.pending.pop();
                    }
                    out.push(self.take(self.pending.len()));
                    bytes = &bytes[i + 1..];
                }
                _ => {
                    let n = bytes.len().min(room);
                    self.pending.extend_from_slice(&bytes[..n]);
                    bytes = &bytes[n..];
                    if self.pending.len() >= self.max {
                        let cut = utf8_cut(&self.pending);
                        out.push(self.take(cut));
                    }
                }
            }
        }
        out
    }

    /// The last line when the stream ended without a newline.
    pub(crate) fn finish(&mut self) -> Option<String> {
        if self.pending.is_empty() {
            None
        } else {
            Some(self.take(self.pending.len()))
        }
    }

    fn take(&mut self, n: usize) -> String {
        let rest = self.pending.split_off(n);
        let line = std::mem::replace(&mut self.pending, rest);
        String::from_utf8_lossy(&line).into_owned()
    }
}

/// Where to cut a full buffer so the first piece does not end inside a multi-byte UTF-8 character
/// (when the bytes are UTF-8 at all); the cut is never at 0.
fn utf8_cut(buf: &[u8]) -> usize {
    let n = buf.len();
    let mut start = n.saturating_sub(1);
    // A UTF-8 character is at most 4 bytes: back up over at most 3 continuation bytes.
    while n - start <= 3 && start > 0 && (buf[start] & 0xC0) == 0x80 {
        start -= 1;
    }
    let need = match buf.get(start) {
        Some(b) if b & 0xE0 == 0xC0 => 2,
        Some(b) if b & 0xF0 == 0xE0 => 3,
        Some(b) if b & 0xF8 == 0xF0 => 4,
        _ => 1,
    };
    if start > 0 && start + need > n {
        start
    } else {
        n
    }
}

/// Reads one pipe to its end and sends each line, stamped with the time it was read.
///
/// Once `exited` fires, the pipe is read only while it keeps producing data (see [`DRAIN_IDLE`],
/// [`DRAIN_MAX`]), so an orphan holding the pipe open cannot hang the step. A closed receiver does not
/// stop the reading: the child must never block on a full pipe.
pub(crate) async fn pump<R>(
    mut pipe: R,
    stream: Stream,
    lines: mpsc::Sender<OutputLine>,
    exited: CancellationToken,
) where
    R: AsyncRead + Unpin,
{
    let mut splitter = LineSplitter::new(MAX_LINE_BYTES);
    let mut buf = vec![0u8; 8 * 1024];
    let mut receiver_open = true;
    let mut drain_until: Option<Instant> = None;
    loop {
        let read = match drain_until {
            None => {
                tokio::select! {
                    r = pipe.read(&mut buf) => r,
                    () = exited.cancelled() => {
                        drain_until = Some(Instant::now() + DRAIN_MAX);
                        continue;
                    }
                }
            }
            Some(hard) => {
                let deadline = hard.min(Instant::now() + DRAIN_IDLE);
                match tokio::time::timeout_at(deadline, pipe.read(&mut buf)).await {
                    Ok(r) => r,
                    Err(_) => {
                        tracing::debug!(
                            ?stream,
                            "stopped reading a pipe held open after the step exited"
                        );
                        break;
                    }
                }
            }
        };
        let n = match read {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!(?stream, error = %e, "reading step output failed");
                break;
            }
        };
        for text in splitter.push(&buf[..n]) {
            receiver_open = send(&lines, receiver_open, stream, text).await;
        }
    }
    if let Some(text) = splitter.finish() {
        send(&lines, receiver_open, stream, text).await;
    }
}

async fn send(
    lines: &mpsc::Sender<OutputLine>,
    receiver_open: bool,
    stream: Stream,
    text: String,
) -> bool {
    if !receiver_open {
        return false;
    }
    let line = OutputLine {
        stream,
        at: Utc::now(),
        text,
    };
    lines.send(line).await.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]], max: usize) -> Vec<String> {
        let mut s = LineSplitter::new(max);
        let mut out = Vec::new();
        for c in chunks {
            out.extend(s.push(c));
        }
        out.extend(s.finish());
        out
    }

    /// name, input chunks, max line bytes, expected lines
    type Case<'a> = (&'a str, &'a [&'a [u8]], usize, &'a [&'a str]);

    #[test]
    fn splits_lines_table() {
        let cases: &[Case<'_>] = &[
            ("simple", &[b"a\nb\n"], 16, &["a", "b"]),
            ("final line without newline", &[b"a\nb"], 16, &["a", "b"]),
            ("empty lines kept", &[b"\n\nx\n"], 16, &["", "", "x"]),
            ("crlf", &[b"a\r\nb\r\n"], 16, &["a", "b"]),
            ("lone cr kept", &[b"a\rb\n"], 16, &["a\rb"]),
            (
                "across chunks",
                &[b"ab", b"c\nd", b"e\n"],
                16,
                &["abc", "de"],
            ),
            (
                "long line split",
                &[b"abcdefghij\n"],
                4,
                &["abcd", "efgh", "ij"],
            ),
            (
                "exactly max then newline",
                &[b"abcd\nx\n"],
                4,
                &["abcd", "x"],
            ),
            ("exactly max no newline", &[b"abcd"], 4, &["abcd"]),
            (
                "long across chunks",
                &[b"ab", b"cdef", b"g\n"],
                4,
                &["abcd", "efg"],
            ),
            ("invalid utf8 is lossy", &[b"a\xffb\n"], 16, &["a\u{fffd}b"]),
            // "é" is two bytes: the cut moves back so the character stays whole.
            (
                "utf8 boundary kept",
                &["abcé\n".as_bytes()],
                4,
                &["abc", "é"],
            ),
            ("nothing", &[], 16, &[]),
        ];
        for (name, chunks, max, want) in cases {
            assert_eq!(split(chunks, *max), *want, "case {name}");
        }
    }

    #[test]
    fn sixteen_kib_line_is_split() {
        let long = "x".repeat(MAX_LINE_BYTES * 2 + 10);
        let got = split(&[long.as_bytes(), b"\n"], MAX_LINE_BYTES);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].len(), MAX_LINE_BYTES);
        assert_eq!(got[1].len(), MAX_LINE_BYTES);
        assert_eq!(got[2].len(), 10);
    }
}
