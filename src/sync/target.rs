//! The gateways a server keeps in step (`serve --sync-to`, `--sync-targets`): where each is,
//! which generation of Bifrost's API it speaks, and its credentials, which come from the
//! environment or a file and never from the command line (where other users could read them).

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Which generation of Bifrost's provider API a target speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Generation {
    /// Keys inside the provider body (Bifrost v1.4, and this server).
    G1,
    /// Keys through `/keys` only (Bifrost v1.5+): a provider body's keys are ignored.
    G2,
}

impl Generation {
    /// `g1` or `g2`.
    pub fn as_str(self) -> &'static str {
        match self {
            Generation::G1 => "g1",
            Generation::G2 => "g2",
        }
    }
}

/// How a target authenticates a request.
#[derive(Clone, Default)]
pub enum Credentials {
    /// No credentials (an open gateway on loopback).
    #[default]
    None,
    /// `Authorization: Bearer` (this server's tokens).
    Bearer(String),
    /// HTTP Basic (a Bifrost gateway's admin auth).
    Basic { user: String, password: String },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credentials::None => "none",
            Credentials::Bearer(_) => "bearer",
            Credentials::Basic { .. } => "basic",
        })
    }
}

/// One gateway to keep in step.
#[derive(Clone, Debug)]
pub struct Target {
    /// Its base URL (no user-info: that would be a credential on the command line).
    pub url: url::Url,
    /// The generation it speaks; `None`: detected from what it answers.
    pub generation: Option<Generation>,
    pub credentials: Credentials,
}

impl Target {
    /// The URL as status, logs and metrics name the target.
    pub fn shown(&self) -> String {
        self.url.as_str().trim_end_matches('/').to_string()
    }
}

/// An entry of the targets file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    url: String,
    #[serde(default)]
    generation: Option<GenerationSetting>,
    /// A file holding the bearer token (one line).
    #[serde(default)]
    bearer_token_file: Option<PathBuf>,
    /// An environment variable holding the bearer token.
    #[serde(default)]
    bearer_token_env: Option<String>,
    /// A file holding `USER:PASSWORD` (one line).
    #[serde(default)]
    basic_auth_file: Option<PathBuf>,
    /// An environment variable holding `USER:PASSWORD`.
    #[serde(default)]
    basic_auth_env: Option<String>,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum GenerationSetting {
    Auto,
    G1,
    G2,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    target: Vec<Entry>,
}

/// The targets of `--sync-to` (credentials from `BIFROST_SYNC_TOKEN` or `BIFROST_SYNC_BASIC_AUTH`)
/// and of the targets file, checked: a URL with credentials in it, a duplicate, or a plain-HTTP
/// target off loopback (which would carry secrets in clear) is refused.
pub fn targets(
    urls: &[String],
    file: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Target>, String> {
    let shared = match (
        env("BIFROST_SYNC_TOKEN").filter(|t| !t.is_empty()),
        env("BIFROST_SYNC_BASIC_AUTH").filter(|t| !t.is_empty()),
    ) {
        (Some(_), Some(_)) => {
            return Err("set BIFROST_SYNC_TOKEN or BIFROST_SYNC_BASIC_AUTH, not both".into());
        }
        (Some(token), None) => Credentials::Bearer(token),
        (None, Some(basic)) => basic_pair(&basic, "BIFROST_SYNC_BASIC_AUTH")?,
        (None, None) => Credentials::None,
    };
    let mut out = Vec::new();
    for url in urls.iter().filter(|u| !u.is_empty()) {
        out.push(Target {
            url: checked_url(url, "--sync-to")?,
            generation: None,
            credentials: shared.clone(),
        });
    }
    if let Some(path) = file {
        let shown = path.display();
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
        let parsed: File = toml::from_str(&text).map_err(|e| {
            // The error's text may quote the line; say where only.
            let at = e
                .span()
                .map(|s| format!(" at byte {}", s.start))
                .unwrap_or_default();
            format!("{shown}: not a targets file{at}: {}", e.message())
        })?;
        for (i, entry) in parsed.target.into_iter().enumerate() {
            let place = format!("{shown}: target {}", i + 1);
            out.push(Target {
                url: checked_url(&entry.url, &place)?,
                generation: match entry.generation {
                    None | Some(GenerationSetting::Auto) => None,
                    Some(GenerationSetting::G1) => Some(Generation::G1),
                    Some(GenerationSetting::G2) => Some(Generation::G2),
                },
                credentials: entry_credentials(&entry, env, &place)?,
            });
        }
    }
    for (i, target) in out.iter().enumerate() {
        if out[..i].iter().any(|t| t.shown() == target.shown()) {
            return Err(format!("sync target {} is named twice", target.shown()));
        }
    }
    Ok(out)
}

fn entry_credentials(
    entry: &Entry,
    env: &dyn Fn(&str) -> Option<String>,
    place: &str,
) -> Result<Credentials, String> {
    let read = |path: &PathBuf| {
        std::fs::read_to_string(path)
            .map(|t| t.trim_end_matches(['\r', '\n']).to_string())
            .map_err(|e| format!("{place}: cannot read {}: {e}", path.display()))
    };
    let from_env = |name: &String| {
        env(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("{place}: the environment variable {name} is not set"))
    };
    let given = [
        entry.bearer_token_file.is_some(),
        entry.bearer_token_env.is_some(),
        entry.basic_auth_file.is_some(),
        entry.basic_auth_env.is_some(),
    ];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(format!(
            "{place}: give one of bearer_token_file, bearer_token_env, basic_auth_file, basic_auth_env"
        ));
    }
    Ok(if let Some(path) = &entry.bearer_token_file {
        Credentials::Bearer(read(path)?)
    } else if let Some(name) = &entry.bearer_token_env {
        Credentials::Bearer(from_env(name)?)
    } else if let Some(path) = &entry.basic_auth_file {
        basic_pair(&read(path)?, place)?
    } else if let Some(name) = &entry.basic_auth_env {
        basic_pair(&from_env(name)?, place)?
    } else {
        Credentials::None
    })
}

