#!/usr/bin/env bash
# Creates (or reuses) a Python venv of the parity oracle, from PyPI:
#   setup-venv.sh          torch + torchvision (requirements.txt),
#                          in $ZOO_VENV or ~/.cache/burn-model-zoo/venv;
#   setup-venv.sh paddle   PaddlePaddle's CPU wheel (requirements-paddle.txt),
#                          in $ZOO_PADDLE_VENV or ~/.cache/burn-model-zoo/paddle-venv.
#
# The venvs live outside the clone so that every checkout and every CI run shares them.
# Prints the venv's python path on its last line.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/burn-model-zoo
case "${1:-torch}" in
  torch)
    venv=${ZOO_VENV:-$cache/venv}
    requirements="$here/requirements.txt"
    check='import torch, torchvision; print(f"torch {torch.__version__}, torchvision {torchvision.__version__}")'
    size="about 5 GB and 5 minutes"
    ;;
  paddle)
    venv=${ZOO_PADDLE_VENV:-$cache/paddle-venv}
    requirements="$here/requirements-paddle.txt"
    check='import paddle; print(f"paddle {paddle.__version__}")'
    size="about 0.8 GB and 1 minute"
    ;;
  *) echo "usage: setup-venv.sh [torch|paddle]" >&2; exit 2 ;;
esac
stamp="$venv/.requirements.sha256"

want=$(sha256sum "$requirements" | cut -d' ' -f1)
if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  echo "reusing venv at $venv" >&2
else
  echo "creating venv at $venv ($size on a fresh machine)" >&2
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet -r "$requirements"
  echo "$want" >"$stamp"
fi
"$venv/bin/python" -W ignore -c "$check" >&2
echo "$venv/bin/python"
