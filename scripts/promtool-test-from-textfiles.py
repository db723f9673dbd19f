#!/usr/bin/env python3
"""promtool-test-from-textfiles.py RULES TEXTFILE...: a `promtool test rules` file (YAML, on stdout) that feeds
RULES the series the collection's textfiles hold, at moments chosen from their own values, and expects the alerts
an independent reading of the same values gives.

TEXTFILE are node_exporter textfiles the fleet_report role wrote (scripts/ansible-e2e.sh makes them from
kubeadm-made PKIs, one with a stale kube-apiserver). Moments ("now"), each its own test group:
  as checked                 an hour after the newest check: fresh certificates, nothing due
  certificate 30d +/- 2h     2 hours either side of 30 days before the soonest certificate expires: no alert, then
                             the warning (for it and what expires with it)
  certificate 7d +/- 2h      the warning, then critical
  certificate expired        a day after: critical
  CA ...                     the same for the soonest CA (every certificate has expired by then: critical)
  report 2d +/- 2h old       either side of two daily checks after the newest check: no alert, then every node's
The component-stale and inconsistency alerts fire in every group for each series the textfiles have at 1.

promtool starts every test at Unix time 0, so each group shifts the absolute values by the same amount (residual
times, the differences the rules compute, stay exact) and evaluates at 1 h, the rules every 15 m.

Fails, naming them, when the rules read a metric the textfiles lack (a renamed metric in the template, a typo in
a rule), when a metric the alerts need is missing, or when the textfiles give no case for an alert to fire.
Annotations are expected as the rules' own templates rendered with each alert's labels and value; only
{{ $labels.NAME }} and {{ $value | humanizeDuration }} are understood, anything else stops the generator.
"""

import json
import os
import re
import sys

import yaml

