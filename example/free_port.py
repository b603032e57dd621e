"""The port a server of ``make run`` listens on, printed on stdout (used by run.sh).

    python free_port.py VARIABLE DEFAULT WHAT

A port the person chose (``VARIABLE`` set in the environment) must be free: otherwise one
line says so and how to choose another, and the exit status is 1. The default moves to the
next free port, and one line on stderr says which and how to choose.
"""

from __future__ import annotations

import os
import socket
import sys

#: How many ports after the default are tried.
SPAN = 100


def is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def choose(name: str, default: int, what: str, chosen: str | None) -> int:
    """The port to use; ``SystemExit`` with a one-line reason when there is none."""
    if chosen:
        if not chosen.isdigit() or not 0 < int(chosen) < 65536:
            raise SystemExit(f"run.sh: {name}={chosen!r} is not a port number (1-65535)")
        if not is_free(int(chosen)):
            raise SystemExit(f"run.sh: port {chosen} ({what}, {name}) is in use: choose "
                             f"another, e.g. {name}={int(chosen) + 1} make run")
        return int(chosen)
    for port in range(default, min(default + SPAN, 65536)):
        if is_free(port):
            if port != default:
                print(f"Port {default} is in use: the {what} uses {port} instead "
                      f"(choose one with {name}=<port> make run)", file=sys.stderr)
            return port
    raise SystemExit(f"run.sh: ports {default}-{default + SPAN - 1} are all in use: "
                     f"set {name}=<port>")


if __name__ == "__main__":
    variable, default_port, description = sys.argv[1:]
    print(choose(variable, int(default_port), description, os.environ.get(variable)))
