#!/usr/bin/env python3
"""Checks that every payhook_* metric the dashboard and the alert rules query is one the
Swift sources export, with a suffix its kind has (_bucket, _sum, _count only for Timers and
aggregating Recorders, which swift-prometheus exports as histograms) and label names among
its dimensions. Usage: check_metrics.py SOURCES FILE... Exits 1 on any problem."""

import json
import re
import sys
from pathlib import Path

import yaml

# How a metric is made in Sources/: a swift-metrics type, or the helpers of
# WorkerMetrics, DeliveryMetrics and ReceiverMetrics that wrap them.
MAKERS = [
    (r'\bCounter\(label:\s*"(payhook_\w+)"', "counter"),
    (r'\bGauge\(label:\s*"(payhook_\w+)"', "gauge"),
    (r'\b(?:Metrics\.)?Timer\(label:\s*"(payhook_\w+)"', "histogram"),
    (r'\bRecorder\(label:\s*"(payhook_\w+)"(?![^\n]*aggregate:\s*false)', "histogram"),
    (r'\bcounter\("(payhook_\w+)"', "counter"),
    (r'\bgauge\("(payhook_\w+)"', "gauge"),
    (r'\btimer\("(payhook_\w+)"', "histogram"),
    (r'\bcached\(timers,\s*"(payhook_\w+)"', "histogram"),
    (r'\bcached\(counters,\s*"(payhook_\w+)"', "counter"),
]
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
# Labels Prometheus itself adds to every scraped series.
SCRAPE_LABELS = {"instance", "job", "namespace", "pod", "container", "endpoint_service"}


def exported(sources):
    """{name: (kind, dimension names)} from the Swift sources."""
    metrics = {}
    for path in sorted(Path(sources).rglob("*.swift")):
        text = path.read_text()
        for pattern, kind in MAKERS:
            for match in re.finditer(pattern, text):
                # The call's arguments, up to where the metric is used or its factory named.
                line = text[match.end():match.end() + 400]
                line = line[:min((line.find(end) for end in (").increment", ").record", "factory", "\n\n")
                                  if end in line), default=len(line))]
                dimensions = set(re.findall(r'\(\s*"(\w+)"\s*,', line))
                # ReceiverMetrics passes its dimensions as arguments (channel:, status:, reason:).
                dimensions |= {name for name in ("channel", "status", "reason")
                               if re.search(rf"\b{name}:\s*\w", line)}
                if "dimensions: dimensions" in line:
                    before = text[:match.start()]
                    declared = before[before.rfind("let dimensions"):]
                    dimensions |= set(re.findall(r'\(\s*"(\w+)"\s*,', declared.split("\n")[0]))
                known_kind, known = metrics.get(match.group(1), (kind, set()))
                metrics[match.group(1)] = (known_kind, known | dimensions)
    return metrics


def expressions(path):
    text = Path(path).read_text()
    if path.endswith(".json"):
        def walk(node):
            if isinstance(node, dict):
                if isinstance(node.get("expr"), str):
                    yield node["expr"]
                for value in node.values():
                    yield from walk(value)
            elif isinstance(node, list):
                for value in node:
                    yield from walk(value)
        return list(walk(json.loads(text)))
    rules = yaml.safe_load(text)
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def check(expression, metrics, where):
    problems = []
    used = set()
    for match in re.finditer(r"\b(payhook_\w+)(\{[^}]*\})?", expression):
        name, selector = match.group(1), match.group(2) or ""
        base = name
        if name not in metrics:
            base = next((name[:-len(s)] for s in HISTOGRAM_SUFFIXES if name.endswith(s)), name)
        if base not in metrics:
            problems.append(f"{where}: {name} is not exported by Sources/")
            continue
        kind, dimensions = metrics[base]
        if base != name and kind != "histogram":
            problems.append(f"{where}: {name}: {base} is a {kind}, it has no {name[len(base):]}")
        if kind == "histogram" and base == name:
            problems.append(f"{where}: {name} is a histogram: query _bucket, _sum or _count")
        allowed = dimensions | SCRAPE_LABELS | ({"le"} if name.endswith("_bucket") else set())
        for label in re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", selector):
            if label not in allowed:
                problems.append(f"{where}: {name} has no label {label} (it has {', '.join(sorted(dimensions)) or 'none'})")
        used.add((base, frozenset(allowed)))
    # Grouping labels must belong to some metric of the expression.
    for group in re.findall(r"\bby\s*\(([^)]*)\)", expression):
        for label in (part.strip() for part in group.split(",") if part.strip()):
            if used and not any(label in allowed for _, allowed in used):
                problems.append(f"{where}: by ({label}): no metric of the expression has that label")
    if not used:
        problems.append(f"{where}: queries no payhook metric")
    return problems


def main():
    metrics = exported(sys.argv[1])
    problems = []
    count = 0
    for path in sys.argv[2:]:
        for index, expression in enumerate(expressions(path)):
            count += 1
            problems += check(expression, metrics, f"{Path(path).name} #{index + 1} `{expression}`")
    for line in problems:
        print(f"FAIL {line}")
    print(f"check_metrics: {count} expressions over {len(metrics)} exported metrics, {len(problems)} problem(s)")
    return 1 if problems or count == 0 else 0


sys.exit(main())