fn basic_pair(text: &str, place: &str) -> Result<Credentials, String> {
    match text.split_once(':') {
        Some((user, password)) => Ok(Credentials::Basic {
            user: user.to_string(),
            password: password.to_string(),
        }),
        None => Err(format!("{place}: basic auth takes USER:PASSWORD")),
    }
}

fn checked_url(text: &str, place: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|e| format!("{place}: not a URL ({e})"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "{place}: a target URL may not hold credentials; give them in the environment or the targets file"
        ));
    }
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name == "localhost",
        None => false,
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(format!(
                "{place}: {} is plain HTTP off loopback: secrets would cross the network in clear; use https",
                url.as_str()
            ));
        }
        other => return Err(format!("{place}: unsupported scheme {other}")),
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{place}: a target URL takes no query or fragment"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn urls_with_credentials_or_in_clear_off_loopback_are_refused() {
        for bad in [
            "http://user:pw@127.0.0.1:8080",
            "http://gateway.internal:8080",
            "ftp://127.0.0.1",
            "https://gw?x=1",
        ] {
            assert!(targets(&[bad.into()], None, &no_env).is_err(), "{bad}");
        }
        let ok = targets(
            &[
                "http://127.0.0.1:8080/".into(),
                "https://gw.internal".into(),
            ],
            None,
            &no_env,
        )
        .unwrap();
        assert_eq!(ok[0].shown(), "http://127.0.0.1:8080");
        assert!(
            targets(
                &["http://127.0.0.1:1".into(), "http://127.0.0.1:1/".into()],
                None,
                &no_env
            )
            .is_err()
        );
    }

    #[test]
    fn the_targets_file_names_credentials_by_file_or_variable() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("basic");
        std::fs::write(&secret, "admin:s3cret\n").unwrap();
        let file = dir.path().join("targets.toml");
        std::fs::write(
            &file,
            format!(
                "[[target]]\nurl = \"http://127.0.0.1:9001\"\ngeneration = \"g2\"\nbasic_auth_file = {:?}\n\n[[target]]\nurl = \"http://127.0.0.1:9002\"\nbearer_token_env = \"GW2\"\n",
                secret.display().to_string()
            ),
        )
        .unwrap();
        let env = |name: &str| (name == "GW2").then(|| "tok".to_string());
        let parsed = targets(&[], Some(&file), &env).unwrap();
        assert_eq!(parsed[0].generation, Some(Generation::G2));
        assert!(
            matches!(&parsed[0].credentials, Credentials::Basic { user, password } if user == "admin" && password == "s3cret")
        );
        assert!(matches!(&parsed[1].credentials, Credentials::Bearer(t) if t == "tok"));
        assert!(targets(&[], Some(&file), &no_env).is_err());
        std::fs::write(
            &file,
            "[[target]]\nurl = \"http://127.0.0.1:1\"\ntoken = \"x\"\n",
        )
        .unwrap();
        let refused = targets(&[], Some(&file), &no_env).unwrap_err();
        assert!(!refused.contains("\"x\""), "{refused}");
    }
}
