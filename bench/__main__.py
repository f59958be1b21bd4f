"""Run every benchmark module of this package in turn, each in its own process."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

here = Path(__file__).parent
names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if not m.name.startswith("_"))
failed = []
for name in names:
    print(f"\n=== bench.{name} ===", flush=True)
    if subprocess.call([sys.executable, "-m", f"bench.{name}", *sys.argv[1:]]) != 0:
        failed.append(name)
if failed:
    print(f"failed: {', '.join(failed)}", file=sys.stderr)
    sys.exit(1)
