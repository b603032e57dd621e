"""``make run``'s ports (example/free_port.py, run by example/run.sh): a taken port is said in
one line with the way to choose another; a taken default moves to the next free port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.run_sh import FREE_PORT, choose, is_free


@pytest.fixture
def taken() -> Iterator[int]:
    """A port some other program listens on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield other.getsockname()[1]


def run(name: str, default: int, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(FREE_PORT), name, str(default), "example site"],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=30, check=False,
    )


def test_a_chosen_port_that_is_taken_is_refused_in_one_line(taken: int) -> None:
    result = run("EXAMPLE_PORT", 8000, {"EXAMPLE_PORT": str(taken)})
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip().count("\n") == 0
    assert f"port {taken} (example site, EXAMPLE_PORT) is in use" in result.stderr
    assert f"EXAMPLE_PORT={taken + 1} make run" in result.stderr


def test_a_taken_default_moves_to_a_free_port_and_says_so(taken: int) -> None:
    env = {k: v for k, v in os.environ.items() if k != "EXAMPLE_PORT"}
    result = subprocess.run(
        [sys.executable, str(FREE_PORT), "EXAMPLE_PORT", str(taken), "example site"],
        env=env, capture_output=True, text=True, timeout=30, check=False,
    )
    assert result.returncode == 0, result.stderr
    chosen = int(result.stdout)
    assert chosen != taken and is_free(chosen)
    assert f"Port {taken} is in use: the example site uses {chosen} instead" in result.stderr
    assert "EXAMPLE_PORT=<port> make run" in result.stderr


def test_a_free_default_is_used_silently(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert choose("EXAMPLE_PORT", port, "example site", None) == port
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("value", ["abc", "0", "70000", "-1", "80 80"])
def test_a_chosen_value_that_is_no_port_is_refused(value: str) -> None:
    with pytest.raises(SystemExit, match="is not a port number"):
        choose("EXAMPLE_PORT", 8000, "example site", value)
