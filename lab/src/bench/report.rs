//! Writing a run's results into BENCHMARKS.md: each scenario owns one section between
//! marker comments, replaced by the next run of that scenario and left alone otherwise.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;

/// The first line a command prints, or `unknown` when it cannot run.
pub async fn first_line(program: &str, args: &[&str]) -> String {
    match tokio::process::Command::new(program).args(args).output().await {
        Ok(out) => {
            let text = if out.stdout.is_empty() { out.stderr } else { out.stdout };
            String::from_utf8_lossy(&text).lines().next().unwrap_or("unknown").trim().to_owned()
        }
        Err(_) => "unknown".into(),
    }
}

/// Cores, memory and processor of this machine, from /proc.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown processor".into());
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZeroUsize::get);
    let memory_kb: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    format!("{cores} cores ({model}), {:.0} GiB memory", memory_kb as f64 / 1024.0 / 1024.0)
}

/// The header of every section: when, on what, with which versions, by which command.
pub async fn preamble(command: &str) -> String {
    let (k6, influxd, nats, commit) = tokio::join!(
        super::k6::version(),
        first_line("influxd", &["version"]),
        first_line("nats-server", &["--version"]),
        first_line("git", &["rev-parse", "--short", "HEAD"]),
    );
    let date = first_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).await;
    let mut text = String::new();
    let _ = writeln!(text, "```sh\n{command}\n```\n");
    let _ = writeln!(
        text,
        "Run {date} at commit {commit} on {}; {k6}; {influxd}; {nats}. The load generator, the \
         services, InfluxDB and NATS share the machine.\n",
        machine()
    );
    text
}

/// Replaces the section of `scenario` in the report at `path` with `body` (headed by
/// `title`), or appends it when the report has none yet.
///
/// # Errors
/// When the report cannot be read or written.
pub fn write_section(path: &Path, scenario: &str, title: &str, body: &str) -> anyhow::Result<()> {
    let begin = format!("<!-- velometry-lab bench {scenario}: begin -->");
    let end = format!("<!-- velometry-lab bench {scenario}: end -->");
    let section = format!("{begin}\n## {title}\n\n{}\n{end}", body.trim_end());
    let report = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let updated = match (report.find(&begin), report.find(&end)) {
        (Some(a), Some(b)) if a < b => format!("{}{section}{}", &report[..a], &report[b + end.len()..]),
        _ => format!("{}\n\n{section}\n", report.trim_end()),
    };
    std::fs::write(path, updated).with_context(|| format!("cannot write {}", path.display()))
}

/// A number with thousands separators, as the report writes them.
pub fn thousands(n: f64) -> String {
    let digits = format!("{:.0}", n.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_replaced_in_place_or_appended() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("BENCHMARKS.md");
        std::fs::write(&path, "# Benchmarks\n\n## Other\n\nkept\n").expect("write");
        write_section(&path, "requests", "Requests", "first").expect("append");
        std::fs::write(&path, std::fs::read_to_string(&path).expect("read") + "\n## Last\n").expect("write");
        write_section(&path, "requests", "Requests", "second").expect("replace");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.contains("## Other\n\nkept\n"));
        assert!(text.contains("## Requests\n\nsecond\n"), "{text}");
        assert!(!text.contains("first"));
        assert!(text.trim_end().ends_with("## Last"), "the section stayed where it was: {text}");
    }

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(15_000.0), "15,000");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
    }
}
