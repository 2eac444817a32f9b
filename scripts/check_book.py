"""Check a built book the way a reader sees it; exit non-zero with the list of problems.

    python scripts/check_book.py outputs/_build/html [--screenshots DIR] [--root DIR] [--no-browser]

From the HTML files:

- every page listed in ``_toc.yml`` was built;
- no page loads a script, stylesheet, font, image or frame from another host (``src`` or
  ``href`` starting with ``http(s)://`` or ``//`` on tags that fetch something), and every
  local script, stylesheet and image a page loads exists;
- every chapter (a notebook in the toc) shows at least one figure (a png or svg image in
  an output) and no error output or traceback; text written to stderr is listed as a note;
- no executed chapter (``--executed``, default: the ``executed`` folder beside ``_build``)
  shows warning text (``UserWarning``, ``FutureWarning``, ``DeprecationWarning``...) or a
  progress bar ("0%|...", frozen in the saved page) in any output;
- a page listed in ``REQUIRED_WIDGETS`` embeds the saved state of its widget (a model
  with the widget's CSS class) and a view of it.

In headless Chromium, after the page's scripts have run (MathJax, the widget manager):

- math is typeset: every math element holds an ``mjx-container``, MathJax reported no TeX
  error or unknown macro, and no raw TeX (``\\(``, ``\\[``, ``$$``, ``$x$``) is left in the
  visible text;
- every saved widget view was drawn and is not empty, and a page's required widget was
  drawn with its content (in the static page, with no kernel);
- screenshots of the first page and of every chapter go to ``--screenshots``.

Chromium is looked up as $CHROMIUM, chromium, chromium-browser, google-chrome. Without it
the browser checks cannot run, which is a problem unless ``--no-browser`` asks for the
HTML checks only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

from bs4 import BeautifulSoup

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_book import REPO, toc_documents  # noqa: E402

INSTALL_HINT = (
    "install it (Debian/Ubuntu: `apt-get install -y chromium`), or set CHROMIUM to a "
    "Chrome/Chromium binary"
)
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
    "--disable-background-networking", "--no-first-run", "--disable-component-update",
    "--disable-sync", "--hide-scrollbars", "--window-size=1280,1400",
    "--virtual-time-budget=8000",
]
# Tags that make the browser fetch what their attribute points at.
FETCHING = {"script": "src", "img": "src", "iframe": "src", "embed": "src", "audio": "src",
            "video": "src", "source": "src", "input": "src"}
# <link rel=...> values that fetch the target (canonical, next, prev... are plain links).
FETCHING_LINK_RELS = {"stylesheet", "preload", "modulepreload", "prefetch", "preconnect",
                      "dns-prefetch", "icon", "shortcut", "apple-touch-icon", "manifest"}
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
# Pages that must show an interactive widget: docname -> (the CSS class of the widget's
# box, a text it shows once drawn). The step-score widget (prm_lib.widgets) marks its box.
REQUIRED_WIDGETS = {
    "notebooks/03_orm_and_what_each_model_sees": ("prm-step-score", "P(correct) ="),
}
# Where raw TeX is legitimately visible: code, and MathJax's own output.
NOT_VISIBLE_TEXT = ["script", "style", "noscript", "template", "textarea", "pre", "code",
                    "mjx-container", "mjx-assistive-mml"]
RAW_TEX = [
    (re.compile(r"\\\(.+?\\\)", re.S), r"\( ... \)"),
    (re.compile(r"\\\[.+?\\\]", re.S), r"\[ ... \]"),
    (re.compile(r"\$\$.+?\$\$", re.S), "$$ ... $$"),
    # TeX writes $x$ with no space inside the dollars; prices ("$5 and $10") have one.
    (re.compile(r"(?<![\\$])\$(?![\s$])[^$\n]*?(?<![\s\\])\$(?!\$)"), "$ ... $"),
]


def find_chromium() -> str | None:
    """The Chromium/Chrome binary to use, or None when there is none."""
    if os.environ.get("CHROMIUM"):
        return shutil.which(os.environ["CHROMIUM"])
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if found := shutil.which(name):
            return found
    return None


def is_external(url: str) -> bool:
    return url.strip().lower().startswith(("http://", "https://", "//"))


def local_target(page: Path, url: str) -> Path | None:
    """The file a relative URL on ``page`` points at (None for data:, anchors, etc.)."""
    parts = urlsplit(url.strip())
    if parts.scheme or parts.netloc or not parts.path:
        return None
    return (page.parent / unquote(parts.path)).resolve()


def check_resources(html_dir: Path, problems: list[str]) -> int:
    """External and missing resources on every page; returns the number of pages read."""
    pages = [p for p in sorted(html_dir.rglob("*.html"))
             if not {"_static", "_sources"} & set(p.relative_to(html_dir).parts)]
    for page in pages:
        soup = BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")
        name = page.relative_to(html_dir)
        refs = [(tag.name, tag.get(attr)) for tag_name, attr in FETCHING.items()
                for tag in soup.find_all(tag_name) if tag.get(attr)]
        refs += [("link", tag.get("href")) for tag in soup.find_all("link", href=True)
                 if FETCHING_LINK_RELS & {r.lower() for r in tag.get("rel", [])}]
        for tag, url in refs:
            if is_external(url):
                problems.append(f"{name}: <{tag}> loads {url} from the internet")
            elif (target := local_target(page, url)) and not target.exists():
                problems.append(f"{name}: <{tag}> loads {url}, which is not in the build")
    return len(pages)


def check_chapter(html_dir: Path, docname: str, problems: list[str], notes: list[str]) -> None:
    """A chapter shows a figure and no error output."""
    page = html_dir / f"{docname}.html"
    soup = BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")
    outputs = soup.select(".cell_output")
    figures = [img for out in outputs for img in out.find_all("img")
               if re.search(r"(\.(png|svg)$)|(^data:image/(png|svg))",
                            urlsplit(img.get("src", "")).path or img.get("src", ""))]
    figures += [svg for out in outputs for svg in out.find_all("svg")]
    if not figures:
        problems.append(f"{docname}: no figure (png or svg image) in any cell output")
    for out in soup.select(".cell_output .traceback, .cell_output .output.error"):
        first = next((line for line in out.get_text("\n").splitlines() if line.strip()), "")
        problems.append(f"{docname}: error output in the page: {first.strip()[:200]}")
    text = soup.get_text(" ")
    if "Traceback (most recent call last)" in text and not soup.select(".traceback"):
        problems.append(f"{docname}: a traceback is printed in the page")
    if "An Exception was encountered at" in text:  # papermill's marker of a failed run
        problems.append(f"{docname}: the notebook was saved after a failing cell")
    check_widget_state(soup, docname, problems)
    for out in soup.select(".cell_output .output.stderr"):
        first = next((line for line in out.get_text("\n").splitlines() if line.strip()), "")
        notes.append(f"{docname}: stderr output: {first.strip()[:160]}")


# What a reader must not see in an executed chapter: warning text, and progress bars
# (their widget is saved with its first frame, "0%", in a batch run).
NOISE = [
    (re.compile(r"\b\w*Warning\b: "), "warning"),
    (re.compile(r"\b\d{1,3}%\|"), "progress bar"),
]


def output_texts(notebook: dict):
    """``(cell index, text)`` of every output of a notebook: streams, and the text
    forms (plain, html, markdown) of displayed data."""
    for i, cell in enumerate(notebook.get("cells", [])):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                yield i, "".join(out.get("text", ""))
            for mime, value in out.get("data", {}).items():
                if mime.startswith("text/"):
                    yield i, "".join(value) if isinstance(value, list) else str(value)


def check_noise(executed: Path, docname: str, problems: list[str]) -> None:
    """An executed chapter shows no warning text and no progress bar."""
    path = executed / f"{docname}.ipynb"
    if not path.is_file():
        problems.append(f"{docname}: no executed notebook at {path}")
        return
    notebook = json.loads(path.read_text(encoding="utf-8"))
    for i, text in output_texts(notebook):
        for pattern, what in NOISE:
            for line in text.splitlines():
                if pattern.search(line):
                    problems.append(f"{docname}: cell {i} shows a {what}: {line.strip()[:160]}")
                    break


def check_widget_state(soup: BeautifulSoup, docname: str, problems: list[str]) -> None:
    """The page's required widget has its state embedded and a view in an output."""
    if docname not in REQUIRED_WIDGETS:
        return
    css, _ = REQUIRED_WIDGETS[docname]
    models = {}
    for script in soup.find_all("script", type=WIDGET_STATE):
        try:
            models.update(json.loads(script.string or "{}").get("state", {}))
        except json.JSONDecodeError as err:
            problems.append(f"{docname}: the embedded widget state is not JSON ({err})")
    marked = {mid for mid, m in models.items()
              if css in (m.get("state") or {}).get("_dom_classes", [])}
    views = set()
    for script in soup.find_all("script", type=WIDGET_VIEW):
        try:
            views.add(json.loads(script.string or "{}").get("model_id"))
        except json.JSONDecodeError:
            pass
    if not marked:
        problems.append(f"{docname}: no saved state of the {css!r} widget in the page (was "
                        f"the notebook executed and saved with its widget state?)")
    elif not marked & views:
        problems.append(f"{docname}: the {css!r} widget's state is saved but no output "
                        f"shows it")


