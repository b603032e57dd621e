"""Run every benchmark in bench/ and print their tables: ``make bench``.

Each script sets Django up itself and measures our code against a baseline in the same run
(alternating rounds, medians), so the ratios are comparable across machines; absolute times
are not. Nothing here asserts a time.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ["micro.py", "request_overhead.py", "signin.py", "mfa.py", "audit.py", "flood.py"]


def main() -> int:
    failed = []
    for name in SCRIPTS:
        script = HERE / name
        if not script.exists():
            continue
        print(f"\n=== {name}", flush=True)
        started = time.monotonic()
        result = subprocess.run([sys.executable, str(script)], cwd=HERE.parent, check=False)
        print(f"--- {name}: {time.monotonic() - started:.0f} s", flush=True)
        if result.returncode:
            failed.append(name)
    if failed:
        print("failed:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
