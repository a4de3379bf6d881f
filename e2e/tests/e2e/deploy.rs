//! deploy/k8s and deploy/chaos, checked without a cluster: every overlay renders with
//! `kubectl kustomize` as `kubectl apply -k` renders it (no file read from outside a
//! kustomization's folder) and passes Kubernetes's own schemas (`kubernetes-validate --strict`);
//! every container is locked down and sized; the manifests pass the services only flags and
//! environment variables their `--help` lists, so they cannot drift from the code; the chaos
//! experiments and kube-monkey's labels select pods the production overlay really has; the
//! Kubernetes Prometheus configuration is valid and keeps the job names the alerts select on;
//! NATS's configuration is valid and routes to every peer; and Grafana in the cluster
//! provisions grafana/'s own data sources and dashboards; and deploy/events's example is
//! valid, with the course the project's own code makes.
//!
//! A missing tool fails these tests (it never skips them): deploy/local/test.sh installs
//! kubectl, kubernetes-validate, promtool, VictoriaMetrics and nats-server.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Output};

use serde_yaml::Value;
use velometry_core::riders::Registry;
use velometry_core::testkit::workspace_binary;

use crate::helpers::root;

mod chaos;
mod config;
mod events;

/// The Kubernetes release the manifests are validated against: the oldest they support
/// (the preStop `sleep` action they use is on by default from 1.30).
const KUBERNETES_VERSION: &str = "1.30.0";

/// The images of the velometry services; the binary is named like the image.
const IMAGE_PREFIX: &str = "ghcr.io/velometry/";

/// Runs a command; fails the test when its program is missing.
fn output(command: &mut Command) -> Output {
    let program = command.get_program().to_string_lossy().into_owned();
    command.output().unwrap_or_else(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            panic!("{program} is not installed: run deploy/local/test.sh, which installs it");
        }
        panic!("cannot run {program}: {e}");
    })
}

