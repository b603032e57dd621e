"""README documents every public setting and every system check id (house style)."""

from __future__ import annotations

import re
from pathlib import Path

from audit.conf import DEFAULTS as AUDIT_DEFAULTS
from secure_sso.conf import DEFAULTS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_every_setting_is_in_the_settings_reference() -> None:
    missing = [key for key in DEFAULTS if f"| `{key}` |" not in README]
    assert missing == []


def test_every_audit_setting_is_documented() -> None:
    missing = [key for key in AUDIT_DEFAULTS if f"`{key}`" not in README]
    assert missing == []


def test_every_check_id_is_in_the_checks_table() -> None:
    sources = "".join(
        (ROOT / path).read_text()
        for path in ("secure_sso/checks.py", "audit/checks.py", "audit/pg_checks.py")
    )
    ids = set(re.findall(r'id="(secure_sso(?:_audit)?\.[EW]\d{3})"', sources))
    assert len(ids) > 40
    missing = sorted(i for i in ids if f"| `{i}`" not in README)
    assert missing == []


def test_the_two_set_up_commands_are_printed_as_ci_runs_them() -> None:
    """README's set-up gives exactly ``make run`` and ``make test``; .ci/run types the same
    ``make test`` (its report file comes through PYTEST_ADDOPTS, not a make variable), and
    tests/e2e/test_example.py types the same ``make run``."""
    setup = README.split("## Set-up on a fresh machine", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", setup, re.S)
    assert [b.strip() for b in blocks if b.strip().startswith("make")] == ["make run", "make test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^PYTEST_ADDOPTS=\S+ make test$", ci, re.M)
    literal = (ROOT / "tests" / "e2e" / "test_example.py").read_text()
    assert '["make", "run"]' in literal
