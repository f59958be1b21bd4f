"""The core package never imports the Dagster code location: darooghe_assets depends on darooghe,
not the other way round (the demo, which drives Dagster, is darooghe_assets/demo.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_IMPORT_ALL = """
import importlib, pkgutil, sys
import darooghe
names = sorted(m.name for m in pkgutil.walk_packages(darooghe.__path__, "darooghe."))
for name in names:
    importlib.import_module(name)
leaked = sorted(m for m in sys.modules if m == "darooghe_assets" or m.startswith("darooghe_assets."))
print(len(names), "modules;", "leaked:", leaked)
sys.exit(1 if leaked else 0)
"""


def test_no_darooghe_module_imports_the_code_location():
    # A fresh interpreter: this test session has imported darooghe_assets for other tests.
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_ALL],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert "leaked: []" in done.stdout


def test_no_darooghe_source_names_the_code_location_in_an_import():
    """Function-level imports too, which importing the modules would not run."""
    import ast

    found = []
    for path in sorted((REPO / "darooghe").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            if any(n == "darooghe_assets" or n.startswith("darooghe_assets.") for n in names):
                found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not found, f"darooghe/ imports the code location at {', '.join(found)}"
