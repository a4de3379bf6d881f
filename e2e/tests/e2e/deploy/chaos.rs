//! deploy/chaos and kube-monkey: every experiment and every enrolled workload selects pods
//! the production overlay really has.

use super::*;

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
