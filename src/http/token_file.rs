//! The tokens file kept in force: read at start, read again when it changes and on SIGHUP.
//!
//! Revoking or rotating a token is an edit of the file, and takes effect within two [`POLL`]s
//! without a restart. A version is read only once it has held still for one poll: a writer that
//! truncates and then writes (most editors, `echo >`, `std::fs::write`) would otherwise be caught
//! between the two, and an empty file is a valid one that grants nothing. A file that no longer
//! parses (an edit half-saved, a typo) keeps the tokens in force, and the log says why; so does a
//! file that disappears. The log never shows a token or its digest.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use crate::domain::tokens::Tokens;
use crate::telemetry::metrics;

/// How often the file's identity, modification time and size are looked at (a `stat`, ten
/// times a second: nothing, beside a revoked token that keeps working).
pub const POLL: Duration = Duration::from_millis(100);

/// The tokens in force, shared by every request.
#[derive(Debug, Clone)]
pub struct TokenFile {
    current: Arc<RwLock<Arc<Tokens>>>,
    /// Whether a request needs a token: the server was given `--tokens` or `--admin-token`
    /// (a tokens file that grants nothing then opens nothing).
    required: bool,
}

/// What identifies one version of the file cheaply.
type Stamp = Option<(SystemTime, u64, u64)>;

fn stamp(path: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len(), meta.ino()))
}

impl TokenFile {
    /// No token at all: the API is open.
    pub fn open() -> Self {
        TokenFile {
            current: Arc::default(),
            required: false,
        }
    }

    /// Tokens that never change (`--admin-token` alone).
    pub fn fixed(tokens: Tokens) -> Self {
        TokenFile {
            current: Arc::new(RwLock::new(Arc::new(tokens))),
            required: true,
        }
    }

    /// Whether a request needs a token.
    pub fn required(&self) -> bool {
        self.required
    }

    /// Reads `path` (it must parse: a server does not start on a broken file), adds the admin
    /// token to it, and keeps it in force from then on. `admin` is added to every version.
    pub fn watch(path: PathBuf, admin: Option<String>) -> Result<Self, String> {
        // The stamp is taken before the reading, so that an edit made while it reads is seen.
        let mut seen = stamp(&path);
        // A version seen once and not yet read: it is read when the next poll sees it unchanged.
        let mut settling: Option<Stamp> = None;
        let first = load(&path, admin.as_deref())?;
        let file = TokenFile::fixed(first);
        let kept = file.clone();
        tokio::spawn(async move {
            let mut hangup =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
            loop {
                let asked = match hangup.as_mut() {
                    Some(signal) => tokio::select! {
                        _ = tokio::time::sleep(POLL) => false,
                        _ = signal.recv() => true,
                    },
                    None => {
                        tokio::time::sleep(POLL).await;
                        false
                    }
                };
                let now = stamp(&path);
                if !asked {
                    if now == seen {
                        settling = None;
                        continue;
                    }
                    if settling != Some(now) {
                        settling = Some(now);
                        continue;
                    }
                }
                settling = None;
                seen = now;
                match load(&path, admin.as_deref()) {
                    Ok(tokens) => {
                        let count = tokens.len();
                        metrics::token_reload(true);
                        *kept.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(tokens);
                        tracing::info!(file = %path.display(), tokens = count, "tokens file read again");
                    }
                    Err(why) => {
                        metrics::token_reload(false);
                        tracing::warn!(
                        file = %path.display(),
                        error = %why,
                        "tokens file not taken: the tokens in force stay"
                        );
                    }
                }
            }
        });
        Ok(file)
    }

    /// The tokens in force now.
    pub fn current(&self) -> Arc<Tokens> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

fn load(path: &Path, admin: Option<&str>) -> Result<Tokens, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
    let tokens = Tokens::parse(&text).map_err(|e| e.to_string())?;
    match admin {
        Some(token) => tokens.with_admin(token),
        None => Ok(tokens),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tokens::digest_hex;

    fn entry(name: &str, token: &str) -> String {
        format!(
            "[[token]]\nname = \"{name}\"\nsha256 = \"{}\"\nscopes = [\"read\"]\n",
            digest_hex(token)
        )
    }

    /// Waits until `check` holds of the tokens in force, for at most ten poll periods.
    async fn eventually(file: &TokenFile, check: impl Fn(&Tokens) -> bool) -> bool {
        for _ in 0..100 {
            if check(&file.current()) {
                return true;
            }
            tokio::time::sleep(POLL / 10).await;
        }
        false
    }

    #[tokio::test]
    async fn an_edit_takes_effect_and_a_broken_file_keeps_the_tokens_in_force() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.toml");
        std::fs::write(&path, entry("first", "token-one")).unwrap();
        let file = TokenFile::watch(path.clone(), Some("the-admin-token-1234".into())).unwrap();
        let now = chrono::Utc::now();
        assert!(file.current().authenticate("token-one", now).is_ok());
        assert!(
            file.current()
                .authenticate("the-admin-token-1234", now)
                .is_ok()
        );

        std::fs::write(&path, entry("second", "token-two-rotated")).unwrap();
        assert!(
            eventually(&file, |t| t.authenticate("token-two-rotated", now).is_ok()).await,
            "the edit took effect"
        );
        assert!(
            file.current().authenticate("token-one", now).is_err(),
            "revoked"
        );
        assert!(
            file.current()
                .authenticate("the-admin-token-1234", now)
                .is_ok()
        );

        std::fs::write(&path, "[[token]]\nname = ").unwrap();
        tokio::time::sleep(POLL * 3).await;
        assert!(
            file.current()
                .authenticate("token-two-rotated", now)
                .is_ok(),
            "a broken file keeps the tokens in force"
        );
        assert!(
            TokenFile::watch(path, None).is_err(),
            "a server does not start on it"
        );
    }

    /// A save that truncates the file and writes it a moment later is never taken as the empty
    /// file in between (which would grant nothing): when what follows does not parse, the tokens
    /// in force stay.
    #[tokio::test]
    async fn a_save_caught_between_truncation_and_writing_is_not_taken_as_empty() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.toml");
        std::fs::write(&path, entry("first", "token-one")).unwrap();
        let file = TokenFile::watch(path.clone(), None).unwrap();
        let now = chrono::Utc::now();
        for round in 0..6 {
            let mut handle = std::fs::File::create(&path).unwrap();
            tokio::time::sleep(POLL / 2).await;
            handle.write_all(b"[[token]]\nname = ").unwrap();
            drop(handle);
            tokio::time::sleep(POLL * 3).await;
            assert!(
                file.current().authenticate("token-one", now).is_ok(),
                "round {round}: the empty moment was taken"
            );
        }
    }
}
