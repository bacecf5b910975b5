#!/usr/bin/env bash
# Creates (or reuses) the Python venv the parity oracle runs in: torch + torchvision from PyPI.
#
# The venv lives outside the clone so that every checkout and every CI run shares it:
#   $ZOO_VENV, or ~/.cache/burn-model-zoo/venv by default.
# Prints the venv's python path on its last line.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
venv=${ZOO_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/burn-model-zoo/venv}
requirements="$here/requirements.txt"
stamp="$venv/.requirements.sha256"

want=$(sha256sum "$requirements" | cut -d' ' -f1)
if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  echo "reusing torch venv at $venv" >&2
else
  echo "creating torch venv at $venv (about 5 GB and 5 minutes on a fresh machine)" >&2
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet -r "$requirements"
  echo "$want" >"$stamp"
fi
"$venv/bin/python" -c 'import torch, torchvision; print(f"torch {torch.__version__}, torchvision {torchvision.__version__}")' >&2
echo "$venv/bin/python"
