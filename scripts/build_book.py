"""Run every chapter at one scale, then build the book's HTML from the executed copies.

    python scripts/build_book.py --scale tiny|laptop|gpu [--data-dir DIR] [--out outputs]

Steps, each timed:

1. web assets: ``scripts/web_assets.sh`` (MathJax and the ipywidgets renderer, served
   locally; it does nothing when they are present).
2. kernel: registers this interpreter as the Jupyter kernel ``prm-book`` inside
   ``sys.prefix``, so chapters run with the packages of the environment running this script.
3. execute: every ``.ipynb`` listed in ``_toc.yml``, in order, with papermill, passing
   ``scale`` (and ``data_dir`` when given) to the cell tagged ``parameters``; the executed
   copies go to ``OUT/executed/``. The first failing chapter stops the run and its failing
   cell's source and error are printed.
4. build: a build tree ``OUT/site/`` (the config with execution off, the toc, the pages and
   the executed notebooks) is built by Jupyter Book with warnings as errors into
   ``OUT/_build/html``. Nothing is executed again.

``--root`` points at another book root (a folder with ``_config.yml``, ``_toc.yml`` and the
files the toc names); the default is this repository.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from prm_lib.progress import BATCH_ENV

REPO = Path(__file__).resolve().parents[1]
KERNEL_NAME = "prm-book"
SCALES = ("tiny", "laptop", "gpu")
# What a toc entry without an extension may be, in the order Jupyter Book tries them.
SOURCE_SUFFIXES = (".ipynb", ".md", ".rst")
# Not copied into the build tree: notebooks come from the executed copies instead.
COPY_IGNORE = shutil.ignore_patterns(
    "*.ipynb", ".ipynb_checkpoints", "__pycache__", "_build", "_offline"
)


def toc_documents(root: Path) -> list[Path]:
    """The source files the book's ``_toc.yml`` lists, in reading order, relative to ``root``.

    Raises:
        FileNotFoundError: the toc names a document that has no source file.
    """
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    names: list[str] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            if "glob" in node:
                raise ValueError(f"{root / '_toc.yml'}: list files one by one, not by glob")
            for key in ("root", "file"):
                if isinstance(node.get(key), str):
                    names.append(node[key])
            for value in node.values():
                if isinstance(value, (list, dict)):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc)
    documents, missing = [], []
    for name in names:
        candidates = [Path(name)] if Path(name).suffix in SOURCE_SUFFIXES else [
            Path(name + suffix) for suffix in SOURCE_SUFFIXES
        ]
        found = [c for c in candidates if (root / c).is_file()]
        (documents if found else missing).append(found[0] if found else name)
    if missing:
        raise FileNotFoundError(
            f"{root / '_toc.yml'} lists documents with no source file: {', '.join(missing)}"
        )
    return documents


def web_assets() -> None:
    subprocess.run(["bash", str(REPO / "scripts" / "web_assets.sh")], check=True)


def ensure_kernel(name: str = KERNEL_NAME) -> str:
    """Make the kernel ``name`` start this interpreter; returns the kernel's name."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    def current_python() -> str | None:
        try:
            return KernelSpecManager().get_kernel_spec(name).argv[0]
        except NoSuchKernel:
            return None

    if current_python() != sys.executable:
        subprocess.run(
            [sys.executable, "-m", "ipykernel", "install", "--sys-prefix",
             "--name", name, "--display-name", f"Python ({name})"],
            check=True, stdout=subprocess.DEVNULL,
        )
        found = current_python()
        if found != sys.executable:
            sys.exit(
                f"the Jupyter kernel {name!r} runs {found}, not {sys.executable}: another "
                f"definition shadows ours (see `jupyter kernelspec list`); remove it"
            )
    return name


