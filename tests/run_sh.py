"""``example/free_port.py`` (how run.sh chooses its ports), loaded from its file: it is a
script beside the example project, not part of a package."""

from __future__ import annotations

import importlib.util
from pathlib import Path

FREE_PORT = Path(__file__).resolve().parents[1] / "example" / "free_port.py"

_spec = importlib.util.spec_from_file_location("example_free_port", FREE_PORT)
assert _spec and _spec.loader
free_port = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(free_port)

is_free = free_port.is_free
choose = free_port.choose
