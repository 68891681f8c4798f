#!/usr/bin/env bash
# Validates the deploy kit (deploy/) offline, as far as this machine allows,
# and exits non-zero if any check fails.
#
# What it checks:
#   - every YAML file under deploy/ parses (multi-document files included,
#     duplicate keys refused);
#   - the Grafana dashboard parses, uses the ${DS_PROMETHEUS} input, names
#     only metrics from METRICS.md, and every PromQL expression in it parses
#     (promtool check rules on recording rules made from the panels);
#   - promtool check config on deploy/prometheus/prometheus.yml (and the rule
#     file it loads), promtool test rules on alerts.test.yml;
#   - `keytrail validate` on deploy/config/keytrail.toml,
#     deploy/compose/keytrail.toml and the TOML inside the k8s ConfigMap,
#     with dummy values for the ${VARS} they reference and throw-away
#     certificates for the TLS files they name;
#   - the compose file against the Compose Specification schema (or
#     `docker compose config` where the plugin exists) and its references
#     (mounted files, build context, depends_on);
#   - the Kubernetes manifests: `kubectl kustomize` renders, the resources
#     validate against the Kubernetes API schemas (kubernetes-validate,
#     strict), and deployment, ConfigMap and Secret agree on names, keys,
#     mount paths, ports and the shutdown budget;
#   - the Dockerfile's essentials (non-root user, entrypoint, ignore file);
#   - systemd-analyze verify and an exposure score on the unit files.
#
# Python tools (PyYAML, kubernetes-validate, check-jsonschema) are installed
# from PyPI into target/deploy-check/venv on first use. The keytrail binary
# is target/debug/keytrail (built with `cargo build -p keytrail` if missing;
# KEYTRAIL_BIN overrides, --build rebuilds first).
#
# Usage: scripts/check-deploy.sh [--build]
# The last line reads "deploy-check: N passed, N failed, N skipped".
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1

BUILD=0
for arg in "$@"; do
    case "$arg" in
        --build) BUILD=1 ;;
        -h|--help) sed -n '2,34p' "$0"; exit 0 ;;
        *) echo "check-deploy: unknown argument $arg" >&2; exit 2 ;;
    esac
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/check-deploy.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

PASSED=0 FAILED=0 SKIPPED=0
FAILED_NAMES=()

# check NAME COMMAND...: runs the command, prints ok or FAIL with its output.
check() {
    local name=$1; shift
    local log="$TMP/log.$((PASSED + FAILED + SKIPPED))"
    if "$@" >"$log" 2>&1; then
        PASSED=$((PASSED + 1))
        printf '  ok    %s\n' "$name"
        grep -E '^(note|info): ' "$log" | sed 's/^/        /' || true
    else
        FAILED=$((FAILED + 1))
        FAILED_NAMES+=("$name")
        printf '  FAIL  %s\n' "$name"
        sed 's/^/        | /' "$log" | tail -n 40
    fi
}

skip() {
    SKIPPED=$((SKIPPED + 1))
    printf '  skip  %s (%s)\n' "$1" "$2"
}

section() { printf '== %s\n' "$1"; }

have() { command -v "$1" >/dev/null 2>&1; }

# ---------------------------------------------------------------- tools
section "tools"
VENV="$ROOT/target/deploy-check/venv"
PY_PACKAGES=(PyYAML==6.0.3 kubernetes-validate==1.37.0 check-jsonschema==0.39.0)
PY=""
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import yaml, kubernetes_validate, check_jsonschema' 2>/dev/null; then
    PY="$VENV/bin/python"
else
    rm -rf "$VENV"
    if python3 -m venv "$VENV" >"$TMP/venv.log" 2>&1 \
        && "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PY_PACKAGES[@]}" >>"$TMP/venv.log" 2>&1; then
        PY="$VENV/bin/python"
    else
        echo "  note: could not install ${PY_PACKAGES[*]} into $VENV:"
        tail -n 5 "$TMP/venv.log" | sed 's/^/        | /'
        rm -rf "$VENV"
        if python3 -c 'import yaml' 2>/dev/null \
            || python3 -m pip install --quiet --disable-pip-version-check PyYAML >/dev/null 2>&1; then
            PY=$(command -v python3)
        fi
    fi
