"""The package namespace is the book's vocabulary: every exported name resolves, to the
object its module defines, and importing the package loads neither torch nor the
laboratory."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import prm_lib
import prm_lib.lab


@pytest.mark.parametrize("package", [prm_lib, prm_lib.lab], ids=["prm_lib", "prm_lib.lab"])
def test_every_exported_name_is_its_modules_object(package):
    for name, module in package._EXPORTS.items():
        source = importlib.import_module(f"{package.__name__}.{module}")
        assert getattr(package, name) is getattr(source, name), name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        package.nope  # noqa: B018


def test_best_of_n_is_the_function_even_after_its_module_is_imported():
    import prm_lib.best_of_n  # noqa: F401

    from prm_lib import best_of_n

    assert callable(best_of_n) and best_of_n.__module__ == "prm_lib.best_of_n"


def test_importing_the_package_is_light():
    code = ("import sys, prm_lib; "
            "print(any(m == 'torch' or m.startswith('prm_lib.lab') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"
