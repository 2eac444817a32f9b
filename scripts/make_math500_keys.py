"""Regenerate the MATH500 guard's hashes from the official MATH500 file.

    python scripts/make_math500_keys.py ../shared/data/math/math500_test.jsonl
    python scripts/make_math500_keys.py ../shared/data/math/math500_test.jsonl \
        --measure ../shared/data

Writes ``prm_lib/math500_keys.txt`` (the SHA-256 key of each problem's normal form) and
``prm_lib/math500_ngrams.txt`` (per problem: its unique_id, the hash of its mathematics
and the hashes of its token n-grams). The package ships only these hashes, never the
problems, so the guard works on any machine without the data;
tests/test_sources_and_splits.py checks both files against the data.

``--measure DATA_DIR`` prints what chose :data:`~prm_lib.splits.NGRAM_SIZE` and
:data:`~prm_lib.splits.NEAR_THRESHOLD`: the largest overlap with MATH500 of every
genuine non-MATH500 problem (PRM800K phase-1 train, the 4,500 other MATH test
problems, the 7,500 MATH train problems), the closest pairs, and how many synthetic
near-copies (MATH500 problems with 1-5 prose words replaced) each threshold catches.
"""

import argparse
import json
import random
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from prm_lib import splits  # noqa: E402

PACKAGE = Path(__file__).resolve().parents[1] / "prm_lib"
THRESHOLDS = (0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


def write_files(math500: list[dict]) -> None:
    keys = sorted({splits.problem_key(r["problem"]) for r in math500})
    assert len(keys) == 500, f"{len(keys)} distinct problems, expected 500"
    (PACKAGE / "math500_keys.txt").write_text("\n".join(keys) + "\n")
    lines = [
        " ".join([r["unique_id"], splits.math_signature(r["problem"]),
                  *sorted(splits.ngram_keys(r["problem"]))])
        for r in math500
    ]
    header = (
        "# MATH500 near-copy hashes, written by scripts/make_math500_keys.py.\n"
        f"# One problem a line: unique_id, math signature, its {splits.NGRAM_SIZE}-gram hashes.\n"
    )
    (PACKAGE / "math500_ngrams.txt").write_text(header + "\n".join(lines) + "\n")
    print(f"wrote {len(keys)} keys and {len(lines)} n-gram lines to {PACKAGE}")


def _reword(text: str, k: int, vocab: list[str], rng: random.Random) -> str:
    """``text`` with ``k`` prose words (outside $...$) replaced by random words."""
    spans = [m.span() for m in re.finditer(r"\$[^$]*\$|\\\[.*?\\\]|\\\(.*?\\\)", text, re.S)]
    words = [m for m in re.finditer(r"(?<![\\A-Za-z])[A-Za-z]{3,}", text)
             if not any(a <= m.start() < b for a, b in spans)]
    for m in sorted(rng.sample(words, min(k, len(words))), key=lambda m: -m.start()):
        text = text[:m.start()] + rng.choice(vocab) + text[m.end():]
    return text


def measure(math500: list[dict], data_dir: Path) -> None:
    import pandas as pd

    m500 = {r["problem"] for r in math500}
    sources = {
        "PRM800K phase-1 train": pd.read_parquet(
            data_dir / "prm800k/phase1_train.stepwise-critic.parquet").instruction.unique(),
        "MATH test, not MATH500": [json.loads(line)["problem"] for line in
                                   (data_dir / "math/math_test.jsonl").open()],
        "MATH train": pd.read_parquet(data_dir / "math/math_train_answers.parquet").problem,
    }
    sources["MATH test, not MATH500"] = [p for p in sources["MATH test, not MATH500"]
                                         if not splits.is_math500(p)]
    print(f"n-grams of {splits.NGRAM_SIZE} tokens; overlap = largest share of n-grams "
          "shared with a MATH500 problem of the same mathematics (0: none has it)")
    pairs = []
    for name, problems in sources.items():
        best = []
        for p in problems:
            match = splits.closest_math500(p)
            best.append(0.0 if match is None else match.overlap)
            if match is not None:
                pairs.append((match.overlap, name, p, match.unique_id))
        best.sort()
        n = len(best)
        quantiles = ", ".join(f"p{q}={best[min(n - 1, n * q // 100)]:.2f}" for q in (50, 90, 99))
        flagged = ", ".join(f">={t}: {sum(b >= t for b in best)}" for t in THRESHOLDS)
        print(f"{name}: {n} problems, {sum(b > 0 for b in best)} share the mathematics of a "
              f"MATH500 problem; {quantiles}, max={best[-1]:.2f}\n  flagged {flagged}")
    text = {r["unique_id"]: r["problem"] for r in math500}
    print("closest pairs:")
    for overlap, name, p, uid in sorted(pairs, reverse=True)[:12]:
        print(f"  {overlap:.2f} {name}: {p[:90]!r}\n       MATH500 {uid}: {text[uid][:90]!r}")
    rng = random.Random(0)
    vocab = [w for p in sources["MATH test, not MATH500"][:500]
             for w in re.findall(r"[a-z]{3,}", p)]
    for k in (1, 2, 3, 5):
        overlaps = []
        for r in math500:
            match = splits.closest_math500(_reword(r["problem"], k, vocab, rng))
            overlaps.append(0.0 if match is None else match.overlap)
        caught = ", ".join(f">={t}: {sum(o >= t for o in overlaps)}" for t in THRESHOLDS)
        print(f"synthetic near-copies, {k} word(s) replaced, caught of 500: {caught}")
    assert not m500 & set(sources["MATH train"])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("math500", type=Path, help="math500_test.jsonl")
    parser.add_argument("--measure", type=Path, metavar="DATA_DIR",
                        help="also print the overlap of genuine and synthetic problems")
    args = parser.parse_args()
    rows = [json.loads(line) for line in args.math500.open() if line.strip()]
    write_files(rows)
    splits.math500_keys.cache_clear()
    splits._math500_ngrams.cache_clear()
    if args.measure:
        measure(rows, args.measure)