DAY = 86400
EVAL = 3600  # seconds into each test: evaluation time
STEP = 900  # promtool's evaluation interval and the series' sample interval
EXPIRY = "kubeadm_certs_expiration_timestamp_seconds"
STALE = "kubeadm_certs_component_stale"
CHECKED = "kubeadm_certs_check_timestamp_seconds"
INCONSISTENT = "kubeadm_certs_inconsistent"
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} (-?[0-9.e+]+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def die(msg):
    sys.exit("promtool-test-from-textfiles: " + msg)


def read_textfiles(paths):
    series = []
    for path in paths:
        with open(path) as f:
            for n, line in enumerate(f, 1):
                line = line.rstrip("\n")
                if not line or line.startswith("#"):
                    continue
                m = SAMPLE.match(line)
                if not m:
                    die(f"{path}:{n}: not a sample line this generator reads: {line!r}")
                labels = dict(LABEL.findall(m.group(2)))
                series.append({"metric": m.group(1), "labels": labels, "value": float(m.group(3)), "text": line})
    return series


def humanize_duration(v):
    """Prometheus' humanizeDuration template function (template/template.go), for the values the rules give."""
    if v == 0:
        return "0s"
    if abs(v) < 1:
        die(f"humanizeDuration of {v}: sub-second values are not rendered here")
    sign = "-" if v < 0 else ""
    d = int(abs(v))
    days, hours, minutes, seconds = d // DAY, d // 3600 % 24, d // 60 % 60, d % 60
    if days:
        return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
    if hours:
        return f"{sign}{hours}h {minutes}m {seconds}s"
    if minutes:
        return f"{sign}{minutes}m {seconds}s"
    return f"{sign}{abs(v):.4g}s"


def render(template, labels, value):
    def one(m):
        expr = m.group(1).strip()
        if expr.startswith("$labels."):
            return labels.get(expr[len("$labels."):], "")
        if expr == "$value | humanizeDuration":
            return humanize_duration(value)
        die(f"annotation template {{{{ {expr} }}}}: only $labels.NAME and $value | humanizeDuration are rendered here")
    return re.sub(r"\{\{(.*?)\}\}", one, template)


def main(rules_path, textfiles):
    with open(rules_path) as f:
        rules = [r for g in yaml.safe_load(f)["groups"] for r in g["rules"] if "alert" in r]
    series = read_textfiles(textfiles)
    written = {s["metric"] for s in series}
    for rule in rules:
        for metric in sorted(set(re.findall(r"\bkubeadm_certs_[a-z_]+", rule["expr"])) - written):
            die(f"{rules_path}: {rule['alert']} reads {metric}, which the textfiles do not write "
                f"(they write: {', '.join(sorted(written))})")
    for metric in (EXPIRY, STALE, CHECKED, INCONSISTENT):
        if metric not in written:
            die(f"the textfiles have no {metric} series: the alerts on it cannot be tested")
    expiry = [s for s in series if s["metric"] == EXPIRY]
    certs = [s["value"] for s in expiry if s["labels"].get("ca")]
    cas = [s["value"] for s in expiry if not s["labels"].get("ca")]
    checked = [s["value"] for s in series if s["metric"] == CHECKED]
    if not certs or not cas:
        die("the textfiles need certificates (ca=\"...\") and CAs (ca=\"\") to test both kinds of expiry alert")
    if not any(s["value"] == 1 for s in series if s["metric"] == STALE):
        die(f"no {STALE} series is 1: the stale-component alert would only be tested not to fire")
    if not any(s["value"] == 1 for s in series if s["metric"] == INCONSISTENT):
        die(f"no {INCONSISTENT} series is 1: the inconsistency alert would only be tested not to fire")
    newest_check = max(checked)
    # either side of each threshold by 2 h (a threshold a day off, or in the wrong unit, fails), and past expiry
    moments = [("as checked", newest_check + 3600)]
    for kind, soonest in (("certificate", min(certs)), ("CA", min(cas))):
        for days in (30, 7):
            moments += [(f"{kind} {days}d + 2h before expiry", soonest - days * DAY - 7200),
                        (f"{kind} {days}d - 2h before expiry", soonest - days * DAY + 7200)]
        moments.append((f"{kind} expired a day ago", soonest + DAY))
    moments += [("report 2d - 2h old", newest_check + 2 * DAY - 7200),
                ("report 2d + 2h old", newest_check + 2 * DAY + 7200)]

    # When each alert's condition holds, from the series' value v and "now" t: the oracle the rules are held to,
    # with the thresholds the rules' own comments state, written out independently of their PromQL.
    def residual(v, t):
        return v - t

    conditions = {
        "KubeadmCertsCertificateExpiresWithin30Days":
            (EXPIRY, lambda s: s["labels"].get("ca") != "", lambda v, t: 7 * DAY <= residual(v, t) < 30 * DAY, residual),
        "KubeadmCertsCertificateExpiresWithin7Days":
            (EXPIRY, lambda s: s["labels"].get("ca") != "", lambda v, t: residual(v, t) < 7 * DAY, residual),
        "KubeadmCertsCAExpiresWithin30Days":
            (EXPIRY, lambda s: s["labels"].get("ca") == "", lambda v, t: 7 * DAY <= residual(v, t) < 30 * DAY, residual),
        "KubeadmCertsCAExpiresWithin7Days":
            (EXPIRY, lambda s: s["labels"].get("ca") == "", lambda v, t: residual(v, t) < 7 * DAY, residual),
        "KubeadmCertsComponentStale":
            (STALE, lambda s: True, lambda v, t: v == 1, lambda v, t: v),
        "KubeadmCertsInconsistent":
            (INCONSISTENT, lambda s: True, lambda v, t: v == 1, lambda v, t: v),
        "KubeadmCertsReportMissing":
            (CHECKED, lambda s: True, lambda v, t: t - v > 2 * DAY, lambda v, t: t - v),
    }
    names = {r["alert"] for r in rules}
    if names != set(conditions):
        die(f"the rules' alerts {sorted(names)} are not the ones this test knows {sorted(conditions)}")
    fired = set()
    tests = []
    for title, now in moments:
        now = int(now)
        shift = now - EVAL  # value - shift at test time EVAL is what value - now is at "now"
        group = {
            "name": f"{title} (now = {now})",
            "interval": f"{STEP}s",
            "input_series": [
                {"series": s["text"].rsplit(" ", 1)[0], "values": f"{int(s['value']) - (shift if s['metric'] not in (STALE, INCONSISTENT) else 0)}+0x8"}
                for s in series
            ],
            "alert_rule_test": [],
        }
        for rule in rules:
            metric, applies, holds, value_of = conditions[rule["alert"]]
            hold_for = {"0s": 0, "15m": 900}.get(str(rule.get("for", "0s")))
            if hold_for is None:
                die(f"{rule['alert']}: for: {rule.get('for')} is not one this test evaluates (0s, 15m)")
            expected = []
            for s in series:
                if s["metric"] != metric or not applies(s):
                    continue
                v = int(s["value"])
                # firing at EVAL: the condition held at EVAL and at every evaluation since EVAL - for
                if holds(v, now) and holds(v, now - hold_for):
                    # an empty label is no label to Prometheus (a CA's ca="")
                    labels = {k: v for k, v in dict(s["labels"], **rule.get("labels", {})).items() if v != ""}
                    value = value_of(v, now)
                    expected.append({
                        "exp_labels": labels,
                        "exp_annotations": {k: render(t, labels, value) for k, t in rule.get("annotations", {}).items()},
                    })
                    fired.add(rule["alert"])
            group["alert_rule_test"].append({"eval_time": f"{EVAL}s", "alertname": rule["alert"], "exp_alerts": expected})
        tests.append(group)
    if fired != names:
        die(f"no moment makes {sorted(names - fired)} fire: the textfiles give it no case")
    doc = {"rule_files": [os.path.abspath(rules_path)], "evaluation_interval": f"{STEP}s", "tests": tests}
    json.dump(doc, sys.stdout, indent=1)  # JSON is YAML; promtool reads it as its test file
    sys.stdout.write("\n")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        die("usage: promtool-test-from-textfiles.py RULES TEXTFILE...")
    main(sys.argv[1], sys.argv[2:])
