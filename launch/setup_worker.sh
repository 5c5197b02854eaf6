#!/usr/bin/env bash
# Installs the checkout this script sits in on one host, into ~/mobileiqa-venv:
#   bash launch/setup_worker.sh tpu|cuda12|cuda13|cpu
# The package needs Python 3.11 or 3.12; TPU VM and many cluster images ship
# 3.10, so when neither is there uv fetches a standalone 3.11. TensorFlow (a
# dependency) reads and writes the gs:// paths of the workdir and the data.
# The `export` extra brings LiteRT. The jax extra matches the version the
# package pins.
set -euo pipefail
accelerator=${1:?usage: setup_worker.sh tpu|cuda12|cuda13|cpu}
repo=$(cd "$(dirname "$0")/.." && pwd)
venv=${MOBILEIQA_VENV:-$HOME/mobileiqa-venv}

python=$(command -v python3.11 || command -v python3.12 || true)
if [[ -z "$python" ]]; then
  python3 -m pip install --user -q uv
  python3 -m uv python install 3.11
  python=$(python3 -m uv python find 3.11)
fi
[[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q "$repo[export]"
jax_version=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("jax"))')
case "$accelerator" in
  tpu|cuda12|cuda13) "$venv/bin/pip" install -q "jax[$accelerator]==$jax_version" ;;
  cpu) ;;
  *) echo "unknown accelerator '$accelerator'" >&2; exit 2 ;;
esac
# No device check here: on a pod, touching the TPU waits for every worker.
echo "installed $repo (jax $jax_version, $accelerator) into $venv"