def execute(notebook: Path, executed: Path, parameters: dict, kernel: str) -> bool:
    """Run one notebook with papermill; on failure print the failing cell and return False."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    executed.parent.mkdir(parents=True, exist_ok=True)
    try:
        papermill.execute_notebook(
            str(notebook), str(executed), parameters=parameters, kernel_name=kernel,
            cwd=str(notebook.parent), progress_bar=sys.stderr.isatty(),
        )
        return True
    except PapermillExecutionError as err:
        ansi = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
        print(f"\nFAILED: {notebook}\n"
              f"cell In [{err.exec_count}] (cell {err.cell_index} of the executed copy) raised "
              f"{err.ename}: {ansi.sub('', err.evalue)}\n"
              f"---- cell source ----\n{err.source}\n"
              f"---- traceback ----\n{ansi.sub('', chr(10).join(err.traceback))}\n"
              f"---- the partly executed notebook is {executed}", file=sys.stderr)
    except Exception as err:  # a dead kernel, a missing kernel, a broken notebook file
        print(f"\nFAILED: {notebook}\n{type(err).__name__}: {err}\n"
              f"---- the partly executed notebook (if any) is {executed}", file=sys.stderr)
    return False


def executed_ok(path: Path) -> bool:
    """True when ``path`` is a notebook that papermill ran to the end without an error."""
    if not path.is_file():
        return False
    meta = json.loads(path.read_text(encoding="utf-8")).get("metadata", {}).get("papermill", {})
    return not meta.get("exception") and meta.get("end_time") is not None


def assemble(root: Path, documents: list[Path], executed_dir: Path, site: Path) -> None:
    """Write the build tree: config without execution, toc, pages, executed notebooks."""
    if site.exists():
        shutil.rmtree(site)
    site.mkdir(parents=True)

    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    config["execute"] = {**(config.get("execute") or {}), "execute_notebooks": "off"}
    sphinx = config["sphinx"] = config.get("sphinx") or {}
    sphinx_config = sphinx["config"] = sphinx.get("config") or {}
    # The static assets stay where web_assets.sh put them.
    sphinx_config["html_static_path"] = [
        str((root / p).resolve()) for p in sphinx_config.get("html_static_path", [])
    ]
    (site / "_config.yml").write_text(
        "# Written by scripts/build_book.py from the book's _config.yml: execution off, the\n"
        "# notebooks here are the executed copies.\n"
        + yaml.safe_dump(config, sort_keys=False, allow_unicode=True),
        encoding="utf-8",
    )
    shutil.copy2(root / "_toc.yml", site / "_toc.yml")

    for top in sorted({doc.parts[0] for doc in documents if len(doc.parts) > 1}):
        shutil.copytree(root / top, site / top, ignore=COPY_IGNORE, symlinks=False)
    for doc in documents:
        target = site / doc
        target.parent.mkdir(parents=True, exist_ok=True)
        if doc.suffix == ".ipynb":
            copy_executed(executed_dir / doc, target)
        else:
            shutil.copy2(root / doc, target)


RESULTS_MARKER = "<!-- results table: written by scripts/build_book.py -->"


def write_results_table(site: Path, results_dir: Path) -> None:
    """Put the numbers the chapters recorded into the introduction's results section."""
    from prm_lib.results import collect, results_markdown

    for page in site.glob("book/*.md"):
        text = page.read_text(encoding="utf-8")
        if RESULTS_MARKER in text:
            table = results_markdown(collect(results_dir))
            page.write_text(text.replace(RESULTS_MARKER, table), encoding="utf-8")


def copy_executed(source: Path, target: Path) -> None:
    """Copy an executed notebook, hiding papermill's injected-parameters cell.

    The chapter's own ``parameters`` cell stays visible (it documents the knobs), and
    every chapter prints the scale it actually ran at, so the page tells the truth
    without showing two parameter cells.
    """
    import nbformat

    nb = nbformat.read(source, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]
    nbformat.write(nb, target)


