#!/usr/bin/env python3
"""Checks Deploy/kubernetes beyond its schemas: the KEDA objects against KEDA's documented
fields, and the wiring the schemas cannot see (config paths against Secret mounts, probes
and Services against the listeners, the security settings every pod must have).
Usage: check_manifests.py DIR. Prints each problem; exits 1 if there is any."""

import re
import sys
from pathlib import Path
from urllib.parse import urlsplit, parse_qs

import yaml

# KEDA's ScaledObject fields, from keda.sh/docs/2.18/reference/scaledobject-spec
# (kedacore/keda-docs content/docs/2.18/reference/scaledobject-spec.md).
SCALED_OBJECT_SPEC = {"scaleTargetRef", "pollingInterval", "cooldownPeriod", "initialCooldownPeriod",
                      "idleReplicaCount", "minReplicaCount", "maxReplicaCount", "fallback", "advanced",
                      "triggers"}
SCALE_TARGET_REF = {"apiVersion", "kind", "name", "envSourceContainerName"}
FALLBACK = {"failureThreshold", "replicas", "behavior"}
ADVANCED = {"restoreToOriginalReplicaCount", "horizontalPodAutoscalerConfig", "scalingModifiers"}
HPA_CONFIG = {"name", "behavior"}
TRIGGER = {"type", "metadata", "name", "useCachedMetrics", "authenticationRef", "metricType"}
METRIC_TYPES = {"AverageValue", "Value"}  # Utilization is for the cpu and memory scalers only
# The postgresql trigger's metadata and authentication parameters, from
# keda.sh/docs/2.15/scalers/postgresql (content/docs/2.15/scalers/postgresql.md).
POSTGRESQL_METADATA = {"connectionFromEnv", "host", "userName", "passwordFromEnv", "port", "dbName", "sslmode",
                       "query", "targetQueryValue", "activationTargetQueryValue"}
POSTGRESQL_AUTH_PARAMETERS = {"connection", "host", "userName", "password", "port", "dbName", "sslmode"}
# TriggerAuthentication, from keda.sh/docs/2.15/concepts/authentication (the kinds used here).
TRIGGER_AUTH_SPEC = {"podIdentity", "secretTargetRef", "env", "hashiCorpVault", "azureKeyVault",
                     "awsSecretManager", "gcpSecretManager"}
SECRET_TARGET_REF = {"parameter", "name", "key"}

CONFIG_PATH = "/etc/payhook/payhook.yaml"
# Which of payhook.yaml's files each subcommand reads (Sources/payhook/Serve.swift, Services.swift).
READS = {"serve": {"channels", "admin"}, "work": {"channels", "webhooks"}, "migrate": set()}

problems = []


def problem(where, text):
    problems.append(f"{where}: {text}")


def unknown(where, mapping, allowed):
    for key in sorted(set(mapping or {}) - allowed):
        problem(where, f"'{key}' is not a documented field (allowed: {', '.join(sorted(allowed))})")


