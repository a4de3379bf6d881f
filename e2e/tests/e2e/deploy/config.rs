//! The configuration the cluster mounts: NATS's, Prometheus's and Grafana's provisioning.

use super::*;

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
