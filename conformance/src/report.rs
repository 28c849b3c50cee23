//! What a conformance run found: a line per check, a summary, and JUnit XML for CI.

use std::time::Duration;

use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};

/// How one check came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// The target does not do what the contract says.
    Fail(String),
    /// It fails as the chosen Bifrost generation is known to (not a failure).
    KnownDeviation(String),
    /// A known deviation of the chosen generation that did not happen (reported, not a failure).
    UnexpectedPass(String),
    /// The target cannot meet the check's precondition (it has no `/keys`, sends no `ETag`, …):
    /// nothing was judged, and the reason says why.
    Skipped(String),
}

/// One check's outcome.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub name: &'static str,
    pub group: String,
    pub about: &'static str,
    pub time: Duration,
    pub verdict: Verdict,
}

/// A whole run.
#[derive(Debug, Clone)]
pub struct Report {
    pub outcomes: Vec<Outcome>,
    pub time: Duration,
}

impl Report {
    /// The checks that failed.
    pub fn failures(&self) -> impl Iterator<Item = &Outcome> {
        self.outcomes
            .iter()
            .filter(|o| matches!(o.verdict, Verdict::Fail(_)))
    }

    /// A line per check, then the summary.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for o in &self.outcomes {
            let ms = o.time.as_millis();
            let line = match &o.verdict {
                Verdict::Pass => format!("PASS {} ({ms} ms)", o.name),
                Verdict::Fail(why) => format!("FAIL {}: {why}", o.name),
                Verdict::KnownDeviation(why) => format!("KNOWN DEVIATION {}: {why}", o.name),
                Verdict::UnexpectedPass(why) => {
                    format!("UNEXPECTED PASS {}: known to fail because {why}", o.name)
                }
                Verdict::Skipped(why) => format!("SKIPPED {}: {why}", o.name),
            };
            out.push_str(&line);
            out.push('\n');
        }
        out.push_str(&self.summary());
        out.push('\n');
        out
    }

    pub fn summary(&self) -> String {
        let count =
            |f: fn(&Verdict) -> bool| self.outcomes.iter().filter(|o| f(&o.verdict)).count();
        format!(
            "{} passed, {} failed, {} known deviations, {} unexpected passes, {} skipped in {:.1} s",
            count(|v| matches!(v, Verdict::Pass)),
            count(|v| matches!(v, Verdict::Fail(_))),
            count(|v| matches!(v, Verdict::KnownDeviation(_))),
            count(|v| matches!(v, Verdict::UnexpectedPass(_))),
            count(|v| matches!(v, Verdict::Skipped(_))),
            self.time.as_secs_f64()
        )
    }

    /// JUnit XML: one suite per check group, failures as `<failure>`, known deviations as
    /// skipped with their reason, unexpected passes as passes with a system-out note.
    pub fn junit(&self, name: &str) -> Result<String, String> {
        let mut report = quick_junit::Report::new(name);
        report.set_time(self.time);
        let mut groups: Vec<&str> = self.outcomes.iter().map(|o| o.group.as_str()).collect();
        groups.dedup();
        for group in groups {
            let mut suite = TestSuite::new(group);
            for o in self.outcomes.iter().filter(|o| o.group == group) {
                let status = match &o.verdict {
                    Verdict::Pass | Verdict::UnexpectedPass(_) => TestCaseStatus::success(),
                    Verdict::Fail(why) => {
                        let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                        s.set_message(why.as_str()).set_description(o.about);
                        s
                    }
                    Verdict::KnownDeviation(why) => {
                        let mut s = TestCaseStatus::skipped();
                        s.set_message(format!("known deviation: {why}"));
                        s
                    }
                    Verdict::Skipped(why) => {
                        let mut s = TestCaseStatus::skipped();
                        s.set_message(format!("skipped: {why}"));
                        s
                    }
                };
                let mut case = TestCase::new(o.name, status);
                case.set_classname(format!("conformance.{group}"))
                    .set_time(o.time);
                if let Verdict::UnexpectedPass(why) = &o.verdict {
                    case.set_system_out(format!("unexpected pass: known to fail because {why}"));
                }
                suite.add_test_case(case);
            }
            report.add_test_suite(suite);
        }
        report.to_string().map_err(|e| e.to_string())
    }
}
