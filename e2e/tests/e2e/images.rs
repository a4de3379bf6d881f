//! deploy/docker and .github/workflows: every Dockerfile passes hadolint and every workflow
//! actionlint; the Dockerfile has a runtime target for every service, running as non-root
//! with that service's binary and no other, listening on every interface at the ports it
//! exposes; and the images are built with the Rust release CI tests with. No Docker engine
//! runs here, so the images are checked as text; CI builds them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::helpers::root;

const DOCKERFILE: &str = "deploy/docker/Dockerfile";
const WORKFLOW: &str = ".github/workflows/ci.yml";

/// Runs a linter from the repository root. A linter that is missing fails the test saying
/// where to get it, never skips it.
fn lint(program: &str, args: &[String]) -> Output {
    Command::new(program).args(args).current_dir(root()).output().unwrap_or_else(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            panic!("{program} is not installed: run deploy/local/test.sh, which installs it");
        }
        panic!("cannot run {program}: {e}")
    })
}

fn report(output: &Output) -> String {
    format!(
        "{}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The repository's files (relative to its root) whose names `wanted` accepts, leaving out
/// git's folder, build output, local state and npm packages.
fn files(wanted: impl Fn(&str) -> bool) -> Vec<String> {
    fn walk(dir: &Path, wanted: &dyn Fn(&str) -> bool, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("a readable folder").map(|e| e.expect("an entry")) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let kind = entry.file_type().expect("a file type");
            if kind.is_dir() && ![".git", "target", ".velometry", "node_modules"].contains(&name.as_str()) {
                walk(&entry.path(), wanted, found);
            } else if kind.is_file() && wanted(&name) {
                found.push(entry.path());
            }
        }
    }
    let root = root();
    let mut found = Vec::new();
    walk(&root, &wanted, &mut found);
    let mut found: Vec<String> = found
        .iter()
        .map(|p| p.strip_prefix(&root).expect("under the root").to_string_lossy().into_owned())
        .collect();
    found.sort();
    found
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

// ---------------------------------------------------------------------------------------
// The Dockerfile, read simply: enough for the instructions it uses

/// One instruction: its keyword in upper case and its arguments, continuation lines joined.
#[derive(Debug, Clone)]
struct Instruction {
    keyword: String,
    args: String,
}

/// A build stage: the image or stage it starts from, its name, and its own instructions.
#[derive(Debug)]
struct Stage {
    from: String,
    name: Option<String>,
    instructions: Vec<Instruction>,
}

fn instructions(text: &str) -> Vec<Instruction> {
    let mut all = Vec::new();
    let mut pending = String::new();
    // Comment lines end nothing, even inside a continued instruction.
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        match line.strip_suffix('\\') {
            Some(start) => pending.push_str(start),
            None => {
                pending.push_str(line);
                let (keyword, args) = pending.split_once(char::is_whitespace).unwrap_or((&pending, ""));
                all.push(Instruction { keyword: keyword.to_uppercase(), args: args.trim().to_owned() });
                pending.clear();
            }
        }
    }
    all
}

fn stages(text: &str) -> Vec<Stage> {
    let mut stages: Vec<Stage> = Vec::new();
    for instruction in instructions(text) {
        if instruction.keyword == "FROM" {
            let words: Vec<&str> =
                instruction.args.split_whitespace().filter(|w| !w.starts_with("--")).collect();
            let name = match words.as_slice() {
                [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some((*name).to_owned()),
                _ => None,
            };
            stages.push(Stage { from: words[0].to_owned(), name, instructions: Vec::new() });
        } else if let Some(stage) = stages.last_mut() {
            stage.instructions.push(instruction);
        }
    }
    stages
}

/// A target's instructions as the image gets them: those of the stages it is built on first.
fn effective(stages: &[Stage], target: &str) -> Option<Vec<Instruction>> {
    let at = stages.iter().position(|s| s.name.as_deref() == Some(target))?;
    // A stage can only start from one before it (or from an image).
    let mut all = effective(&stages[..at], &stages[at].from).unwrap_or_default();
    all.extend(stages[at].instructions.iter().cloned());
    Some(all)
}

/// `COPY [--flags] SOURCE... DEST` as (sources, destination).
fn copy_paths(instruction: &Instruction) -> (Vec<&str>, &str) {
    let mut words: Vec<&str> = instruction.args.split_whitespace().filter(|w| !w.starts_with("--")).collect();
    let dest = words.pop().expect("COPY has a destination");
    (words, dest)
}

fn path_names(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

// ---------------------------------------------------------------------------------------
// The workspace's services

/// A service: a workspace binary that serves, i.e. whose `main` runs an application until
/// it is stopped (the house style's startup). Tools such as the benchmark lab are not.
#[derive(Debug)]
struct Service {
    package: String,
    binary: String,
    /// The package's folder, whose sources name the environment variables it reads.
    dir: PathBuf,
}

fn services() -> Vec<Service> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .current_dir(root())
        .output()
        .expect("cargo metadata runs");
    assert!(output.status.success(), "cargo metadata: {}", report(&output));
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON");
    let mut services = Vec::new();
    for package in metadata["packages"].as_array().expect("packages") {
        for target in package["targets"].as_array().expect("targets") {
            let is_bin = target["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "bin"));
            let main = target["src_path"].as_str().expect("src_path");
            if is_bin && std::fs::read_to_string(main).expect("main").contains(".run_until_stopped(") {
                let manifest = Path::new(package["manifest_path"].as_str().expect("manifest_path"));
                services.push(Service {
                    package: package["name"].as_str().expect("name").to_owned(),
                    binary: target["name"].as_str().expect("name").to_owned(),
                    dir: manifest.parent().expect("the package's folder").to_owned(),
                });
            }
        }
    }
    services.sort_by(|a, b| a.binary.cmp(&b.binary));
    services
}

/// Whether any Rust source under `dir` holds `needle`.
fn sources_contain(dir: &Path, needle: &str) -> bool {
    std::fs::read_dir(dir).expect("a source folder").map(|e| e.expect("an entry").path()).any(|path| {
        if path.is_dir() {
            sources_contain(&path, needle)
        } else {
            path.extension().is_some_and(|e| e == "rs")
                && std::fs::read_to_string(&path).expect("a source file").contains(needle)
        }
    })
}

// ---------------------------------------------------------------------------------------
// The tests

#[test]
fn every_dockerfile_passes_hadolint() {
    let dockerfiles = files(|name| {
        name == "Dockerfile" || name.starts_with("Dockerfile.") || name.ends_with(".Dockerfile")
    });
    assert!(dockerfiles.contains(&DOCKERFILE.to_owned()), "no {DOCKERFILE} among {dockerfiles:?}");

    // Every rule at every level: style and info findings fail too.
    let mut args = vec!["--no-color".to_owned(), "--failure-threshold".to_owned(), "style".to_owned()];
    args.extend(dockerfiles.iter().cloned());
    let output = lint("hadolint", &args);

    assert!(output.status.success(), "hadolint {}:\n{}", dockerfiles.join(" "), report(&output));
}

#[test]
fn every_workflow_passes_actionlint() {
    let mut workflows: Vec<String> = std::fs::read_dir(root().join(".github/workflows"))
        .expect(".github/workflows")
        .map(|e| e.expect("an entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yml") || name.ends_with(".yaml"))
        .map(|name| format!(".github/workflows/{name}"))
        .collect();
    workflows.sort();
    assert!(workflows.contains(&WORKFLOW.to_owned()), "no {WORKFLOW} among {workflows:?}");

    // The script says so when the actionlint package itself is missing.
    let mut args = vec!["deploy/ci/actionlint.mjs".to_owned()];
    args.extend(workflows.iter().cloned());
    let output = lint("node", &args);

    assert!(output.status.success(), "actionlint {}:\n{}", workflows.join(" "), report(&output));
}

#[test]
fn every_service_has_an_image_that_runs_as_non_root_with_its_own_binary_only() {
    let stages = stages(&read(DOCKERFILE));
    let services = services();
    let binaries: Vec<&str> = services.iter().map(|s| s.binary.as_str()).collect();
    for known in ["collector", "query", "stream", "progress"] {
        assert!(binaries.contains(&known), "services are found by `run_until_stopped` in main: {services:?}");
    }

    for service in &services {
        let name = &service.binary;
        let image = effective(&stages, name).unwrap_or_else(|| {
            panic!("{DOCKERFILE} has no target `{name}` for the service {}", service.package)
        });
        let last = |keyword: &str| image.iter().rev().find(|i| i.keyword == keyword).map(|i| i.args.as_str());

        let user = last("USER").unwrap_or_else(|| panic!("{name}: no USER, so it would run as root"));
        let uid = user.split(':').next().unwrap_or_default();
        assert!(!["root", "0"].contains(&uid), "{name}: runs as {user}");

        let binary = format!("/usr/local/bin/{name}");
        let copies: Vec<(Vec<&str>, &str)> =
            image.iter().filter(|i| i.keyword == "COPY").map(copy_paths).collect();
        let into_bin: Vec<_> = copies.iter().filter(|(_, dest)| dest.starts_with("/usr/local/bin")).collect();
        assert!(
            matches!(into_bin.as_slice(), [(sources, dest)]
                if *dest == binary && sources.len() == 1 && path_names(sources[0]).last() == Some(name.as_str())),
            "{name}: copies into /usr/local/bin {into_bin:?}; expected its own binary only, as {binary}"
        );
        for (sources, _) in &copies {
            let others: Vec<&&str> = sources
                .iter()
                .filter(|s| path_names(s).any(|n| n != name.as_str() && binaries.contains(&n)))
                .collect();
            assert!(others.is_empty(), "{name}: copies another service's binary: {others:?}");
        }

        assert_eq!(last("ENTRYPOINT"), Some(format!(r#"["{binary}"]"#).as_str()), "{name}: ENTRYPOINT");
        assert_eq!(last("CMD"), Some(r#"["serve"]"#), "{name}: CMD");
    }
}

#[test]
fn every_image_listens_on_every_interface_at_the_ports_it_exposes() {
    let stages = stages(&read(DOCKERFILE));
    let core = root().join("core/src");

    for service in services() {
        let name = &service.binary;
        let image = effective(&stages, name).unwrap_or_else(|| panic!("{DOCKERFILE}: no target `{name}`"));
        let env: Vec<(&str, &str)> = image
            .iter()
            .filter(|i| i.keyword == "ENV")
            .flat_map(|i| i.args.split_whitespace())
            .map(|pair| pair.split_once('=').unwrap_or_else(|| panic!("{name}: ENV {pair} is not KEY=value")))
            .collect();
        let exposed: Vec<&str> = image
            .iter()
            .filter(|i| i.keyword == "EXPOSE")
            .flat_map(|i| i.args.split_whitespace())
            .map(|port| port.trim_end_matches("/tcp"))
            .collect();

        // The service itself and its metrics: a listener each, on all interfaces, published.
        let listeners: Vec<&(&str, &str)> = env.iter().filter(|(key, _)| key.ends_with("LISTEN")).collect();
        assert_eq!(listeners.len(), 2, "{name}: ENV should set both listeners: {env:?}");
        for (key, address) in listeners {
            let port = address
                .strip_prefix("0.0.0.0:")
                .unwrap_or_else(|| panic!("{name}: {key}={address} is not on every interface"));
            assert!(exposed.contains(&port), "{name}: {key}={address}, but it exposes {exposed:?}");
        }
        assert_eq!(exposed.len(), 2, "{name}: exposes {exposed:?}, not just its two listeners");
        // A misspelt variable would be ignored, and the service would listen on its default.
        for (key, _) in &env {
            let read = format!(r#""{key}""#);
            assert!(
                sources_contain(&service.dir.join("src"), &read) || sources_contain(&core, &read),
                "{name}: ENV {key} is read by neither {} nor core",
                service.package
            );
        }
    }
}

#[test]
fn the_images_are_built_with_the_rust_release_ci_tests_with() {
    let dockerfile = read(DOCKERFILE);
    let builder = stages(&dockerfile)
        .into_iter()
        .find_map(|s| s.from.strip_prefix("rust:").map(str::to_owned))
        .expect("a rust: builder stage");
    let ci = read(WORKFLOW);
    let ci_rust = ci
        .lines()
        .find_map(|l| l.trim().strip_prefix("- uses: dtolnay/rust-toolchain@"))
        .expect("the workflow installs Rust with dtolnay/rust-toolchain");
    let manifest = read("Cargo.toml");
    let minimum = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .expect("the workspace's rust-version")
        .trim_matches('"');

    assert_eq!(builder, format!("{ci_rust}-bookworm"), "the builder's Rust is not the one CI tests with");
    let version =
        |v: &str| -> Vec<u32> { v.split('.').map(|n| n.parse().expect("a version number")).collect() };
    assert!(version(ci_rust) >= version(minimum), "Rust {ci_rust} is older than the rust-version {minimum}");
}
