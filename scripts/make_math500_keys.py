"""Regenerate prm_lib/math500_keys.txt from the official MATH500 file.

    python scripts/make_math500_keys.py ../shared/data/math/math500_test.jsonl

The package ships only these SHA-256 keys (not the problems), so the MATH500 guard works
on any machine without the data. tests/test_splits.py checks the file against the data.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from prm_lib.splits import problem_key  # noqa: E402

src = Path(sys.argv[1])
keys = sorted({problem_key(json.loads(line)["problem"]) for line in src.open() if line.strip()})
assert len(keys) == 500, f"{src} has {len(keys)} distinct problems, expected 500"
out = Path(__file__).resolve().parents[1] / "prm_lib" / "math500_keys.txt"
out.write_text("\n".join(keys) + "\n")
print(f"wrote {len(keys)} keys to {out}")