fi
if [ -z "$PY" ] || ! "$PY" -c 'import yaml' 2>/dev/null; then
    echo "check-deploy: python3 with PyYAML is required (pip install pyyaml)" >&2
    exit 1
fi
HAVE_KV=0; "$PY" -c 'import kubernetes_validate' 2>/dev/null && HAVE_KV=1
HAVE_CJ=0; [ -x "$(dirname "$PY")/check-jsonschema" ] && HAVE_CJ=1
echo "  python: $PY (kubernetes-validate: $HAVE_KV, check-jsonschema: $HAVE_CJ)"

if ! have promtool; then
    echo "  note: promtool missing, installing Debian's prometheus package (scripts/install-prometheus.sh)"
    scripts/install-prometheus.sh >"$TMP/promtool.log" 2>&1 || tail -n 5 "$TMP/promtool.log"
fi

KEYTRAIL=${KEYTRAIL_BIN:-$ROOT/target/debug/keytrail}
if [ "$BUILD" = 1 ] || [ ! -x "$KEYTRAIL" ]; then
    if [ -n "${KEYTRAIL_BIN:-}" ] && [ "$BUILD" = 0 ]; then
        echo "check-deploy: KEYTRAIL_BIN=$KEYTRAIL is not executable" >&2
        exit 1
    fi
    echo "  building keytrail (cargo build -p keytrail)"
    cargo build --quiet --locked -p keytrail || { echo "check-deploy: cargo build failed" >&2; exit 1; }
    KEYTRAIL=$ROOT/target/debug/keytrail
fi
if [ -n "$(find crates -name '*.rs' -newer "$KEYTRAIL" -print -quit 2>/dev/null)" ]; then
    echo "  note: $KEYTRAIL is older than the sources; run with --build to check against the current code"
fi
echo "  keytrail: $KEYTRAIL ($("$KEYTRAIL" --version 2>/dev/null))"

# The Python half of the checks: one file, one subcommand per check.
cat >"$TMP/checks.py" <<'PYEOF'
import json, os, re, subprocess, sys, tomllib
import yaml

ROOT = os.getcwd()
TMP = os.environ["CHECK_TMP"]


class UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a mapping key given twice."""


def _construct_mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # `<<: *anchor` merges; explicit keys may override it
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep)


UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.load_all(f, Loader=UniqueKeyLoader) if d is not None]


def fail(msg):
    print(msg)
    sys.exit(1)


def yaml_parse(*paths):
    bad = 0
    for p in paths:
        try:
            docs = load_all(p)
            if not docs:
                print(f"{p}: no document")
                bad += 1
        except yaml.YAMLError as e:
            print(f"{p}: {e}")
            bad += 1
    print(f"info: {len(paths)} YAML files parsed")
    sys.exit(1 if bad else 0)


# ------------------------------------------------------------------ grafana
SUBST = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "6h",
         "${__rate_interval}": "5m", "${__interval}": "1m", "${__range}": "6h"}


def dashboard_exprs(dash):
    out = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []) or []:
                if t.get("expr"):
                    out.append((p.get("id"), p.get("title"), t.get("refId", "A"), t["expr"]))
            walk(p.get("panels", []) or [])
    walk(dash.get("panels", []))
    return out


def grafana(path, metrics_md, rules_out):
    with open(path) as f:
        dash = json.load(f)
    problems = []
    inputs = [i.get("name") for i in dash.get("__inputs", [])]
    if "DS_PROMETHEUS" not in inputs:
        problems.append("__inputs has no DS_PROMETHEUS datasource input")
    ids = []

    def walk(panels):
        for p in panels:
            ids.append(p.get("id"))
            if p.get("type") != "row":
                ds = p.get("datasource") or {}
                if ds.get("uid") != "${DS_PROMETHEUS}":
                    problems.append(f"panel {p.get('title')!r}: datasource is {ds!r}, not ${{DS_PROMETHEUS}}")
                for t in p.get("targets", []):
                    tds = t.get("datasource") or ds
                    if tds.get("uid") != "${DS_PROMETHEUS}":
                        problems.append(f"panel {p.get('title')!r} target {t.get('refId')}: datasource {tds!r}")
            walk(p.get("panels", []) or [])
    walk(dash.get("panels", []))
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        problems.append(f"duplicate panel ids: {sorted(dupes)}")
    known = set(re.findall(r"`(keytrail_[a-z0-9_]+)", open(metrics_md).read()))
    exprs = dashboard_exprs(dash)
    used = set()
    rules = []
    for pid, title, ref, expr in exprs:
        for name in re.findall(r"\bkeytrail_[a-z0-9_]+", expr):
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            used.add(name)
            if name not in known and base not in known:
                problems.append(f"panel {title!r}: metric {name} is not in {metrics_md}")
        promql = expr
        for k, v in SUBST.items():
            promql = promql.replace(k, v)
        rules.append({"record": f"dashboard:panel_{pid}_{ref}", "expr": promql})
    with open(rules_out, "w") as f:
        yaml.safe_dump({"groups": [{"name": "dashboard-expressions", "rules": rules}]}, f, sort_keys=False)
    for p in problems:
        print(p)
    if not problems:
        print(f"info: {len(exprs)} expressions, {len(used)} distinct keytrail metrics, all in METRICS.md")
    sys.exit(1 if problems else 0)


# ------------------------------------------------------------------ prometheus
def prometheus_jobs(path):
    cfg = load_all(path)[0]
    jobs = [j["job_name"] for j in cfg.get("scrape_configs", [])]
    if not any(j.startswith("keytrail") for j in jobs):
        fail(f"no scrape job named keytrail* in {path} (KeytrailDown expects one): {jobs}")
    print(f"info: scrape jobs {jobs}")


# ------------------------------------------------------------------ toml / env
VAR_RE = re.compile(r"(?<!\$)\$\{([A-Za-z0-9_]+)\}")


def toml_vars(text):
    names = set()
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        names.update(VAR_RE.findall(line))
    return names


def toml_env(path):
    """Prints NAME=dummy lines for every variable the config needs."""
    text = open(path).read()
    cfg = tomllib.loads(text)
    names = toml_vars(text)
    token_env = (cfg.get("grpc") or {}).get("token_env")
    if token_env:
        names.add(token_env)
    for n in sorted(names):
        print(f"{n}=dummy-{n.lower().replace('_', '-')}")


def configmap_toml(path, out_toml, etc_root):
    """Extracts keytrail.toml from the ConfigMap, points its /etc/keytrail
    paths at etc_root and prints the TLS files to create (kind path)."""
    cms = [d for d in load_all(path) if d.get("kind") == "ConfigMap"]
    if len(cms) != 1 or "keytrail.toml" not in cms[0].get("data", {}):
        fail(f"{path}: expected one ConfigMap with data keytrail.toml")
    text = cms[0]["data"]["keytrail.toml"]
    cfg = tomllib.loads(text)
    files = []
    tls = (cfg.get("grpc") or {}).get("tls") or {}
    for key, kind in (("ca_file", "cert"), ("cert_file", "cert"), ("key_file", "key")):
        if key in tls:
            files.append((kind, tls[key]))
    for key, value in ((cfg.get("kafka") or {}).get("librdkafka") or {}).items():
        if key in ("ssl.ca.location", "ssl.certificate.location"):
            files.append(("cert", value))
        elif key == "ssl.key.location":
            files.append(("key", value))
    with open(out_toml, "w") as f:
        f.write(text.replace("/etc/keytrail/", etc_root.rstrip("/") + "/"))
    for kind, p in files:
        if not p.startswith("/etc/keytrail/"):
            fail(f"{path}: {p} is not under /etc/keytrail/ (mounted Secrets)")
        print(kind, etc_root.rstrip("/") + "/" + p[len("/etc/keytrail/"):])


# ------------------------------------------------------------------ compose
def compose(path):
    doc = load_all(path)[0]
    base = os.path.dirname(path)
    problems = []
    services = doc.get("services", {})
    for name, svc in services.items():
        for dep in (svc.get("depends_on") or {}):
            if dep not in services:
                problems.append(f"{name}: depends_on unknown service {dep}")
        for vol in svc.get("volumes", []) or []:
            src = vol.split(":")[0] if isinstance(vol, str) else vol.get("source", "")
            if src.startswith((".", "/")):
                if not os.path.exists(os.path.join(base, src)):
                    problems.append(f"{name}: mounted {src} does not exist")
            elif src and src not in (doc.get("volumes") or {}):
                problems.append(f"{name}: named volume {src} is not declared")
        build = svc.get("build")
        if build:
            ctx = os.path.join(base, build.get("context", "."))
            if not os.path.isfile(os.path.join(ctx, build.get("dockerfile", "Dockerfile"))):
                problems.append(f"{name}: dockerfile {build.get('dockerfile')} not found in {ctx}")
        if "healthcheck" not in svc and svc.get("restart") != "no":
            problems.append(f"{name}: a long-running service without a healthcheck")
    kt = services.get("keytrail", {})
    cfg = tomllib.load(open(os.path.join(base, "keytrail.toml"), "rb"))
    budget = cfg["kafka"].get("drain_timeout_ms", 30000) + cfg.get("pipeline", {}).get("shutdown_timeout_ms", 30000)
    grace = kt.get("stop_grace_period", "10s")
    m = re.fullmatch(r"(\d+)s", str(grace))
    if not m or int(m.group(1)) * 1000 <= budget:
        problems.append(f"keytrail: stop_grace_period {grace} must exceed drain+shutdown ({budget} ms)")
    listen_port = cfg.get("prometheus", {}).get("listen", "").rsplit(":", 1)[-1]
    if listen_port not in json.dumps(kt.get("healthcheck", {})):
        problems.append(f"keytrail: healthcheck does not probe the [prometheus] port {listen_port}")
    for p in problems:
        print(p)
    if not problems:
        print(f"info: {len(services)} services, references resolve")
    sys.exit(1 if problems else 0)


# ------------------------------------------------------------------ kubernetes
def k8s(k8s_dir):
    docs = {}
    for name in os.listdir(k8s_dir):
        if name.endswith(".yaml"):
            for d in load_all(os.path.join(k8s_dir, name)):
                docs[(d.get("kind"), d.get("metadata", {}).get("name"))] = d
    problems = []
    dep = docs.get(("Deployment", "keytrail"))
    if not dep:
        fail("no Deployment keytrail")
    spec = dep["spec"]["template"]["spec"]
    c = spec["containers"][0]
    secrets = {n: d for (k, n), d in docs.items() if k == "Secret"}

    def secret_has(name, key):
        s = secrets.get(name)
        return s is not None and key in (s.get("stringData") or {}) | (s.get("data") or {})

    env = {e["name"]: e for e in c.get("env", [])}
    for e in env.values():
        ref = (e.get("valueFrom") or {}).get("secretKeyRef")
        if ref and not secret_has(ref["name"], ref["key"]):
            problems.append(f"env {e['name']}: Secret {ref['name']} key {ref['key']} is not in secret.example.yaml")
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
    cm_name = None
    for m in mounts.values():
        v = volumes.get(m["name"])
        if not v:
            problems.append(f"volumeMount {m['name']} has no volume")
        elif "configMap" in v:
            cm_name = v["configMap"]["name"]
    cm = docs.get(("ConfigMap", cm_name))
    if not cm:
        fail(f"the deployment mounts ConfigMap {cm_name}, which is not defined")
    text = cm["data"]["keytrail.toml"]
    cfg = tomllib.loads(text)
    for var in sorted(toml_vars(text)):
        if var not in env:
            problems.append(f"the config uses ${{{var}}} but the container does not set {var}")
    token_env = (cfg.get("grpc") or {}).get("token_env")
    if token_env and token_env not in env:
        problems.append(f"[grpc] token_env {token_env} is not set in the container")
    paths = list(((cfg.get("grpc") or {}).get("tls") or {}).values())
    paths += [v for k, v in ((cfg.get("kafka") or {}).get("librdkafka") or {}).items() if k.endswith(".location")]
    for p in paths:
        if not p.startswith("/"):
            continue
        holder = [mp for mp in mounts if p.startswith(mp.rstrip("/") + "/")]
        if not holder:
            problems.append(f"{p}: no volume mounted there")
            continue
        v = volumes[mounts[holder[0]]["name"]]
        key = p[len(holder[0].rstrip("/")) + 1:]
        sname = (v.get("secret") or {}).get("secretName")
        if sname and not secret_has(sname, key):
            problems.append(f"{p}: Secret {sname} has no key {key} in secret.example.yaml")
    port = int(cfg["prometheus"]["listen"].rsplit(":", 1)[1])
    if not cfg["prometheus"]["listen"].startswith("0.0.0.0:"):
        problems.append("[prometheus] listen must be 0.0.0.0:PORT for probes and scrapes")
    cports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    if cports.get("metrics") != port:
        problems.append(f"container port metrics {cports.get('metrics')} != [prometheus] listen port {port}")
    for probe, path in (("livenessProbe", "/health"), ("readinessProbe", "/ready")):
        got = (c.get(probe) or {}).get("httpGet", {})
        if got.get("path") != path or got.get("port") not in ("metrics", port):
            problems.append(f"{probe} should GET {path} on the metrics port, has {got}")
    budget = cfg["kafka"].get("drain_timeout_ms", 30000) + cfg.get("pipeline", {}).get("shutdown_timeout_ms", 30000)
    grace = spec.get("terminationGracePeriodSeconds", 30)
    if grace * 1000 <= budget:
        problems.append(f"terminationGracePeriodSeconds {grace}s must exceed drain+shutdown {budget} ms")
    sc, psc = c.get("securityContext", {}), spec.get("securityContext", {})
    if not (sc.get("runAsNonRoot") or psc.get("runAsNonRoot")):
        problems.append("runAsNonRoot is not set")
    if not sc.get("readOnlyRootFilesystem"):
        problems.append("readOnlyRootFilesystem is not set")
    if sc.get("allowPrivilegeEscalation") is not False:
        problems.append("allowPrivilegeEscalation must be false")
    if "ALL" not in (sc.get("capabilities") or {}).get("drop", []):
        problems.append("capabilities must drop ALL")
    res = c.get("resources", {})
    if not res.get("requests") or not res.get("limits"):
        problems.append("resources requests and limits must be set")
    ann = dep["spec"]["template"]["metadata"].get("annotations", {})
    if ann.get("prometheus.io/port") != str(port):
        problems.append(f"prometheus.io/port annotation {ann.get('prometheus.io/port')} != {port}")
    selector = dep["spec"]["selector"]["matchLabels"]
    for kind in ("Service", "PodDisruptionBudget", "ServiceMonitor"):
        for (k, n), d in docs.items():
            if k != kind:
                continue
            sel = d["spec"]["selector"]
            sel = sel.get("matchLabels", sel)
            if kind == "ServiceMonitor":
                svc = docs.get(("Service", "keytrail"), {})
                target = svc.get("metadata", {}).get("labels", {})
            else:
                target = dep["spec"]["template"]["metadata"]["labels"]
            if not all(target.get(a) == b for a, b in sel.items()):
                problems.append(f"{kind} {n}: selector {sel} does not match")
            if kind == "ServiceMonitor":
                ports = [p["name"] for p in docs[("Service", "keytrail")]["spec"]["ports"]]
                for ep in d["spec"]["endpoints"]:
                    if ep.get("port") not in ports:
                        problems.append(f"ServiceMonitor endpoint port {ep.get('port')} not in Service ports {ports}")
    for name, s in secrets.items():
        for key, value in ((s.get("stringData") or {}) | (s.get("data") or {})).items():
            if "REPLACE" not in str(value):
                problems.append(f"secret.example.yaml {name}/{key}: not a placeholder (REPLACE_...)")
    kust = load_all(os.path.join(k8s_dir, "kustomization.yaml"))[0]
    if "secret.example.yaml" in kust.get("resources", []):
        problems.append("kustomization.yaml must not apply secret.example.yaml")
    for p in problems:
        print(p)
    if not problems:
        print(f"info: {dep['spec']['replicas']} replicas, grace {grace}s > {budget} ms budget, "
              f"{len(env)} env vars, {len(mounts)} mounts, all consistent")
    sys.exit(1 if problems else 0)


# ------------------------------------------------------------------ docker
def dockerfile(path, ignore):
    text = open(path).read()
    problems = []
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", text, re.M | re.I)
    if len(stages) < 2:
        problems.append("expected a multi-stage build")
    final = text[text.rfind("\nFROM "):]
    users = re.findall(r"^USER\s+(\S+)", final, re.M)
    if not users or users[-1].split(":")[0] in ("root", "0"):
        problems.append("the runtime stage must end with a non-root USER")
    elif not users[-1].split(":")[0].isdigit():
        problems.append("USER should be numeric so runAsNonRoot can verify it")
    if not re.search(r'^ENTRYPOINT\s+\["keytrail"\]', final, re.M):
        problems.append('ENTRYPOINT ["keytrail"] missing (exec form)')
    if not re.search(r'^CMD\s+\[', final, re.M):
        problems.append("CMD must be in exec (JSON) form")
    if not re.search(r"^EXPOSE\s+9898\b", final, re.M):
        problems.append("EXPOSE 9898 missing")
    for src in re.findall(r"^COPY\s+(?!--from)(?:--\S+\s+)*(\S+)\s+\S+", text, re.M):
        if src != "." and not os.path.exists(os.path.join(ROOT, src)):
            problems.append(f"COPY source {src} does not exist")
    patterns = [l.strip() for l in open(ignore) if l.strip() and not l.startswith("#")]
    for must in ("target/", "fuzz/", ".git/"):
        if must not in patterns:
            problems.append(f"{ignore} should exclude {must}")
    for p in problems:
        print(p)
    if not problems:
        print(f"info: {len(stages)} stages ({', '.join(s[1] or s[0] for s in stages)}), user {users[-1] if users else '?'}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    globals()[sys.argv[1]](*sys.argv[2:])
PYEOF
export CHECK_TMP="$TMP"
pycheck() { "$PY" "$TMP/checks.py" "$@"; }

# ---------------------------------------------------------------- yaml / json
section "YAML and JSON"
mapfile -t YAML_FILES < <(find deploy -type f \( -name '*.yaml' -o -name '*.yml' \) | sort)
check "every YAML file under deploy/ parses (${#YAML_FILES[@]} files)" pycheck yaml_parse "${YAML_FILES[@]}"
for dash in deploy/grafana/*.json; do
    check "$dash: JSON, datasource input, metric names" \
        pycheck grafana "$dash" crates/keytrail-sink-prometheus/METRICS.md "$TMP/dashboard-rules.yml"
    if have promtool; then
        check "$dash: every PromQL expression parses (promtool check rules)" \
            promtool check rules "$TMP/dashboard-rules.yml"
    else
        skip "$dash: PromQL parsing" "promtool not installed"
    fi
done

# ---------------------------------------------------------------- prometheus
section "Prometheus"
check "deploy/prometheus/prometheus.yml: scrape job named keytrail*" pycheck prometheus_jobs deploy/prometheus/prometheus.yml
if have promtool; then
    check "promtool check config deploy/prometheus/prometheus.yml (with alerts.yml)" \
        promtool check config deploy/prometheus/prometheus.yml
    check "promtool test rules deploy/prometheus/alerts.test.yml" \
        promtool test rules deploy/prometheus/alerts.test.yml
else
    skip "promtool check config / test rules" "promtool not installed"
fi

# ---------------------------------------------------------------- keytrail configs
section "keytrail configurations"
# validate_config NAME FILE: keytrail validate in a clean environment that has
# only dummy values for the variables the file references, so a variable the
# file needs but the check forgot fails here too.
validate_config() {
    local file=$1 envs=()
    mapfile -t envs < <(pycheck toml_env "$file") || return 1
    env -i PATH="$PATH" HOME="${HOME:-/tmp}" "${envs[@]}" "$KEYTRAIL" validate --config "$file"
}
check "keytrail validate deploy/config/keytrail.toml" validate_config deploy/config/keytrail.toml
check "keytrail validate deploy/compose/keytrail.toml" validate_config deploy/compose/keytrail.toml

configmap_validate() {
    local etc="$TMP/etc/keytrail" out="$TMP/configmap-keytrail.toml" kind path
    have openssl || { echo "openssl is needed to make throw-away certificates"; return 1; }
    pycheck configmap_toml deploy/k8s/configmap.yaml "$out" "$etc" >"$TMP/tls-files" || { cat "$TMP/tls-files"; return 1; }
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
        -subj /CN=keytrail-deploy-check -keyout "$TMP/check.key" -out "$TMP/check.crt" 2>/dev/null || return 1
    while read -r kind path; do
        mkdir -p "$(dirname "$path")"
        if [ "$kind" = key ]; then cp "$TMP/check.key" "$path"; else cp "$TMP/check.crt" "$path"; fi
    done <"$TMP/tls-files"
    echo "note: $(wc -l <"$TMP/tls-files") TLS files stood in by a throw-away certificate"
    validate_config "$out"
}
check "keytrail validate: the TOML in deploy/k8s/configmap.yaml" configmap_validate

# ---------------------------------------------------------------- compose
section "docker compose"
check "deploy/compose/compose.yaml: references, healthchecks, stop grace" pycheck compose deploy/compose/compose.yaml
if have docker && docker compose version >/dev/null 2>&1; then
    check "docker compose config" docker compose -f deploy/compose/compose.yaml config --quiet
elif [ "$HAVE_CJ" = 1 ]; then
    check "compose.yaml against the Compose Specification schema (check-jsonschema)" \
        "$(dirname "$PY")/check-jsonschema" --builtin-schema vendor.compose-spec deploy/compose/compose.yaml
else
    skip "compose schema" "neither the docker compose plugin nor check-jsonschema"
fi

# ---------------------------------------------------------------- kubernetes
section "Kubernetes"
check "deploy/k8s: deployment, ConfigMap, Secrets and Services agree" pycheck k8s deploy/k8s
K8S_VERSION=${K8S_VERSION:-1.32.0}
if have kubectl; then
    check "kubectl kustomize deploy/k8s renders" bash -c "kubectl kustomize deploy/k8s > '$TMP/kustomized.yaml'"
    RENDERED="$TMP/kustomized.yaml"
else
    skip "kubectl kustomize" "kubectl not installed"
    RENDERED=""
fi
if [ "$HAVE_KV" = 1 ]; then
    kv() {
        # Resources without a bundled schema (Kustomization, ServiceMonitor)
        # are reported as warnings; everything else must pass strictly.
        "$PY" -m kubernetes_validate --strict --no-warn --quiet -k "$K8S_VERSION" "$@"
    }
    if [ -n "$RENDERED" ] && [ -s "$RENDERED" ]; then
        check "rendered manifests against the Kubernetes $K8S_VERSION schemas (strict)" kv "$RENDERED"
    fi
    MANIFESTS=()
    for f in deploy/k8s/*.yaml; do
        [ "$(basename "$f")" = kustomization.yaml ] || MANIFESTS+=("$f")
    done
    check "every manifest file against the Kubernetes $K8S_VERSION schemas (strict)" \
        kv "${MANIFESTS[@]}"
else
    skip "Kubernetes schemas" "kubernetes-validate not installed"
fi
skip "ServiceMonitor schema" "the prometheus-operator CRD schema is not available offline"

# ---------------------------------------------------------------- docker
section "Dockerfile"
check "deploy/docker/Dockerfile: stages, non-root user, entrypoint, ignore file" \
    pycheck dockerfile deploy/docker/Dockerfile deploy/docker/Dockerfile.dockerignore
if have hadolint; then
    check "hadolint deploy/docker/Dockerfile" hadolint deploy/docker/Dockerfile
else
    skip "hadolint" "not installed"
fi
skip "docker build" "no Docker engine here (docker client only); build with: docker build -f deploy/docker/Dockerfile ."

# ---------------------------------------------------------------- systemd
section "systemd"
if have systemd-analyze; then
    mkdir -p "$TMP/systemd"
    for unit in deploy/systemd/*.service; do
        # verify checks that ExecStart's binary exists: point it at ours.
        sed "s#/usr/local/bin/keytrail#$KEYTRAIL#g" "$unit" >"$TMP/systemd/$(basename "$unit")"
    done
    check "systemd-analyze verify deploy/systemd/*.service" \
        bash -c "out=\$(systemd-analyze verify --man=no $TMP/systemd/*.service 2>&1); st=\$?; echo \"\$out\"; [ \$st -eq 0 ] && [ -z \"\$out\" ]"
    for unit in "$TMP"/systemd/*.service; do
        name=$(basename "$unit")
        if systemd-analyze security --help 2>/dev/null | grep -q -- --offline; then
            score() {
                systemd-analyze security --offline=yes --threshold=20 "$1" >"$TMP/security.$name" 2>&1
                local st=$?
                echo "note: $(tail -n 1 "$TMP/security.$name")"
                return $st
            }
            check "$name: exposure at most 2.0 (systemd-analyze security --offline)" score "$unit"
        else
            skip "$name exposure" "systemd-analyze security --offline needs systemd 250+"
        fi
    done
    timeout_check() {
        local unit=deploy/systemd/keytrail.service cfg=deploy/config/keytrail.toml stop budget
        stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s\{0,1\}$/\1/p' "$unit")
        budget=$("$PY" -c 'import sys,tomllib;c=tomllib.load(open(sys.argv[1],"rb"));print(c["kafka"].get("drain_timeout_ms",30000)+c.get("pipeline",{}).get("shutdown_timeout_ms",30000))' "$cfg")
        echo "note: TimeoutStopSec=${stop}s, drain+shutdown ${budget} ms"
        [ -n "$stop" ] && [ $((stop * 1000)) -gt "$budget" ]
    }
    check "keytrail.service: TimeoutStopSec exceeds drain+shutdown" timeout_check
else
    skip "systemd-analyze verify" "systemd-analyze not installed"
fi

# ---------------------------------------------------------------- summary
echo
if [ "$FAILED" -gt 0 ]; then
    echo "failed checks:"
    printf '  - %s\n' "${FAILED_NAMES[@]}"
fi
echo "deploy-check: $PASSED passed, $FAILED failed, $SKIPPED skipped"
[ "$FAILED" -eq 0 ]
