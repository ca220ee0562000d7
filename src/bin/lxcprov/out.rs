//! The one writer of results on stdout.

/// The one writer of results on stdout. With `--json`, every record is one line of the
/// envelope `{"type": TYPE, "data": DATA}` (JSON Lines); without it, text meant for people.
/// A closed pipe (`lxcprov list | head -1`) surfaces as an `io::ErrorKind::BrokenPipe` error,
/// which the binary treats as a quiet end.
pub struct Out {
    pub json: bool,
}

impl Out {
    pub fn new(json: bool) -> Out {
        Out { json }
    }

    /// One JSON Lines record of the envelope.
    pub fn record<T: serde::Serialize + ?Sized>(&self, kind: &str, data: &T) -> std::io::Result<()> {
        let line = envelope(kind, data)?;
        self.write(&(line + "\n"))
    }

    /// Text for people (written as is).
    pub fn text(&self, s: &str) -> std::io::Result<()> {
        self.write(s)
    }

    fn write(&self, s: &str) -> std::io::Result<()> {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        out.write_all(s.as_bytes())?;
        out.flush()
    }
}

/// `{"type": KIND, "data": DATA}` as one line (no newline).
pub fn envelope<T: serde::Serialize + ?Sized>(kind: &str, data: &T) -> std::io::Result<String> {
    #[derive(serde::Serialize)]
    struct Envelope<'a, T: ?Sized> {
        #[serde(rename = "type")]
        kind: &'a str,
        data: &'a T,
    }
    serde_json::to_string(&Envelope { kind, data }).map_err(std::io::Error::other)
}