def load(directory):
    objects = []
    for path in sorted(directory.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                objects.append((path.name, document))
    return objects


def check_kustomization(directory, objects):
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    listed = set(kustomization.get("resources", []))
    files = {name for name, _ in objects} - {"kustomization.yaml"}
    # The example Secrets would overwrite the real ones on every apply.
    for name in sorted(files - listed - {"secrets.example.yaml"}):
        problem("kustomization.yaml", f"does not list {name}")
    if "secrets.example.yaml" in listed:
        problem("kustomization.yaml", "lists secrets.example.yaml (its placeholders would replace the real Secrets)")
    for name in sorted(listed - files):
        problem("kustomization.yaml", f"lists {name}, which is not there")


def config_files(config):
    """Every file payhook.yaml names, by what reads it."""
    files = {"channels": [], "admin": [], "webhooks": [], "database": []}
    for index, channel in enumerate(config.get("channels", [])):
        for key, value in channel.items():
            if key.endswith("_file"):
                files["channels"].append((f"channels[{index}].{key}", value))
            elif key.endswith("_files"):
                files["channels"] += [(f"channels[{index}].{key}.{serial}", path) for serial, path in value.items()]
    if "token_file" in config.get("admin", {}):
        files["admin"].append(("admin.token_file", config["admin"]["token_file"]))
    for index, webhook in enumerate(config.get("webhooks", [])):
        for key in ("secret_file", "ca_file"):
            if key in webhook:
                files["webhooks"].append((f"webhooks[{index}].{key}", webhook[key]))
    for key, values in parse_qs(urlsplit(config["database"]["url"]).query).items():
        if key in ("sslrootcert", "sslcert", "sslkey"):
            files["database"].append((f"database.url {key}", values[0]))
    return files


def check_config_map(name, data):
    text = data.get("payhook.yaml")
    if text is None:
        problem(name, "the ConfigMap has no payhook.yaml")
        return None
    for key, value in data.items():
        if re.search(r"PRIVATE KEY|whsec_|password\s*=", value, re.IGNORECASE):
            problem(name, f"ConfigMap key {key} holds what looks like a secret")
    config = yaml.safe_load(text)
    # Probes, Services and Prometheus reach the pod's address, never its loopback.
    for section, key in (("receiver", "listen"), ("api", "listen"), ("worker", "metrics_listen")):
        value = config.get(section, {}).get(key, "")
        if value.rsplit(":", 1)[0] not in ("0.0.0.0", "[::]", "::"):
            problem(name, f"{section}.{key} {value or '(unset)'} must listen on every address (0.0.0.0 or [::])")
    url = urlsplit(config["database"]["url"])
    if url.password:
        problem(name, "database.url carries a password: give it as PGPASSWORD from a Secret")
    return config


def listen_port(config, section, key):
    value = config.get(section, {}).get(key)
    return int(value.rsplit(":", 1)[1]) if value else None


def secure(where, pod, container):
    pod_context = pod.get("securityContext", {})
    context = container.get("securityContext", {})
    if not (context.get("runAsNonRoot", pod_context.get("runAsNonRoot")) is True):
        problem(where, "runAsNonRoot must be true")
    if not context.get("runAsUser", pod_context.get("runAsUser")):
        problem(where, "needs a non-zero runAsUser")
    if context.get("readOnlyRootFilesystem") is not True:
        problem(where, "readOnlyRootFilesystem must be true")
    if context.get("allowPrivilegeEscalation") is not False:
        problem(where, "allowPrivilegeEscalation must be false")
    if "ALL" not in context.get("capabilities", {}).get("drop", []):
        problem(where, "must drop ALL capabilities")
    resources = container.get("resources", {})
    for kind in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            if resource not in resources.get(kind, {}):
                problem(where, f"resources.{kind}.{resource} is missing")


def mounted_file(pod, container, secrets, path):
    """The Secret and key that put `path` in the container, or None."""
    volumes = {volume["name"]: volume for volume in pod.get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        directory = mount["mountPath"].rstrip("/") + "/"
        if not path.startswith(directory) or "subPath" in mount:
            continue
        secret = volumes.get(mount["name"], {}).get("secret")
        if secret is None:
            continue
        name = path[len(directory):]
        items = {item["path"]: item["key"] for item in secret.get("items", [])}
        key = items.get(name, name) if items else name
        if key in secrets.get(secret["secretName"], set()):
            return secret["secretName"], key
    return None


def check_workload(name, kind, workload, config, config_map, secrets):
    pod = workload["spec"]["template"]["spec"]
    for container in pod["containers"]:
        where = f"{name} {kind}/{workload['metadata']['name']} container {container['name']}"
        secure(where, pod, container)
        command = container.get("command", []) + container.get("args", [])
        subcommand = command[1] if len(command) > 1 else None
        if container.get("image") != "payhook:latest" or command[:1] != ["/usr/bin/payhook"] or subcommand not in READS:
            problem(where, f"expected /usr/bin/payhook {'|'.join(READS)} from payhook:latest, found {command}")
            continue
        if command[-2:] != ["--config", CONFIG_PATH]:
            problem(where, f"must end with --config {CONFIG_PATH}")
        mounts = {mount["mountPath"]: mount for mount in container.get("volumeMounts", [])}
        volumes = {volume["name"]: volume for volume in pod.get("volumes", [])}
        config_mount = mounts.get(CONFIG_PATH, {})
        if volumes.get(config_mount.get("name"), {}).get("configMap", {}).get("name") != config_map \
                or config_mount.get("subPath") != "payhook.yaml":
            problem(where, f"{CONFIG_PATH} must be payhook.yaml of the ConfigMap {config_map}")
        env = {variable["name"]: variable for variable in container.get("env", [])}
        reference = env.get("PGPASSWORD", {}).get("valueFrom", {}).get("secretKeyRef", {})
        if reference.get("key") not in secrets.get(reference.get("name"), set()):
            problem(where, "PGPASSWORD must come from a key of a Secret (database.url has no password)")
        files = config_files(config)
        for group in READS[subcommand] | {"database"}:
            for key, path in files[group]:
                if mounted_file(pod, container, secrets, path) is None:
                    problem(where, f"{key} {path} is not a key of a Secret mounted there")
        ports = {port["name"]: port["containerPort"] for port in container.get("ports", [])}
        if subcommand == "serve":
            if ports.get("notify") != listen_port(config, "receiver", "listen"):
                problem(where, "port 'notify' is not receiver.listen's port")
            if ports.get("api") != listen_port(config, "api", "listen"):
                problem(where, "port 'api' is not api.listen's port")
            expect_probe(where, container, "readinessProbe", "/readyz", "notify")
            expect_probe(where, container, "livenessProbe", "/healthz", "notify")
        if subcommand == "work":
            if ports.get("metrics") != listen_port(config, "worker", "metrics_listen"):
                problem(where, "port 'metrics' is not worker.metrics_listen's port")
            expect_probe(where, container, "livenessProbe", "/healthz", "metrics")


def expect_probe(where, container, probe, path, port):
    get = container.get(probe, {}).get("httpGet", {})
    if get.get("path") != path or get.get("port") != port:
        problem(where, f"{probe} must GET {path} on port {port}")


def selects(selector, labels):
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


def check_keda(name, scaled, deployments, auths, secrets, schema_sql):
    where = f"{name} ScaledObject/{scaled['metadata']['name']}"
    spec = scaled.get("spec", {})
    unknown(where + " spec", spec, SCALED_OBJECT_SPEC)
    unknown(where + " scaleTargetRef", spec.get("scaleTargetRef"), SCALE_TARGET_REF)
    unknown(where + " fallback", spec.get("fallback"), FALLBACK)
    unknown(where + " advanced", spec.get("advanced"), ADVANCED)
    unknown(where + " horizontalPodAutoscalerConfig",
            spec.get("advanced", {}).get("horizontalPodAutoscalerConfig"), HPA_CONFIG)
    if "fallback" in spec and not {"failureThreshold", "replicas"} <= set(spec["fallback"]):
        problem(where, "fallback needs failureThreshold and replicas")
    target = spec.get("scaleTargetRef", {})
    deployment = deployments.get(target.get("name"))
    if target.get("kind", "Deployment") != "Deployment" or deployment is None:
        problem(where, f"scaleTargetRef names no Deployment here: {target}")
    elif deployment["spec"]["template"]["spec"]["containers"][0]["args"][0] != "work":
        problem(where, "scales something other than payhook work")
    minimum, maximum = spec.get("minReplicaCount", 0), spec.get("maxReplicaCount", 100)
    # Maintenance, reconciliation and webhook delivery run in the workers.
    if minimum < 1 or "idleReplicaCount" in spec:
        problem(where, "workers must not scale to zero")
    if maximum < minimum:
        problem(where, "maxReplicaCount is below minReplicaCount")
    for index, trigger in enumerate(spec.get("triggers", [])):
        here = f"{where} triggers[{index}]"
        unknown(here, trigger, TRIGGER)
        if trigger.get("type") != "postgresql":
            problem(here, "type must be postgresql")
            continue
        if trigger.get("metricType", "AverageValue") not in METRIC_TYPES:
            problem(here, f"metricType {trigger['metricType']} is not one a postgresql trigger has")
        metadata = trigger.get("metadata", {})
        unknown(here + " metadata", metadata, POSTGRESQL_METADATA)
        for key, value in metadata.items():
            if not isinstance(value, str):
                problem(here, f"metadata.{key} must be a string (KEDA's metadata is a map of strings)")
        try:
            if float(metadata.get("targetQueryValue", "")) <= 0:
                problem(here, "targetQueryValue must be above 0")
        except ValueError:
            problem(here, "targetQueryValue must be a number")
        parameters = set()
        reference = trigger.get("authenticationRef", {}).get("name")
        if reference:
            auth = auths.get(reference)
            if auth is None:
                problem(here, f"authenticationRef {reference} is not a TriggerAuthentication here")
            else:
                for ref in auth["spec"].get("secretTargetRef", []):
                    parameters.add(ref["parameter"])
        connection = set(metadata) | parameters
        if not ({"connectionFromEnv"} & connection or {"connection"} & parameters
                or {"host", "userName", "dbName"} <= connection and {"password", "passwordFromEnv"} & connection):
            problem(here, "no way to connect: connectionFromEnv, a connection, or host, userName, dbName and a password")
        if "host" in metadata and ".svc" not in metadata["host"] and "." not in metadata["host"]:
            problem(here, "host must be a full DNS name: KEDA connects from its own namespace")
        query = metadata.get("query", "")
        for table in re.findall(r"\bFROM\s+(\w+)", query, re.IGNORECASE):
            if not re.search(rf"CREATE TABLE {table}\b", schema_sql):
                problem(here, f"the query reads {table}, which no migration creates")
        for column in re.findall(r"\b(\w+)\s*(?:=|<=|<|>=|>)", query):
            if column.lower() != "now" and not re.search(rf"\n\s+{column}\s", schema_sql):
                problem(here, f"the query's column {column} is in no table")
        for state in re.findall(r"state\s*=\s*'(\w+)'", query):
            if state not in ("pending", "processing"):
                problem(here, f"state '{state}' is not one a worker can claim")
    for auth_name, auth in auths.items():
        here = f"{name} TriggerAuthentication/{auth_name}"
        unknown(here + " spec", auth.get("spec"), TRIGGER_AUTH_SPEC)
        for ref in auth.get("spec", {}).get("secretTargetRef", []):
            unknown(here + " secretTargetRef", ref, SECRET_TARGET_REF)
            if ref.get("parameter") not in POSTGRESQL_AUTH_PARAMETERS:
                problem(here, f"parameter {ref.get('parameter')} is not a postgresql authentication parameter")
            if ref.get("key") not in secrets.get(ref.get("name"), set()):
                problem(here, f"Secret {ref.get('name')} has no key {ref.get('key')} in secrets.example.yaml")


def main():
    directory = Path(sys.argv[1])
    root = directory.resolve().parents[1]
    schema_sql = "\n".join(path.read_text() for path in (root / "Sources").rglob("*Schema*.swift"))
    objects = load(directory)
    check_kustomization(directory, objects)
    secrets = {doc["metadata"]["name"]: set(doc.get("stringData", {})) | set(doc.get("data", {}))
               for _, doc in objects if doc["kind"] == "Secret"}
    config_maps = {doc["metadata"]["name"]: (name, doc) for name, doc in objects if doc["kind"] == "ConfigMap"}
    if len(config_maps) != 1:
        problem(str(directory), "expected one ConfigMap with payhook.yaml")
        return
    config_map, (config_file, config_doc) = next(iter(config_maps.items()))
    config = check_config_map(config_file, config_doc.get("data", {}))
    if config is None:
        return
    deployments = {doc["metadata"]["name"]: doc for _, doc in objects if doc["kind"] == "Deployment"}
    auths = {doc["metadata"]["name"]: doc for _, doc in objects if doc["kind"] == "TriggerAuthentication"}
    seen = {"serve": 0, "work": 0, "migrate": 0}
    for name, doc in objects:
        if doc["kind"] in ("Deployment", "Job"):
            check_workload(name, doc["kind"], doc, config, config_map, secrets)
            args = doc["spec"]["template"]["spec"]["containers"][0].get("args", [""])
            seen[args[0]] = seen.get(args[0], 0) + 1
        elif doc["kind"] == "ScaledObject":
            check_keda(name, doc, deployments, auths, secrets, schema_sql)
    for subcommand, count in seen.items():
        if count != 1:
            problem(str(directory), f"expected one workload running payhook {subcommand}, found {count}")
    receivers = [doc for doc in deployments.values()
                 if doc["spec"]["template"]["spec"]["containers"][0]["args"][0] == "serve"]
    for receiver in receivers:
        labels = receiver["spec"]["template"]["metadata"]["labels"]
        ports = {port["name"] for port in receiver["spec"]["template"]["spec"]["containers"][0]["ports"]}
        services = [doc for _, doc in objects if doc["kind"] == "Service" and selects(doc["spec"].get("selector"), labels)]
        targets = {port["targetPort"] for service in services for port in service["spec"]["ports"]}
        if targets != ports or len(services) < 2:
            problem("receiver", f"the notify and api ports need a Service each; Services target {sorted(targets)}")
        for service in services:
            if len({port["targetPort"] for port in service["spec"]["ports"]}) != 1:
                problem(f"Service/{service['metadata']['name']}", "the notify port and the site API never share a Service")
        kinds = {doc["kind"] for _, doc in objects
                 if doc["kind"] == "PodDisruptionBudget" and selects(doc["spec"]["selector"]["matchLabels"], labels)}
        kinds |= {doc["kind"] for _, doc in objects if doc["kind"] == "HorizontalPodAutoscaler"
                  and doc["spec"]["scaleTargetRef"]["name"] == receiver["metadata"]["name"]
                  and any(metric.get("resource", {}).get("name") == "cpu" for metric in doc["spec"]["metrics"])}
        if kinds != {"PodDisruptionBudget", "HorizontalPodAutoscaler"}:
            problem("receiver", f"needs a PodDisruptionBudget and a CPU HorizontalPodAutoscaler; found {sorted(kinds)}")
    if not any(doc["kind"] == "ScaledObject" for _, doc in objects):
        problem(str(directory), "no ScaledObject for the workers")


main()
for line in problems:
    print(f"FAIL {line}")
print(f"check_manifests: {len(problems)} problem(s)")
sys.exit(1 if problems else 0)
