//! Console sessions: a browser cannot send a bearer token on a link or a form, so a token given
//! once at the login page opens a session, named by a random cookie.
//!
//! The session holds the token as the tokens file names it (its name and digest, never the
//! token itself), and every request asks the tokens in force for it again: a token revoked,
//! rotated (a new digest) or expired ends its sessions at their next request. Sessions live in
//! this process's memory only: a restart, or a request to another replica, asks for a login.
//! Each session has its own form token, which every form carries and every post must return.
//!
//! On a server without tokens there is no login, but each browser still gets a session (with no
//! token) for its form token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use subtle::ConstantTimeEq;

use crate::domain::tokens::{Caller, Token};
use crate::http::token_file::TokenFile;

/// The session cookie's name.
pub const COOKIE: &str = "bifrost_console";

/// How long a session lasts from its login.
pub const LIFETIME: Duration = Duration::from_secs(30 * 60);

/// The most sessions held at once: past it, the oldest is ended.
const MAX_SESSIONS: usize = 10_000;

/// What the console keeps: its sessions, and whether browsers reach it over TLS.
pub struct Console {
    pub sessions: Sessions,
    /// Whether the public listener speaks TLS (the cookie is then `Secure`).
    pub https: bool,
}

impl Console {
    pub fn new(https: bool) -> Self {
        Console {
            sessions: Sessions::default(),
            https,
        }
    }
}

/// One browser's session.
#[derive(Clone)]
pub struct Session {
    /// The token it was opened with; `None` on a server without tokens.
    token: Option<Arc<Token>>,
    /// The form token its forms carry.
    pub form_token: String,
    started: Instant,
}

/// The sessions of this process.
#[derive(Default)]
pub struct Sessions {
    held: Mutex<HashMap<String, Session>>,
}

/// A session found for a request, with who it acts as now.
pub struct Found {
    pub id: String,
    pub session: Session,
    pub caller: Caller,
}

impl Sessions {
    /// Opens a session for `token` (`None`: a server without tokens); returns its cookie value.
    pub fn open(&self, token: Option<Arc<Token>>) -> (String, Session) {
        let session = Session {
            token,
            form_token: random(),
            started: Instant::now(),
        };
        let id = random();
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.retain(|_, s| s.started.elapsed() < LIFETIME);
        if held.len() >= MAX_SESSIONS
            && let Some(oldest) = held
                .iter()
                .min_by_key(|(_, s)| s.started)
                .map(|(id, _)| id.clone())
        {
            held.remove(&oldest);
        }
        held.insert(id.clone(), session.clone());
        (id, session)
    }

    /// The session named by cookie value `id`, if it is open, not too old, and its token is
    /// still in force (a session of a server without tokens only while the server has none).
    pub fn find(&self, id: &str, tokens: &TokenFile) -> Option<Found> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let session = held.get(id)?.clone();
        let caller = if session.started.elapsed() >= LIFETIME {
            None
        } else {
            match (&session.token, tokens.required()) {
                (None, false) => Some(Caller::Open),
                (Some(token), true) => tokens
                    .current()
                    .renewed(token, chrono::Utc::now())
                    .map(Caller::Token),
                _ => None,
            }
        };
        let Some(caller) = caller else {
            held.remove(id);
            return None;
        };
        Some(Found {
            id: id.to_string(),
            session,
            caller,
        })
    }

    /// Ends a session.
    pub fn close(&self, id: &str) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.remove(id);
    }
}

impl Session {
    /// Whether `given` is this session's form token.
    pub fn form_token_is(&self, given: &str) -> bool {
        bool::from(self.form_token.as_bytes().ct_eq(given.as_bytes()))
    }
}

/// 32 random bytes, base64url.
fn random() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the system has randomness");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The session cookie's value in a request's `Cookie` headers.
pub fn cookie(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == COOKIE)
        .map(|c| c.value().to_string())
}

/// The `Set-Cookie` value that gives a browser session `id` (`None`: that ends its session).
pub fn set_cookie(id: Option<&str>, secure: bool) -> String {
    let mut built = cookie::Cookie::build((COOKIE, id.unwrap_or_default().to_string()))
        .path("/ui")
        .http_only(true)
        .same_site(cookie::SameSite::Strict)
        .secure(secure);
    built = match id {
        Some(_) => built.max_age(cookie::time::Duration::seconds(LIFETIME.as_secs() as i64)),
        None => built.max_age(cookie::time::Duration::ZERO),
    };
    built.build().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tokens::Tokens;

    fn tokens(text: &str) -> TokenFile {
        TokenFile::fixed(Tokens::parse(text).unwrap())
    }

    fn entry(name: &str, token: &str) -> String {
        format!(
            "[[token]]\nname = \"{name}\"\nsha256 = \"{}\"\nscopes = [\"read\"]\n",
            crate::domain::tokens::digest_hex(token)
        )
    }

    #[test]
    fn a_session_ends_when_its_token_is_rotated_or_revoked() {
        let before = tokens(&entry("ops", "t-one"));
        let token = before
            .current()
            .authenticate("t-one", chrono::Utc::now())
            .unwrap()
            .clone();
        let sessions = Sessions::default();
        let (id, _) = sessions.open(Some(token));
        assert!(sessions.find(&id, &before).is_some());
        let rotated = tokens(&entry("ops", "t-two"));
        assert!(
            sessions.find(&id, &rotated).is_none(),
            "rotated: a new digest"
        );
        assert!(
            sessions.find(&id, &before).is_none(),
            "an ended session stays ended"
        );
    }

    #[test]
    fn a_session_without_a_token_ends_once_tokens_are_required() {
        let sessions = Sessions::default();
        let (id, _) = sessions.open(None);
        assert!(sessions.find(&id, &TokenFile::open()).is_some());
        assert!(sessions.find(&id, &tokens(&entry("ops", "t"))).is_none());
    }

    #[test]
    fn the_cookie_is_scoped_to_the_console_and_hidden_from_scripts() {
        let set = set_cookie(Some("abc"), true);
        for part in [
            "HttpOnly",
            "SameSite=Strict",
            "Path=/ui",
            "Secure",
            "Max-Age=1800",
        ] {
            assert!(set.contains(part), "{set}");
        }
        assert!(!set_cookie(Some("abc"), false).contains("Secure"));
        assert!(set_cookie(None, false).contains("Max-Age=0"));
    }
}