def check_widget_drawn(dom: BeautifulSoup, docname: str, problems: list[str]) -> None:
    """The page's required widget was drawn, with its content, in the rendered DOM."""
    if docname not in REQUIRED_WIDGETS:
        return
    css, text = REQUIRED_WIDGETS[docname]
    boxes = dom.select(f".{css}")
    if not boxes:
        problems.append(f"{docname}: the {css!r} widget was not drawn (empty widget area)")
    elif not any(text in box.get_text(" ") for box in boxes):
        problems.append(f"{docname}: the {css!r} widget was drawn without its content "
                        f"(no {text!r} in it)")


def run_chromium(chromium: str, url: str, *args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, url],
            capture_output=True, text=True, timeout=120,
        )


def visible_text(soup: BeautifulSoup) -> str:
    for tag in soup.find_all(NOT_VISIBLE_TEXT):
        tag.decompose()
    return soup.get_text(" ")


def check_rendered(chromium: str, html_dir: Path, docname: str, problems: list[str]) -> None:
    """Math typeset and widgets drawn, in the DOM Chromium has after the scripts ran."""
    page = html_dir / f"{docname}.html"
    static = BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")
    n_views = len(static.find_all("script", type=WIDGET_VIEW))
    proc = run_chromium(chromium, page.resolve().as_uri(), "--dump-dom")
    if proc.returncode != 0 or "<html" not in proc.stdout:
        problems.append(f"{docname}: Chromium could not render the page "
                        f"(exit {proc.returncode}): {proc.stderr.strip()[-300:]}")
        return
    dom = BeautifulSoup(proc.stdout, "html.parser")

    math = dom.select(".math")
    untypeset = [m for m in math if not m.find("mjx-container")]
    if untypeset:
        problems.append(f"{docname}: {len(untypeset)} of {len(math)} math elements were not "
                        f"typeset by MathJax, e.g. {untypeset[0].get_text()[:80]!r}")
    for error in dom.find_all("mjx-merror"):
        message = error.get("data-mjx-error") or error.get_text()
        problems.append(f"{docname}: MathJax error: {message}")
    # An unknown macro is not an error to MathJax: it is drawn in red (the noundefined rule).
    for macro in dom.select('mjx-assistive-mml mtext[mathcolor="red"]'):
        problems.append(f"{docname}: undefined TeX macro {macro.get_text()!r}")

    views = dom.select(".widget-subarea")
    drawn = [v for v in views
             if v.get_text(strip=True) or v.find(["img", "canvas", "svg", "input"])]
    if len(drawn) < n_views:
        problems.append(f"{docname}: {n_views} widget views saved, {len(drawn)} drawn "
                        f"(empty widget area: is the widget state saved in the notebook?)")
    check_widget_drawn(dom, docname, problems)

    text = visible_text(dom)
    for pattern, label in RAW_TEX:
        if match := pattern.search(text):
            problems.append(f"{docname}: raw TeX left in the text ({label}): "
                            f"{' '.join(match.group(0).split())[:80]!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html_dir", type=Path, help="the built HTML, e.g. outputs/_build/html")
    parser.add_argument("--screenshots", type=Path, default=None,
                        help="write PNG screenshots of the first page and each chapter here")
    parser.add_argument("--root", type=Path, default=REPO,
                        help="book root whose _toc.yml lists the pages (default: this repo)")
    parser.add_argument("--executed", type=Path, default=None,
                        help="the executed notebooks (default: HTML_DIR/../../executed)")
    parser.add_argument("--no-browser", action="store_true",
                        help="only the checks on the HTML files; skip Chromium")
    args = parser.parse_args(argv)

    html_dir = args.html_dir.resolve()
    if not html_dir.is_dir():
        parser.error(f"{html_dir} is not a folder")
    problems: list[str] = []
    notes: list[str] = []

    documents = toc_documents(args.root.resolve())
    docnames = [doc.with_suffix("").as_posix() for doc in documents]
    chapters = [doc.with_suffix("").as_posix() for doc in documents if doc.suffix == ".ipynb"]
    built = [d for d in docnames if (html_dir / f"{d}.html").is_file()]
    for missing in sorted(set(docnames) - set(built)):
        problems.append(f"{missing}: listed in _toc.yml but {missing}.html was not built")
    print(f"pages: {len(built)} of {len(docnames)} in the toc built; "
          f"{len(chapters)} chapters")

    n_pages = check_resources(html_dir, problems)
    print(f"resources: {n_pages} HTML pages checked for external or missing scripts, "
          f"stylesheets and images")
    for chapter in chapters:
        if chapter in built:
            check_chapter(html_dir, chapter, problems, notes)
    print(f"chapters: figures and error outputs checked in {len(chapters)} chapters")
    executed = (args.executed or html_dir.parents[1] / "executed").resolve()
    for chapter in chapters:
        check_noise(executed, chapter, problems)
    print(f"chapters: warnings and progress bars looked for in {executed}")

    if args.no_browser:
        print("browser: skipped (--no-browser): math, widgets and screenshots not checked")
    elif not (chromium := find_chromium()):
        problems.append(f"Chromium not found, so math, widgets and screenshots were not "
                        f"checked: {INSTALL_HINT}; or pass --no-browser for the HTML checks only")
    else:
        for docname in built:
            check_rendered(chromium, html_dir, docname, problems)
        print(f"browser: math and widgets checked in {len(built)} rendered pages ({chromium})")
        if args.screenshots:
            args.screenshots.mkdir(parents=True, exist_ok=True)
            for docname in [docnames[0]] + chapters:
                if docname not in built:
                    continue
                shot = (args.screenshots / f"{Path(docname).name}.png").resolve()
                proc = run_chromium(chromium, (html_dir / f"{docname}.html").as_uri(),
                                    f"--screenshot={shot}")
                if proc.returncode != 0 or not shot.is_file():
                    problems.append(f"{docname}: screenshot failed: {proc.stderr.strip()[-300:]}")
                else:
                    print(f"screenshot: {shot}")

    for note in notes:
        print(f"note: {note}")
    if problems:
        print(f"\n{len(problems)} problem(s) in {html_dir}:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    print(f"\nok: {html_dir} passed every check")
    return 0


if __name__ == "__main__":
    sys.exit(main())