def jupyter_book() -> list[str]:
    script = Path(sys.executable).with_name("jupyter-book")
    if script.exists():
        return [str(script)]
    found = shutil.which("jupyter-book")
    if not found:
        sys.exit("jupyter-book is not installed here: pip install -e '.[book]'")
    return [found]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=SCALES, required=True,
                        help="size of the run: tiny (tests), laptop (CPU), gpu")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="data folder with prm800k/ and math/ (default: $PRM_DATA_DIR, "
                             "else the chapters download and cache the data)")
    parser.add_argument("--out", type=Path, default=REPO / "outputs",
                        help="output folder (default: outputs/)")
    parser.add_argument("--root", type=Path, default=REPO,
                        help="book root with _config.yml and _toc.yml (default: this repo)")
    parser.add_argument("--resume", action="store_true",
                        help="keep the chapters a previous run of the same --out executed "
                             "without error (and their recorded results); run the rest")
    args = parser.parse_args(argv)

    root, out = args.root.resolve(), args.out.resolve()
    executed_dir, site, build = out / "executed", out / "site", out / "_build"
    parameters = {"scale": args.scale}
    if args.data_dir is not None:
        if not args.data_dir.is_dir():
            parser.error(f"--data-dir {args.data_dir} is not a folder")
        parameters["data_dir"] = str(args.data_dir.resolve())

    timings: list[tuple[str, float]] = []

    def timed(label: str, step, *step_args):
        start = time.perf_counter()
        result = step(*step_args)
        timings.append((label, time.perf_counter() - start))
        return result

    def report() -> None:
        width = max(len(label) for label, _ in timings)
        print("\ntimings:")
        for label, seconds in timings + [("total", sum(s for _, s in timings))]:
            print(f"  {label:<{width}}  {seconds:7.1f} s")

    documents = toc_documents(root)
    notebooks = [doc for doc in documents if doc.suffix == ".ipynb"]
    print(f"book root {root}: {len(documents)} pages, {len(notebooks)} chapters to run "
          f"at scale {args.scale!r}")

    timed("web assets", web_assets)
    kernel = timed("kernel", ensure_kernel)

    results_dir = out / "results"
    for old in (build,) if args.resume else (executed_dir, build, results_dir):
        if old.exists():
            shutil.rmtree(old)
    # Chapters record their headline numbers here (prm_lib.results); the kernels that
    # papermill starts inherit this variable.
    os.environ["PRM_RESULTS_DIR"] = str(results_dir)
    # Nobody watches a batch run: no progress bars, which the saved pages would otherwise
    # show frozen at "0%" (prm_lib.progress).
    os.environ.update(BATCH_ENV)
    for i, notebook in enumerate(notebooks, 1):
        if args.resume and executed_ok(executed_dir / notebook):
            print(f"[{i}/{len(notebooks)}] {notebook}: kept from the previous run")
            continue
        (results_dir / f"{notebook.stem}.jsonl").unlink(missing_ok=True)
        print(f"[{i}/{len(notebooks)}] running {notebook} ...", flush=True)
        ok = timed(f"run {notebook}", execute, root / notebook, executed_dir / notebook,
                   parameters, kernel)
        if not ok:
            report()
            return 1
        print(f"      done in {timings[-1][1]:.1f} s -> {executed_dir / notebook}")

    timed("assemble build tree", assemble, root, documents, executed_dir, site)
    write_results_table(site, results_dir)
    print(f"building the book from {site} (warnings are errors) ...", flush=True)
    command = jupyter_book() + [
        "build", str(site), "--path-output", str(out), "--builder", "html",
        "--warningiserror", "--keep-going", "--quiet",
    ]
    # Unbuffered, so its warnings (stderr) stay next to its progress (stdout) when piped.
    proc = timed("jupyter-book build", lambda: subprocess.run(
        command, env={**os.environ, "PYTHONUNBUFFERED": "1"}))
    report()
    if proc.returncode != 0:
        print(f"\nthe book did not build (exit {proc.returncode}): the warnings above are "
              f"errors here. They name files in the build tree {site}, which mirrors the "
              f"book root {root} (its notebooks are the executed copies).", file=sys.stderr)
        return 1
    print(f"\nHTML: {build / 'html' / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