/// Runs a command and returns its standard output; fails the test, with the command's
/// output, when its program is missing or the command fails.
pub(crate) fn succeed(command: &mut Command) -> String {
    let output = output(command);
    let args: Vec<_> = command.get_args().map(|a| a.to_string_lossy()).collect();
    assert!(
        output.status.success(),
        "{} {} failed ({}):\n{}{}",
        command.get_program().to_string_lossy(),
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// Runs a tool in `dir`, as [`succeed`].
fn run(dir: &Path, program: &str, args: &[&str]) -> String {
    succeed(Command::new(program).args(args).current_dir(dir))
}

/// The overlays: every folder of deploy/k8s/overlays with a kustomization.
fn overlays() -> Vec<(String, PathBuf)> {
    let dir = root().join("deploy/k8s/overlays");
    let mut found: Vec<(String, PathBuf)> = std::fs::read_dir(&dir)
        .expect("deploy/k8s/overlays")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.join("kustomization.yaml").is_file())
        .map(|path| (path.file_name().expect("name").to_string_lossy().into_owned(), path))
        .collect();
    found.sort();
    let names: Vec<&str> = found.iter().map(|(name, _)| name.as_str()).collect();
    assert!(names.contains(&"local") && names.contains(&"production"), "overlays: {names:?}");
    found
}

/// A kustomization rendered as kubectl would apply it.
fn render(kustomization: &Path) -> String {
    // Components and `labels` need the kustomize of kubectl 1.27 or later (v5); Debian 12's
    // kubernetes-client is kubectl 1.20, with kustomize v2.
    let version: serde_json::Value =
        serde_json::from_str(&run(&root(), "kubectl", &["version", "--client", "-o", "json"]))
            .expect("kubectl version prints JSON");
    let kustomize = version["kustomizeVersion"].as_str().unwrap_or("none");
    let major = kustomize.trim_start_matches('v').split('.').next().and_then(|m| m.parse::<u32>().ok());
    assert!(
        major.is_some_and(|m| m >= 5),
        "kubectl {} has kustomize {kustomize}; the manifests need kustomize v5 (kubectl 1.27 or later)",
        version["clientVersion"]["gitVersion"]
    );
    // kustomize's default load restrictor, as `kubectl apply -k` and GitOps tools use it:
    // no kustomization may read a file outside its own folder.
    let path = kustomization.to_str().expect("UTF-8 path");
    run(&root(), "kubectl", &["kustomize", path])
}

/// The documents of a YAML stream (kustomize separates them with `---` lines).
fn documents(yaml: &str, origin: &str) -> Vec<Value> {
    let mut docs = Vec::new();
    let mut current = String::new();
    for line in yaml.lines().chain(std::iter::once("---")) {
        if line.trim_end() == "---" {
            let doc: Value = serde_yaml::from_str(&current)
                .unwrap_or_else(|e| panic!("{origin}: a document is not valid YAML: {e}\n{current}"));
            if !doc.is_null() {
                docs.push(doc);
            }
            current.clear();
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    docs
}

/// The production overlay's objects.
pub(crate) fn production() -> Vec<Value> {
    documents(&render(&root().join("deploy/k8s/overlays/production")), "overlay production")
}

/// A string, or "" for anything else (a missing field).
pub(crate) fn text(value: &Value) -> &str {
    value.as_str().unwrap_or("")
}

/// `Kind/name` of an object.
fn id(object: &Value) -> String {
    format!("{}/{}", text(&object["kind"]), text(&object["metadata"]["name"]))
}

/// A mapping of strings (labels, selectors) as a map.
fn string_map(value: &Value) -> BTreeMap<String, String> {
    value
        .as_mapping()
        .map(|m| m.iter().map(|(k, v)| (text(k).to_owned(), text(v).to_owned())).collect())
        .unwrap_or_default()
}

/// A sequence's items, none for anything else.
pub(crate) fn items(value: &Value) -> &[Value] {
    value.as_sequence().map(Vec::as_slice).unwrap_or_default()
}

/// The objects that run pods, with their pod templates.
pub(crate) fn workloads(objects: &[Value]) -> Vec<(&Value, &Value)> {
    objects
        .iter()
        .filter_map(|o| match text(&o["kind"]) {
            "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
                Some((o, &o["spec"]["template"]))
            }
            "CronJob" => Some((o, &o["spec"]["jobTemplate"]["spec"]["template"])),
            _ => None,
        })
        .collect()
}

/// Every container of a pod template, init containers included.
pub(crate) fn containers(template: &Value) -> impl Iterator<Item = &Value> {
    items(&template["spec"]["containers"]).iter().chain(items(&template["spec"]["initContainers"]))
}

/// Whether every pair of `selector` is among `labels`.
fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The Secrets and ConfigMaps a workload or Ingress needs, by kind.
fn references(object: &Value, template: Option<&Value>) -> Vec<(&'static str, String)> {
    let mut refs = Vec::new();
    for tls in items(&object["spec"]["tls"]) {
        refs.push(("Secret", text(&tls["secretName"]).to_owned()));
    }
    let Some(template) = template else { return refs };
    for volume in items(&template["spec"]["volumes"]) {
        if let Some(name) = volume["secret"]["secretName"].as_str() {
            refs.push(("Secret", name.to_owned()));
        }
        if let Some(name) = volume["configMap"]["name"].as_str() {
            refs.push(("ConfigMap", name.to_owned()));
        }
    }
    for container in containers(template) {
        for env in items(&container["env"]) {
            if let Some(name) = env["valueFrom"]["secretKeyRef"]["name"].as_str() {
                refs.push(("Secret", name.to_owned()));
            }
            if let Some(name) = env["valueFrom"]["configMapKeyRef"]["name"].as_str() {
                refs.push(("ConfigMap", name.to_owned()));
            }
        }
        for from in items(&container["envFrom"]) {
            if let Some(name) = from["secretRef"]["name"].as_str() {
                refs.push(("Secret", name.to_owned()));
            }
            if let Some(name) = from["configMapRef"]["name"].as_str() {
                refs.push(("ConfigMap", name.to_owned()));
            }
        }
    }
    refs
}

/// What is wrong with a container's resources and security context, if anything.
fn lockdown_problems(container: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    for bound in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            if container["resources"][bound][resource].is_null() {
                problems.push(format!("no resources.{bound}.{resource}"));
            }
        }
    }
    let security = &container["securityContext"];
    let expected = [
        ("runAsNonRoot", security["runAsNonRoot"] == Value::Bool(true)),
        ("readOnlyRootFilesystem", security["readOnlyRootFilesystem"] == Value::Bool(true)),
        ("allowPrivilegeEscalation: false", security["allowPrivilegeEscalation"] == Value::Bool(false)),
        (
            "capabilities.drop [ALL]",
            items(&security["capabilities"]["drop"]).iter().any(|c| text(c) == "ALL"),
        ),
        ("seccompProfile RuntimeDefault", text(&security["seccompProfile"]["type"]) == "RuntimeDefault"),
    ];
    for (what, ok) in expected {
        if !ok {
            problems.push(format!("securityContext lacks {what}"));
        }
    }
    problems
}

