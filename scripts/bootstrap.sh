#!/usr/bin/env bash
# Set up the project's virtual environment in .venv (idempotent, quick when up to date):
#   1. create .venv with python3 (or $PYTHON) when absent;
#   2. when the venv has no torch: install the CPU build of PyTorch (not a multi-GB CUDA
#      build). Override with PCM3_TORCH="torch==X" (e.g. a CUDA build) and PCM3_TORCH_INDEX;
#   3. install pcm3 in editable mode with its dev (onnx included) and video extras when
#      pyproject.toml changed;
#      where pip finds no mediapipe 0.10.14 wheel for this platform (e.g. Python >= 3.13),
#      with the dev extras only (the video tests then skip and say why).
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
venv=.venv
if [ ! -x "$venv/bin/python" ]; then
    echo "bootstrap: creating $venv with $($python --version)"
    "$python" -m venv "$venv"
fi
vpy="$venv/bin/python"
pip=("$vpy" -m pip --disable-pip-version-check -q)

if ! "$vpy" -c "import torch" >/dev/null 2>&1; then
    if [ "$(uname -s)" = "Darwin" ]; then
        default_torch="torch>=2.2"          # macOS wheels are CPU/MPS builds already
    else
        default_torch="torch==2.13.0+cpu"   # the CPU build, found locally or on the CPU index
    fi
    torch_spec=${PCM3_TORCH:-$default_torch}
    torch_index=${PCM3_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}
    echo "bootstrap: installing $torch_spec"
    "${pip[@]}" install --retries 1 "$torch_spec" --extra-index-url "$torch_index"
fi

stamp="$venv/.pcm3-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    if "${pip[@]}" install --dry-run --no-deps "mediapipe==0.10.14" >/dev/null 2>&1; then
        echo "bootstrap: installing pcm3[dev,video] (editable)"
        "${pip[@]}" install -e ".[dev,video]"
    else
        echo "bootstrap: no mediapipe 0.10.14 wheel for $("$vpy" --version) on $(uname -sm);"
        echo "bootstrap: installing pcm3[dev] (editable) without the video extra"
        "${pip[@]}" install -e ".[dev]"
    fi
    touch "$stamp"
fi
