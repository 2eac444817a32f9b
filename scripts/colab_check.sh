#!/usr/bin/env bash
# Run chapters the way a fresh Colab runtime would: a new virtual environment holding only
# what Colab preinstalls and this book relies on (torch, a Jupyter kernel, ipywidgets),
# a stand-in `google.colab` module imported at start-up (so the chapters' first cell sees
# "Colab"), and no `prm_lib`. Each chapter's install cell must then pip-install the
# package from REPO_URL and the chapter must run to the end.
#
#   bash scripts/colab_check.sh [REPO] [SCALE] [CHAPTER ...]
#
# REPO: what the install cell installs from (default: this checkout's committed HEAD, as
# file://...; a GitHub URL once the repository is public). SCALE defaults to tiny.
# CHAPTERS default to the laboratory's (05, 07), which need no download; chapters 1-4
# need PRM800K and SmolLM2 from the network (or PRM_DATA_DIR).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
repo="${1:-file://$root}"
scale="${2:-tiny}"
shift $(( $# > 2 ? 2 : $# ))
chapters=("$@")
[ ${#chapters[@]} -gt 0 ] || chapters=(05_process_vs_outcome 07_best_of_n_and_scoring_rules)

work="$(mktemp -d)"
echo "working in $work"
python3 -m venv "$work/venv"
# shellcheck disable=SC1091
source "$work/venv/bin/activate"
cd "$work"  # not the checkout: `prm_lib` must not be importable from the current folder
pip install -q --upgrade pip
pip install -q "${TORCH_SPEC:-torch==2.13.0}"  # Colab: preinstalled
pip install -q ipykernel ipywidgets papermill
mkdir -p "$work/fake/google/colab"
touch "$work/fake/google/__init__.py" "$work/fake/google/colab/__init__.py"
site="$(python -c 'import site; print(site.getsitepackages()[0])')"
echo "$work/fake" > "$site/colab_stand_in.pth"
echo "import google.colab" > "$site/sitecustomize.py"
python -c "import importlib.util as u, sys; assert 'google.colab' in sys.modules; \
assert u.find_spec('prm_lib') is None, 'prm_lib is already importable'"
python -m ipykernel install --prefix "$work/venv" --name colab-check > /dev/null

for nb in "${chapters[@]}"; do
  sed "s#https://github.com/OWNER/REPO#$repo#" "$root/notebooks/$nb.ipynb" > "$work/$nb.ipynb"
  PRM_CACHE_DIR="$work/cache" papermill "$work/$nb.ipynb" "$work/out_$nb.ipynb" \
    -k colab-check -p scale "$scale"
  echo "ok: $nb"
done
python -c "import prm_lib; print('prm_lib installed by the first cell:', prm_lib.__file__)"
