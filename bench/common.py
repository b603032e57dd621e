"""Shared timing helpers for the bench/*.py scripts.

Every comparison runs its candidates in alternating order inside each round
(A, B, C, then C, B, A, ...) so that slow drift of the machine (frequency
scaling, other processes, cache warm-up) is spread over all candidates, and
reports the median over rounds rather than the best or the mean.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

__all__ = ["fmt_us", "machine", "median_rounds", "print_table", "setup_django"]


def median_rounds(
    funcs: dict[str, Callable[[], None]],
    *,
    rounds: int = 7,
    number: int,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """Time every function ``number`` times per round for ``rounds`` rounds.

    The order of the functions alternates between rounds (forward on even
    rounds, reversed on odd rounds).  Each function is called once before
    timing starts, as a warm-up.  Returns ``{name: median seconds per call}``.
    ``clock=time.process_time`` measures this process's CPU time instead of the
    wall clock: what other processes on a shared machine take is then not counted.
    """
    if rounds < 1 or number < 1:
        raise ValueError("rounds and number must be >= 1")
    names = list(funcs)
    for name in names:  # warm-up: imports, caches, lazy settings
        funcs[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        order = names if r % 2 == 0 else list(reversed(names))
        for name in order:
            fn = funcs[name]
            loop = range(number)
            start = clock()
            for _ in loop:
                fn()
            samples[name].append((clock() - start) / number)
    return {name: statistics.median(values) for name, values in samples.items()}


def fmt_us(seconds: float) -> str:
    return f"{seconds * 1e6:,.1f}"


def print_table(title: str, rows: list[tuple[str, float, float]]) -> None:
    """Print ``rows`` of (name, ours seconds, baseline seconds).

    Times are given in seconds and shown in microseconds; the ratio column is
    ours / baseline (so 1.05x means 5% slower than the baseline).
    """
    name_w = max([len("case")] + [len(r[0]) for r in rows])
    header = f"{'case':<{name_w}}  {'ours µs':>12}  {'baseline µs':>12}  {'ratio':>7}"
    print()
    print(title)
    print("-" * len(header))
    print(header)
    print("-" * len(header))
    for name, ours, base in rows:
        ratio = f"{ours / base:.2f}x" if base else "n/a"
        print(f"{name:<{name_w}}  {fmt_us(ours):>12}  {fmt_us(base):>12}  {ratio:>7}")
    print("-" * len(header), flush=True)


def setup_django(settings_module: str = "bench.settings") -> None:
    """Configure Django with the bench settings and migrate the (temporary) database.

    For scripts run as ``python bench/<name>.py``: the script's own directory is taken off
    ``sys.path`` (``bench/request_overhead.py`` would otherwise shadow the ``requests`` library)
    and the repository root is put first.
    """
    import os
    import sys
    from pathlib import Path

    here = Path(__file__).resolve().parent
    root = here.parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", settings_module)

    import django
    from django.core.management import call_command

    django.setup()
    _production_logging()
    call_command("migrate", verbosity=0, interactive=False)


def _production_logging() -> None:
    """The logging README recommends (structlog, JSON lines, INFO), written to /dev/null:
    audit events pay for rendering their log line as in production, without flooding the
    benchmark's output."""
    import logging.config
    import os

    from audit.logs import configure_structlog, logging_config

    config = logging_config(json=True)
    config["handlers"]["structlog"]["stream"] = open(os.devnull, "w")  # noqa: SIM115
    configure_structlog(json=True)
    logging.config.dictConfig(config)


def machine() -> str:
    """``nproc`` and the CPU model, for the report header."""
    import os
    import platform

    model = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs, {model}, Python {platform.python_version()}"
