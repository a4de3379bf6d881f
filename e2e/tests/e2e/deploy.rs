//! deploy/k8s and deploy/chaos, checked without a cluster: every overlay renders with
//! `kubectl kustomize` and passes Kubernetes's own schemas (`kubernetes-validate --strict`);
//! every container is locked down and sized; the manifests pass the services only flags and
//! environment variables their `--help` lists, so they cannot drift from the code; the chaos
//! experiments and kube-monkey's labels select pods the production overlay really has; the
//! Kubernetes Prometheus configuration is valid and keeps the job names the alerts select on;
//! NATS's configuration is valid and routes to every peer; and Grafana in the cluster
//! provisions grafana/'s own data sources and dashboards.
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
    // Components, `labels` and --load-restrictor need the kustomize of kubectl 1.27 or later
    // (v5); Debian 12's kubernetes-client is kubectl 1.20, with kustomize v2.
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
    let path = kustomization.to_str().expect("UTF-8 path");
    run(&root(), "kubectl", &["kustomize", "--load-restrictor", "LoadRestrictionsNone", path])
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
    assert_eq!(binaries, BTreeSet::from(["collector", "query", "stream"]));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The labels of a chaos experiment's selector (`at` names it in problems); a selector that
/// does not name `namespace` or has no labels is a problem.
fn chaos_selector(
    at: &str,
    selector: &Value,
    namespace: &str,
    problems: &mut Vec<String>,
) -> BTreeMap<String, String> {
    if !items(&selector["namespaces"]).iter().any(|n| text(n) == namespace) {
        problems.push(format!("{at}: selector.namespaces does not name {namespace}"));
    }
    let labels = string_map(&selector["labelSelectors"]);
    if labels.is_empty() {
        problems.push(format!("{at}: selector has no labelSelectors"));
    }
    labels
}

