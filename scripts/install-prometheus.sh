#!/usr/bin/env bash
# Installs Prometheus and promtool from Debian's `prometheus` package, for the
# tests of keytrail-sink-prometheus (`promtool check metrics`, `promtool test
# rules`, and a real Prometheus server in the end-to-end scrape test).
#
# Idempotent: does nothing when `promtool` and `prometheus` are already on
# PATH. Needs root (or sudo) and Debian's package mirrors; nothing else is
# downloaded. Checks that this promtool has the two subcommands the tests
# use (`test rules`, `check metrics`; Debian 12 ships Prometheus 2.42).
# The package also ships prometheus.service: on a host running systemd it
# starts on :9090; in containers and CI nothing starts it. The tests never
# use it: they start their own server on a free loopback port.
#
# Usage: scripts/install-prometheus.sh
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }

if ! have promtool || ! have prometheus; then
    if [ "$(id -u)" -eq 0 ]; then
        SUDO=()
    elif have sudo; then
        SUDO=(sudo)
    else
        echo "install-prometheus: need root or sudo to apt-get install prometheus" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update -q
    # --no-install-recommends: the server and promtool, without the
    # node exporter and the web console assets' extras.
    "${SUDO[@]}" apt-get install -y -q --no-install-recommends prometheus
fi

for tool in promtool prometheus; do
    if ! have "$tool"; then
        echo "install-prometheus: $tool still missing after installing the prometheus package" >&2
        exit 1
    fi
done

# The tests need these two promtool subcommands; old releases lack
# `check metrics` or `test rules`.
for sub in "test rules" "check metrics"; do
    # shellcheck disable=SC2086
    if ! promtool $sub --help >/dev/null 2>&1; then
        echo "install-prometheus: this promtool has no '$sub' subcommand" >&2
        promtool --version >&2 || true
        exit 1
    fi
done

echo "install-prometheus: $(promtool --version 2>&1 | head -n 1)"
echo "install-prometheus: $(prometheus --version 2>&1 | head -n 1)"
