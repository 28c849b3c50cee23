//! The tokens file kept in force: read at start, read again when it changes and on SIGHUP.
//!
//! Revoking or rotating a token is an edit of the file, and takes effect within a second without
//! a restart. A file that no longer parses (an edit half-saved, a typo) keeps the tokens in
//! force, and the log says why; so does a file that disappears. The log never shows a token or
//! its digest.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use crate::domain::tokens::Tokens;

/// How often the file's modification time and size are looked at.
const POLL: Duration = Duration::from_secs(1);

/// The tokens in force, shared by every request.
#[derive(Debug, Clone)]
pub struct TokenFile {
    current: Arc<RwLock<Arc<Tokens>>>,
}

/// What identifies one version of the file cheaply.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

impl TokenFile {
    /// Tokens that never change (only `--admin-token`, or none).
    pub fn fixed(tokens: Tokens) -> Self {
        TokenFile {
            current: Arc::new(RwLock::new(Arc::new(tokens))),
        }
    }

    /// Reads `path` (it must parse: a server does not start on a broken file), adds the admin
    /// token to it, and keeps it in force from then on. `admin` is added to every version.
    pub fn watch(path: PathBuf, admin: Option<String>) -> Result<Self, String> {
        let first = load(&path, admin.as_deref())?;
        let file = TokenFile::fixed(first);
        let kept = file.clone();
        tokio::spawn(async move {
            let mut seen = stamp(&path);
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
                if !asked && now == seen {
                    continue;
                }
                seen = now;
                match load(&path, admin.as_deref()) {
                    Ok(tokens) => {
                        let count = tokens.len();
                        *kept.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(tokens);
                        tracing::info!(file = %path.display(), tokens = count, "tokens file read again");
                    }
                    Err(why) => tracing::warn!(
                        file = %path.display(),
                        error = %why,
                        "tokens file not taken: the tokens in force stay"
                    ),
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
