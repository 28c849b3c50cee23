//! The contract's black-box checks, against any server that claims to speak the provider API:
//! this one, a Bifrost, or another implementation. `bifrost-providers conformance --url URL`
//! (or this crate's `bifrost-providers-conformance` binary) runs them from the command line; the integration tests run the same checks against the local
//! server on every store.
//!
//! Safe against a live deployment: every check works on providers whose names this run makes
//! (`bfc-<run id>-<n>`, custom providers), removes them at the end (and on Ctrl-C), and never
//! reads or writes any other provider (it does not even list them).
//!
//! A profile says what the target claims: this contract (every check must pass), or a Bifrost
//! generation, for which the checks Bifrost is known to fail are reported as known deviations,
//! and a known deviation that passes is reported as an unexpected pass.

mod checks;
pub mod command;
mod report;
mod target;

use std::time::{Duration, Instant};

pub use report::{Outcome, Report, Verdict};
pub use target::Target;

/// What the target claims to implement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// This project's contract (CONTRACT.md): every check must pass.
    Contract,
    /// Bifrost v1.4.x: keys inside the provider body.
    G1,
    /// Bifrost v1.5 and later: keys under `/keys`.
    G2,
}

/// How to run.
pub struct Options {
    pub profile: Profile,
    /// Check names or groups to run (all when empty).
    pub only: Vec<String>,
    /// Check names or groups to leave out.
    pub skip: Vec<String>,
    /// Print a progress line on stderr while checks run.
    pub progress: bool,
}

/// One check: a name (`group.check`), what it verifies, and, per generation, why Bifrost is
/// known to fail it.
pub struct Check {
    pub name: &'static str,
    pub about: &'static str,
    pub known_in: &'static [(Profile, &'static str)],
    pub run: for<'a> fn(&'a Target) -> checks::CheckFuture<'a>,
}

impl Options {
    /// The names in `--only` and `--skip` that name no check and no group: a typo would
    /// otherwise run nothing, or everything, and look green.
    pub fn unknown_names(&self) -> Vec<&str> {
        self.only
            .iter()
            .chain(&self.skip)
            .map(String::as_str)
            .filter(|n| !checks().iter().any(|c| c.name == *n || c.group() == *n))
            .collect()
    }

    /// How many checks this selection runs (a selection of none is refused, never green).
    pub fn selected(&self) -> usize {
        checks().iter().filter(|c| c.selected(self)).count()
    }
}

impl Check {
    fn group(&self) -> &str {
        self.name.split('.').next().unwrap_or(self.name)
    }

    fn selected(&self, options: &Options) -> bool {
        let named = |list: &[String]| list.iter().any(|n| n == self.name || n == self.group());
        (options.only.is_empty() || named(&options.only)) && !named(&options.skip)
    }
}

/// Every check, in the order they run.
pub fn checks() -> &'static [Check] {
    checks::ALL
}

/// Runs the selected checks against `target`, then removes what they created.
pub async fn run(target: &Target, options: &Options) -> Report {
    let started = Instant::now();
    let selected: Vec<&Check> = checks().iter().filter(|c| c.selected(options)).collect();
    let mut outcomes = Vec::with_capacity(selected.len());
    for (i, check) in selected.iter().enumerate() {
        if options.progress {
            eprint!("\r\x1b[2K[{}/{}] {}", i + 1, selected.len(), check.name);
        }
        let began = Instant::now();
        let result = tokio::time::timeout(Duration::from_secs(60), (check.run)(target))
            .await
            .unwrap_or_else(|_| Err("the check did not finish within 60 s".into()));
        let known = check
            .known_in
            .iter()
            .find(|(p, _)| *p == options.profile)
            .map(|(_, why)| *why);
        let verdict = match (result, known) {
            (Err(checks::Failure::Skip(why)), _) => Verdict::Skipped(why),
            (Ok(()), None) => Verdict::Pass,
            (Ok(()), Some(why)) => Verdict::UnexpectedPass(why.to_string()),
            (Err(checks::Failure::Fail(e)), None) => Verdict::Fail(e),
            (Err(checks::Failure::Fail(e)), Some(why)) => {
                Verdict::KnownDeviation(format!("{why} ({e})"))
            }
        };
        outcomes.push(Outcome {
            name: check.name,
            group: check.group().to_string(),
            about: check.about,
            time: began.elapsed(),
            verdict,
        });
    }
    if options.progress {
        eprint!("\r\x1b[2K");
    }
    target.clean_up().await;
    Report {
        outcomes,
        time: started.elapsed(),
    }
}