#[test]
fn every_chaos_experiment_selects_pods_of_the_production_overlay() {
    let objects = production();
    let workloads = workloads(&objects);
    let namespace = text(&workloads[0].0["metadata"]["namespace"]).to_owned();
    assert!(!namespace.is_empty(), "the production overlay sets no namespace");
    let pods: Vec<(String, BTreeMap<String, String>)> =
        workloads.iter().map(|(o, t)| (id(o), string_map(&t["metadata"]["labels"]))).collect();
    let matching = |selector: &BTreeMap<String, String>| -> Vec<String> {
        pods.iter().filter(|(_, labels)| selects(selector, labels)).map(|(id, _)| id.clone()).collect()
    };
    let readme =
        std::fs::read_to_string(root().join("deploy/chaos/README.md")).expect("deploy/chaos/README.md");

    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("deploy/chaos"))
        .expect("deploy/chaos")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    let mut problems = Vec::new();
    let mut killed = BTreeSet::new();
    let mut partitioned = false;
    for file in &files {
        let name = file.file_name().expect("name").to_string_lossy().into_owned();
        if !readme.contains(&format!("`{name}`")) {
            problems.push(format!("deploy/chaos/README.md does not list `{name}`"));
        }
        let yaml = std::fs::read_to_string(file).expect("read");
        for schedule in documents(&yaml, &name) {
            let at = format!("deploy/chaos/{name}: {}", id(&schedule));
            if text(&schedule["apiVersion"]) != "chaos-mesh.org/v1alpha1"
                || text(&schedule["kind"]) != "Schedule"
            {
                problems.push(format!("{at}: not a chaos-mesh.org/v1alpha1 Schedule"));
                continue;
            }
            // Chaos Mesh appends 6 characters to name each run's experiment.
            if text(&schedule["metadata"]["name"]).len() > 57 {
                problems.push(format!("{at}: the name is longer than 57 characters"));
            }
            if text(&schedule["metadata"]["namespace"]) != namespace {
                problems.push(format!("{at}: not in namespace {namespace}"));
            }
            let spec = &schedule["spec"];
            if text(&spec["schedule"]).split_whitespace().count() != 5 {
                problems.push(format!("{at}: spec.schedule is not a five-field cron expression"));
            }
            let kind = text(&spec["type"]);
            let experiment = match kind {
                "PodChaos" => &spec["podChaos"],
                "NetworkChaos" => &spec["networkChaos"],
                other => {
                    problems.push(format!("{at}: unexpected spec.type {other:?}"));
                    continue;
                }
            };
            if experiment.is_null() {
                problems.push(format!("{at}: spec.type is {kind} but its spec is missing"));
                continue;
            }
            let selector = chaos_selector(&at, &experiment["selector"], &namespace, &mut problems);
            let selected = matching(&selector);
            if selected.is_empty() {
                problems
                    .push(format!("{at}: selector {selector:?} matches no pod of the production overlay"));
            }
            match (kind, text(&experiment["action"])) {
                ("PodChaos", "pod-kill") => {
                    if text(&experiment["mode"]) != "one" {
                        problems.push(format!("{at}: a pod kill should take one pod (mode: one)"));
                    }
                    killed.extend(selected);
                }
                ("NetworkChaos", "partition") => {
                    let target =
                        chaos_selector(&at, &experiment["target"]["selector"], &namespace, &mut problems);
                    if matching(&target).is_empty() {
                        problems.push(format!(
                            "{at}: target {target:?} matches no pod of the production overlay"
                        ));
                    }
                    if experiment["duration"].is_null() {
                        problems.push(format!("{at}: a partition needs a duration"));
                    }
                    partitioned |= selected.iter().any(|w| w == "StatefulSet/collector")
                        && matching(&target).iter().any(|w| w == "StatefulSet/influxdb");
                }
                (kind, action) => problems.push(format!("{at}: unexpected {kind} action {action:?}")),
            }
        }
    }
    for workload in ["StatefulSet/collector", "Deployment/query", "Deployment/stream"] {
        if !killed.contains(workload) {
            problems.push(format!("no pod-kill experiment selects the pods of {workload}"));
        }
    }
    if !partitioned {
        problems.push("no experiment partitions the collector from InfluxDB".to_owned());
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// `path` relative to `from` (both absolute): kustomize refuses absolute paths.
fn relative(path: &Path, from: &Path) -> String {
    let up = from.components().filter(|c| matches!(c, Component::Normal(_))).count();
    let down = path.strip_prefix("/").expect("an absolute path");
    format!("{}{}", "../".repeat(up), down.display())
}

#[test]
fn the_kube_monkey_component_labels_the_services_and_their_pods_alike() {
    let dir = tempfile::tempdir().expect("tempdir");
    let here = dir.path().canonicalize().expect("tempdir path");
    let repo = root().canonicalize().expect("repository path");
    std::fs::write(
        here.join("kustomization.yaml"),
        format!(
            "resources: [{}]\ncomponents: [{}]\n",
            relative(&repo.join("deploy/k8s/overlays/production"), &here),
            relative(&repo.join("deploy/k8s/components/kube-monkey"), &here)
        ),
    )
    .expect("write the kustomization");
    let objects = documents(&render(&here), "production with kube-monkey");
    let mut problems = Vec::new();
    let mut enrolled = BTreeMap::new();
    let workloads = workloads(&objects);
    for (object, template) in &workloads {
        let labels = string_map(&object["metadata"]["labels"]);
        if labels.get("kube-monkey/enabled").map(String::as_str) != Some("enabled") {
            continue;
        }
        let at = id(object);
        let pod_labels = string_map(&template["metadata"]["labels"]);
        let identifier = labels.get("kube-monkey/identifier").cloned().unwrap_or_default();
        if identifier.is_empty() || pod_labels.get("kube-monkey/identifier") != Some(&identifier) {
            problems
                .push(format!("{at}: kube-monkey/identifier {identifier:?} is not on its pod template too"));
        }
        if pod_labels.get("kube-monkey/enabled").map(String::as_str) != Some("enabled") {
            problems.push(format!("{at}: kube-monkey/enabled is not on its pod template too"));
        }
        if labels.get("kube-monkey/mtbf").and_then(|m| m.parse::<u32>().ok()).is_none_or(|days| days == 0) {
            problems.push(format!("{at}: kube-monkey/mtbf is not a whole number of days"));
        }
        match labels.get("kube-monkey/kill-mode").map(String::as_str) {
            Some("kill-all") => {}
            Some("fixed" | "random-max-percent" | "fixed-percent") => {
                if labels.get("kube-monkey/kill-value").and_then(|v| v.parse::<u32>().ok()).is_none() {
                    problems.push(format!("{at}: kube-monkey/kill-value is not a number"));
                }
            }
            other => problems.push(format!("{at}: unknown kube-monkey/kill-mode {other:?}")),
        }
        // kube-monkey kills the pods carrying the identifier: only this workload's.
        let carriers: Vec<String> = workloads
            .iter()
            .filter(|(_, t)| {
                string_map(&t["metadata"]["labels"]).get("kube-monkey/identifier") == Some(&identifier)
            })
            .map(|(o, _)| id(o))
            .collect();
        if carriers.len() != 1 {
            problems.push(format!("{at}: identifier {identifier:?} is on the pods of {carriers:?}"));
        }
        enrolled.insert(at, identifier);
    }
    let enrolled: BTreeSet<&str> = enrolled.keys().map(String::as_str).collect();
    assert_eq!(enrolled, BTreeSet::from(["Deployment/query", "Deployment/stream", "StatefulSet/collector"]));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_nats_configuration_is_valid_and_routes_to_every_peer() {
    let config = root().join("deploy/k8s/base/nats.conf");
    let config = config.to_str().expect("UTF-8 path");
    // The pods set POD_NAME, which the configuration reads for the server's name.
    succeed(Command::new("nats-server").args(["--config", config, "-t"]).env("POD_NAME", "nats-0"));

    let conf = std::fs::read_to_string(config).expect("nats.conf");
    let mut problems = Vec::new();
    for (name, path) in overlays() {
        let objects = documents(&render(&path), &format!("overlay {name}"));
        let nats = objects
            .iter()
            .find(|o| id(o) == "StatefulSet/nats")
            .unwrap_or_else(|| panic!("overlay {name} has no StatefulSet/nats"));
        let replicas = nats["spec"]["replicas"].as_u64().expect("spec.replicas");
        let service = text(&nats["spec"]["serviceName"]);
        for peer in 0..replicas {
            let route = format!("nats://nats-{peer}.{service}:6222");
            if !conf.contains(&route) {
                problems.push(format!("overlay {name}: nats.conf has no route {route}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The job names of a Prometheus configuration.
fn job_names(config: &Value) -> BTreeSet<String> {
    items(&config["scrape_configs"]).iter().map(|job| text(&job["job_name"]).to_owned()).collect()
}

/// A YAML file of the repository.
fn yaml_file(path: &str) -> Value {
    let text = std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_kubernetes_prometheus_configuration_is_valid_and_scrapes_the_services_pods() {
    let prometheus_dir = root().join("deploy/prometheus");
    let config = yaml_file("deploy/prometheus/kubernetes.yml");
    // The alert rules and the ops dashboard select on these job names.
    assert_eq!(job_names(&config), job_names(&yaml_file("deploy/prometheus/prometheus.yml")));

    // Debian's promtool (what deploy/local/test.sh installs) is built without Kubernetes
    // discovery and refuses kubernetes_sd_configs as an unknown field. It then checks the
    // rest: the configuration without its discovery, with the rule files beside it.
    let dir = tempfile::tempdir().expect("tempdir");
    let full = output(
        Command::new("promtool").args(["check", "config", "kubernetes.yml"]).current_dir(&prometheus_dir),
    );
    let said = format!("{}{}", String::from_utf8_lossy(&full.stdout), String::from_utf8_lossy(&full.stderr));
    if !full.status.success() {
        assert!(
            said.contains("field kubernetes_sd_configs not found"),
            "promtool check config kubernetes.yml:\n{said}"
        );
        let mut without_discovery = config.clone();
        for job in without_discovery["scrape_configs"].as_sequence_mut().expect("scrape_configs") {
            job.as_mapping_mut().expect("a job").remove("kubernetes_sd_configs");
        }
        std::fs::create_dir(dir.path().join("rules")).expect("rules folder");
        std::fs::copy(prometheus_dir.join("rules/velometry.yml"), dir.path().join("rules/velometry.yml"))
            .expect("copy the rules");
        std::fs::write(
            dir.path().join("prometheus.yml"),
            serde_yaml::to_string(&without_discovery).expect("YAML"),
        )
        .expect("write the configuration");
        run(dir.path(), "promtool", &["check", "config", "prometheus.yml"]);
    }

    // VictoriaMetrics parses Prometheus's scrape configuration, Kubernetes discovery
    // included, and refuses unknown fields; it has no rules, so those go.
    let mut scrape_only = config.clone();
    scrape_only.as_mapping_mut().expect("a mapping").remove("rule_files");
    scrape_only["global"].as_mapping_mut().expect("global").remove("evaluation_interval");
    let scrape_file = dir.path().join("scrape.yml");
    std::fs::write(&scrape_file, serde_yaml::to_string(&scrape_only).expect("YAML")).expect("write");
    run(
        dir.path(),
        "victoria-metrics",
        &[
            &format!("-promscrape.config={}", scrape_file.display()),
            "-promscrape.config.dryRun",
            "-loggerLevel=ERROR",
        ],
    );

    // Each job discovers pods of its own namespace whose labels the production overlay
    // really gives its service's pods, which have a port named `metrics`.
    let objects = production();
    let workloads = workloads(&objects);
    let mut problems = Vec::new();
    for job in items(&config["scrape_configs"]) {
        let name = text(&job["job_name"]);
        for sd in items(&job["kubernetes_sd_configs"]) {
            if text(&sd["role"]) != "pod" || sd["namespaces"]["own_namespace"] != Value::Bool(true) {
                problems.push(format!("{name}: discovery is not of pods in Prometheus's own namespace"));
            }
            for selector in items(&sd["selectors"]) {
                let labels: BTreeMap<String, String> = text(&selector["label"])
                    .split(',')
                    .filter_map(|pair| pair.split_once('='))
                    .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                    .collect();
                let scraped: Vec<String> = workloads
                    .iter()
                    .filter(|(_, t)| selects(&labels, &string_map(&t["metadata"]["labels"])))
                    .filter(|(_, t)| {
                        containers(t)
                            .any(|c| items(&c["ports"]).iter().any(|p| text(&p["name"]) == "metrics"))
                    })
                    .map(|(o, _)| id(o))
                    .collect();
                if scraped.is_empty() {
                    problems.push(format!("{name}: selector {labels:?} finds no pod with a `metrics` port"));
                }
            }
        }
        if items(&job["kubernetes_sd_configs"]).is_empty() {
            problems.push(format!("{name}: no kubernetes_sd_configs"));
        }
        let keeps_metrics_port = items(&job["relabel_configs"]).iter().any(|rule| {
            text(&rule["action"]) == "keep"
                && text(&rule["regex"]) == "metrics"
                && items(&rule["source_labels"])
                    .iter()
                    .any(|l| text(l) == "__meta_kubernetes_pod_container_port_name")
        });
        if !keeps_metrics_port {
            problems.push(format!("{name}: does not keep only the container ports named `metrics`"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn grafana_in_the_cluster_provisions_grafanas_own_data_sources_and_every_dashboard() {
    // The data sources: grafana/'s, with InfluxDB credentials added and nothing else changed.
    let upstream = yaml_file("grafana/provisioning/datasources/velometry.yml");
    let cluster = yaml_file("deploy/k8s/base/grafana-datasources.yml");
    let by_uid = |file: &Value| -> BTreeMap<String, Value> {
        items(&file["datasources"]).iter().map(|d| (text(&d["uid"]).to_owned(), d.clone())).collect()
    };
    let upstream = by_uid(&upstream);
    let mut cluster = by_uid(&cluster);
    assert_eq!(cluster.keys().collect::<Vec<_>>(), upstream.keys().collect::<Vec<_>>());
    let influx = cluster.get_mut("velometry-influxdb").expect("the InfluxDB data source");
    let fields = influx.as_mapping_mut().expect("a mapping");
    assert!(fields.remove("user").is_some(), "the cluster's InfluxDB data source has no user");
    let secure = fields.remove("secureJsonData").expect("the cluster's InfluxDB data source has no password");
    assert!(!secure["password"].is_null(), "secureJsonData has no password");
    assert_eq!(cluster, upstream, "deploy/k8s/base/grafana-datasources.yml differs from grafana/'s");

    // The dashboards: every file of grafana/dashboards, in the ConfigMap Grafana mounts.
    let mut files: Vec<String> = std::fs::read_dir(root().join("grafana/dashboards"))
        .expect("grafana/dashboards")
        .map(|e| e.expect("directory entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    files.sort();
    for (name, path) in overlays() {
        let objects = documents(&render(&path), &format!("overlay {name}"));
        let dashboards = objects
            .iter()
            .find(|o| {
                text(&o["kind"]) == "ConfigMap"
                    && text(&o["metadata"]["name"]).starts_with("grafana-dashboards-")
            })
            .unwrap_or_else(|| panic!("overlay {name} has no grafana-dashboards ConfigMap"));
        let keys: Vec<String> = string_map(&dashboards["data"]).into_keys().collect();
        assert_eq!(keys, files, "overlay {name}: the dashboards ConfigMap against grafana/dashboards/");
    }
}