#[test]
fn every_overlay_renders_and_passes_the_kubernetes_schemas_with_every_container_locked_down() {
    let dir = tempfile::tempdir().expect("tempdir");
    let deploy_doc = std::fs::read_to_string(root().join("docs/deploy.md")).expect("docs/deploy.md");
    let mut problems = Vec::new();
    for (name, path) in overlays() {
        let yaml = render(&path);
        let file = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&file, &yaml).expect("write the rendered overlay");
        let file = file.to_str().expect("UTF-8 path");
        run(dir.path(), "kubernetes-validate", &["--strict", "--quiet", "-k", KUBERNETES_VERSION, file]);

        let objects = documents(&yaml, &format!("overlay {name}"));
        let rendered: BTreeSet<(String, String)> = objects
            .iter()
            .map(|o| (text(&o["kind"]).to_owned(), text(&o["metadata"]["name"]).to_owned()))
            .collect();
        let workloads = workloads(&objects);
        assert!(workloads.len() >= 8, "overlay {name} renders only {} workloads", workloads.len());
        for (object, template) in &workloads {
            for container in containers(template) {
                for problem in lockdown_problems(container) {
                    problems.push(format!(
                        "overlay {name}: {} container {}: {problem}",
                        id(object),
                        text(&container["name"])
                    ));
                }
            }
        }
        // What an overlay does not make itself must be made by hand, and docs/deploy.md must
        // say so.
        let ingresses = objects.iter().filter(|o| text(&o["kind"]) == "Ingress").map(|o| (o, None));
        let with_templates = workloads.iter().map(|(o, t)| (*o, Some(*t)));
        for (object, template) in with_templates.chain(ingresses) {
            for (kind, wanted) in references(object, template) {
                if !rendered.contains(&(kind.to_owned(), wanted.clone()))
                    && !deploy_doc.contains(&format!("`{wanted}`"))
                {
                    problems.push(format!(
                        "overlay {name}: {} needs {kind} {wanted}, which the overlay does not make \
                         and docs/deploy.md does not tell to create (as `{wanted}`)",
                        id(object)
                    ));
                }
            }
        }
    }
    // The riders files the overlays turn into Secrets are valid riders files.
    for entry in std::fs::read_dir(root().join("deploy/k8s/overlays/local/secrets")).expect("secrets") {
        let path = entry.expect("directory entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            if let Err(e) = Registry::load(&path) {
                problems.push(e.to_string());
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A service's `<subcommand> --help`: the long flags it lists, and its text with all
/// whitespace runs made single spaces (clap wraps `[env: NAME=]` anywhere).
struct Help {
    flags: BTreeSet<String>,
    text: String,
}

impl Help {
    fn of(binary: &str, subcommand: &str) -> Help {
        let path = workspace_binary(&format!("velometry-{binary}"), binary).expect("the service builds");
        let help = run(&root(), path.to_str().expect("UTF-8 path"), &[subcommand, "--help"]);
        // Option lines start within the first columns; their descriptions are indented further.
        let flags = help
            .lines()
            .filter(|line| line.len() - line.trim_start().len() <= 6 && line.trim_start().starts_with('-'))
            .flat_map(|line| line.split([' ', ',']))
            .filter(|word| word.starts_with("--"))
            .map(str::to_owned)
            .collect();
        Help { flags, text: help.split_whitespace().collect::<Vec<_>>().join(" ") }
    }

    fn knows_variable(&self, name: &str) -> bool {
        self.text.contains(&format!("[env: {name}=")) || self.text.contains(&format!("[env: {name}]"))
    }
}

#[test]
fn the_manifests_pass_the_services_only_flags_and_variables_their_help_lists() {
    let mut helps: BTreeMap<(String, String), Help> = BTreeMap::new();
    let mut problems = Vec::new();
    for (name, path) in overlays() {
        let objects = documents(&render(&path), &format!("overlay {name}"));
        let mut checked = 0;
        for (object, template) in workloads(&objects) {
            for container in containers(template) {
                let image = text(&container["image"]);
                let Some(binary) = image.strip_prefix(IMAGE_PREFIX) else { continue };
                let binary = binary.split([':', '@']).next().unwrap_or_default().to_owned();
                let at = format!("overlay {name}: {} container {}", id(object), text(&container["name"]));
                if !container["command"].is_null() {
                    problems.push(format!("{at}: sets `command`; the image's entrypoint is the binary"));
                }
                if !container["envFrom"].is_null() {
                    problems.push(format!("{at}: uses envFrom; name each variable so it can be checked"));
                }
                let args: Vec<&str> = items(&container["args"]).iter().map(text).collect();
                let subcommand = match args.first() {
                    Some(first) if !first.starts_with('-') => (*first).to_owned(),
                    _ => "serve".to_owned(),
                };
                let help = helps
                    .entry((binary.clone(), subcommand.clone()))
                    .or_insert_with(|| Help::of(&binary, &subcommand));
                for arg in args.iter().filter(|a| a.starts_with("--")) {
                    let flag = arg.split('=').next().unwrap_or_default();
                    if !help.flags.contains(flag) {
                        problems.push(format!("{at}: `{binary} {subcommand}` has no flag {flag}"));
                    }
                    checked += 1;
                }
                for env in items(&container["env"]) {
                    let variable = text(&env["name"]);
                    if variable.starts_with("VELOMETRY_") {
                        if !help.knows_variable(variable) {
                            problems.push(format!(
                                "{at}: `{binary} {subcommand} --help` names no variable {variable}"
                            ));
                        }
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked >= 20, "overlay {name}: only {checked} flags and variables of velometry services");
    }
    let binaries: BTreeSet<&str> = helps.keys().map(|(b, _)| b.as_str()).collect();
    assert_eq!(binaries, BTreeSet::from(["collector", "progress", "query", "stream"]));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
