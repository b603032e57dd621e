"""Start and drive the local development OpenID Connect provider (example/devidp).

The provider is panva's ``oidc-provider`` (Node.js) wrapped by
``example/devidp/server.mjs``.  It runs on the Node.js 22 LTS that
example/devidp pins as the npm package ``node`` (:data:`DEVIDP_NODE`), not on
the ``node`` found on PATH.  This module

* installs its npm dependencies, that Node.js included, when needed
  (:func:`ensure_devidp_installed`),
* runs it as a subprocess (:class:`DevIdP`, a context manager), and
* drives its development login / consent / logout HTML forms over real HTTP
  with ``requests`` (:func:`login_via_devidp`, :func:`end_session_via_devidp`).

Nothing here skips: when npm is missing, the install fails or the provider
cannot start, a ``RuntimeError`` is raised so that the tests using it fail loudly.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urljoin, urlsplit

import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
DEVIDP_DIR = REPO_ROOT / "example" / "devidp"
SERVER_SCRIPT = DEVIDP_DIR / "server.mjs"
#: The pinned Node.js 22 LTS (npm package ``node`` in example/devidp/package.json)
#: that the provider runs on; ``npm ci`` in example/devidp installs it.
DEVIDP_NODE = DEVIDP_DIR / "node_modules" / ".bin" / "node"

STARTUP_TIMEOUT = 20.0
NPM_CI_TIMEOUT = 300.0
DEFAULT_PASSWORD = "devidp-any-password"  # devInteractions accepts any password
MAX_FORM_STEPS = 20

_REDIRECT_STATUSES = {301, 302, 303, 307, 308}


# ---------------------------------------------------------------------------
# Installation
# ---------------------------------------------------------------------------


def _require_npm() -> str:
    path = shutil.which("npm")
    if path is None:
        raise RuntimeError(
            "`npm` was not found on PATH: it installs the development OpenID provider "
            "(example/devidp: oidc-provider and the pinned Node.js 22 LTS it runs on, "
            "with `npm ci`). Install npm (with a Node.js to run it)."
        )
    return path


def _installed() -> bool:
    """Both oidc-provider and the pinned Node.js binary are in example/devidp/node_modules."""
    oidc_provider = DEVIDP_DIR / "node_modules" / "oidc-provider" / "package.json"
    return oidc_provider.is_file() and DEVIDP_NODE.is_file() and os.access(DEVIDP_NODE, os.X_OK)


def ensure_devidp_installed() -> None:
    """Run ``npm ci`` in example/devidp unless oidc-provider and the pinned node are there.

    A node_modules from before the Node.js pin (oidc-provider without the ``node``
    package) is installed afresh.  Raises ``RuntimeError`` if npm is missing or
    the install fails.
    """
    if _installed():
        return
    npm = _require_npm()
    # Serialise concurrent installs (e.g. several pytest-xdist workers); the
    # lock file lives outside the repository.
    lock_path = Path(tempfile.gettempdir()) / f"devidp-npm-ci-{os.getuid()}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if _installed():
                return
            try:
                result = subprocess.run(
                    [npm, "ci", "--no-audit", "--no-fund"],
                    cwd=DEVIDP_DIR,
                    capture_output=True,
                    text=True,
                    timeout=NPM_CI_TIMEOUT,
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                raise RuntimeError(f"`npm ci` in {DEVIDP_DIR} timed out") from exc
            if result.returncode != 0 or not _installed():
                raise RuntimeError(
                    f"`npm ci` in {DEVIDP_DIR} failed (exit {result.returncode}) or did not "
                    f"install oidc-provider and the pinned Node.js ({DEVIDP_NODE}):\n"
                    f"{result.stdout}\n{result.stderr}"
                )
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# ---------------------------------------------------------------------------
# The provider process
# ---------------------------------------------------------------------------


class DevIdP:
    """Run example/devidp/server.mjs for the duration of a ``with`` block.

    ``clients`` is a list of OIDC client metadata dicts (``client_id``,
    ``client_secret``, ``redirect_uris``, ``post_logout_redirect_uris``, ...).
    ``accounts`` maps a login name (the ``sub``) to claims that override or
    extend the defaults; it is written to a temporary JSON file that the
    provider re-reads on every account lookup, so :meth:`set_account` takes
    effect on the next login / userinfo call.
    """

    def __init__(
        self,
        clients: list[dict[str, Any]],
        accounts: dict[str, dict[str, Any]] | None = None,
        port: int = 0,
        *,
        startup_timeout: float = STARTUP_TIMEOUT,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.clients = list(clients)
        self.port = port
        self.startup_timeout = startup_timeout
        self.extra_env = dict(extra_env or {})
        self._initial_accounts = dict(accounts or {})
        self._accounts_lock = threading.Lock()
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._stderr_lines: list[str] = []
        self._threads: list[threading.Thread] = []
        self.issuer: str = ""
        self.accounts_path: Path | None = None

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self) -> DevIdP:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        if self._proc is not None:
            raise RuntimeError("DevIdP already started")
        ensure_devidp_installed()

        self._tmpdir = tempfile.TemporaryDirectory(prefix="devidp-")
        self.accounts_path = Path(self._tmpdir.name) / "accounts.json"
        self._write_accounts(self._initial_accounts)

        env = os.environ.copy()
        env.update(
            {
                "DEVIDP_PORT": str(self.port),
                "DEVIDP_CLIENTS": json.dumps(self.clients),
                "DEVIDP_ACCOUNTS": str(self.accounts_path),
                "NO_COLOR": "1",
            }
        )
        env.update(self.extra_env)

        self._proc = subprocess.Popen(
            [str(DEVIDP_NODE), str(SERVER_SCRIPT)],
            cwd=DEVIDP_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
        )
        stdout_lines: queue.Queue[str | None] = queue.Queue()
        self._start_reader(self._proc.stdout, stdout_lines.put, "stdout")
        self._start_reader(self._proc.stderr, self._stderr_lines.append, "stderr")

        deadline = time.monotonic() + self.startup_timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._fail(f"did not report readiness within {self.startup_timeout:.0f} s")
            try:
                line = stdout_lines.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                if self._proc.poll() is not None:
                    self._fail(f"exited with status {self._proc.returncode} during start-up")
                continue
            if line is None:  # stdout closed: the process is gone
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._proc.wait(timeout=2)
                self._fail(f"exited with status {self._proc.returncode} during start-up")
            try:
                message = json.loads(line)
            except ValueError:
                self._stderr_lines.append(f"[stdout] {line}")
                continue
            if isinstance(message, dict) and message.get("ready") is True:
                self.issuer = str(message["issuer"]).rstrip("/")
                return

    def _start_reader(self, stream: Any, sink: Callable[[Any], None], name: str) -> None:
        def pump() -> None:
            try:
                for raw in stream:
                    sink(raw.rstrip("\r\n"))
            except (OSError, ValueError):
                pass
            finally:
                if name == "stdout":
                    sink(None)

        thread = threading.Thread(target=pump, name=f"devidp-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _fail(self, reason: str) -> NoReturn:
        # stop() also joins the reader threads, so stderr is complete.
        self.stop()
        raise RuntimeError(f"devidp (example/devidp/server.mjs) {reason}.\nstderr:\n{self.stderr}")

    def _terminate(self) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def stop(self) -> None:
        """Terminate the provider (idempotent) and remove the temporary files."""
        self._terminate()
        for thread in self._threads:
            thread.join(timeout=2)
        self._threads.clear()
        if self._proc is not None:
            for stream in (self._proc.stdout, self._proc.stderr):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """Process id of the running provider (``None`` before :meth:`start`)."""
        return self._proc.pid if self._proc is not None else None

    @property
    def stderr(self) -> str:
        """Everything the provider wrote to stderr so far (warnings, errors)."""
        return "\n".join(self._stderr_lines)

    # -- accounts ----------------------------------------------------------

    def _write_accounts(self, accounts: dict[str, dict[str, Any]]) -> None:
        assert self.accounts_path is not None
        tmp = self.accounts_path.with_name(f".{self.accounts_path.name}.tmp")
        tmp.write_text(json.dumps(accounts, indent=2, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.accounts_path)  # atomic: the server never sees half a file

    @property
    def accounts(self) -> dict[str, dict[str, Any]]:
        """The current contents of the accounts file."""
        if self.accounts_path is None or not self.accounts_path.exists():
            return dict(self._initial_accounts)
        return json.loads(self.accounts_path.read_text(encoding="utf-8") or "{}")

    def set_account(self, name: str, claims: dict[str, Any]) -> None:
        """Replace the claim overrides of login ``name`` (takes effect immediately).

        Claims not given fall back to the defaults (``<name>@example.test``,
        ``email_verified`` true, names derived from ``name``, ``groups`` []);
        a claim set to ``None`` is omitted entirely.
        """
        with self._accounts_lock:
            if self.accounts_path is None:  # not started yet
                self._initial_accounts[name] = dict(claims)
                return
            accounts = self.accounts
            accounts[name] = dict(claims)
            self._write_accounts(accounts)

    def remove_account(self, name: str) -> None:
        """Drop the overrides of ``name`` (it falls back to the default claims)."""
        with self._accounts_lock:
            if self.accounts_path is None:
                self._initial_accounts.pop(name, None)
                return
            accounts = self.accounts
            accounts.pop(name, None)
            self._write_accounts(accounts)

    # -- convenience -------------------------------------------------------

    def url(self, path: str) -> str:
        return f"{self.issuer}/{path.lstrip('/')}"

    @property
    def discovery_url(self) -> str:
        return self.url("/.well-known/openid-configuration")

    def metadata(self) -> dict[str, Any]:
        response = requests.get(self.discovery_url, timeout=10)
        response.raise_for_status()
        return response.json()


# ---------------------------------------------------------------------------
# HTML form handling
# ---------------------------------------------------------------------------


@dataclass
class _Form:
    attrs: dict[str, str]
    # (name, value) of successful controls: inputs and named submit buttons
    fields: list[tuple[str, str]] = field(default_factory=list)
    # (name, value, text) of submit buttons
    buttons: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.attrs.get("id", "")

    @property
    def method(self) -> str:
        return (self.attrs.get("method") or "get").upper()

    def field_names(self) -> set[str]:
        return {name for name, _ in self.fields}

    def value(self, name: str) -> str | None:
        for key, val in self.fields:
            if key == name:
                return val
        return None


class _FormParser(HTMLParser):
    """Collect <form>s, their inputs and submit buttons (incl. ``form="id"``)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[_Form] = []
        self._current: _Form | None = None
        # controls outside any form that point at one with form="id"
        self._detached_fields: list[tuple[str, str, str]] = []
        self._detached_buttons: list[tuple[str, str, str, str]] = []
        self._button: list[Any] | None = None  # [form_ref, name, value, text_parts]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            self._current = _Form(attrs=a)
            self.forms.append(self._current)
        elif tag == "input":
            itype = a.get("type", "text").lower()
            name = a.get("name")
            if not name or itype in {"submit", "button", "image", "reset", "file"}:
                return
            if itype in {"checkbox", "radio"} and "checked" not in a:
                return
            self._add_field(a.get("form"), name, a.get("value", ""))
        elif tag == "button":
            btype = a.get("type", "submit").lower()
            if btype != "submit":
                return
            self._button = [a.get("form"), a.get("name", ""), a.get("value", ""), []]

    def handle_data(self, data: str) -> None:
        if self._button is not None:
            self._button[3].append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None
        elif tag == "button" and self._button is not None:
            form_ref, name, value, parts = self._button
            text = " ".join("".join(parts).split())
            if form_ref:
                self._detached_buttons.append((form_ref, name, value, text))
            elif self._current is not None:
                self._current.buttons.append((name, value, text))
            self._button = None

    def _add_field(self, form_ref: str | None, name: str, value: str) -> None:
        if form_ref:
            self._detached_fields.append((form_ref, name, value))
        elif self._current is not None:
            self._current.fields.append((name, value))

    def close(self) -> None:
        super().close()
        by_id = {form.id: form for form in self.forms if form.id}
        for form_ref, name, value in self._detached_fields:
            if form_ref in by_id:
                by_id[form_ref].fields.append((name, value))
        for form_ref, name, value, text in self._detached_buttons:
            if form_ref in by_id:
                by_id[form_ref].buttons.append((name, value, text))


def _parse_forms(html: str) -> list[_Form]:
    parser = _FormParser()
    parser.feed(html)
    parser.close()
    return parser.forms


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return (parts.scheme.lower(), parts.netloc.lower())


def _page_summary(response: requests.Response, limit: int = 2000) -> str:
    class _Text(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.parts: list[str] = []
            self._skip = 0

        def handle_starttag(self, tag: str, attrs: Any) -> None:
            if tag in {"style", "script"}:
                self._skip += 1

        def handle_endtag(self, tag: str) -> None:
            if tag in {"style", "script"} and self._skip:
                self._skip -= 1

        def handle_data(self, data: str) -> None:
            if not self._skip and data.strip():
                self.parts.append(" ".join(data.split()))

    text = response.text
    if "html" in response.headers.get("Content-Type", ""):
        extractor = _Text()
        extractor.feed(text)
        text = " | ".join(extractor.parts)
    return f"HTTP {response.status_code} {response.url}: {text[:limit]}"


# A chooser looks at the forms of a provider page and returns
# (form, extra fields to set) to submit, or None if it does not recognise the page.
_Chooser = Callable[[list[_Form]], tuple[_Form, dict[str, str]] | None]

#: Called with every page (200 response) of the provider that a form flow shows,
#: before its form is submitted: e.g. to check the HTML a browser would get.
PageHook = Callable[[requests.Response], None]


def _drive(
    session: requests.Session,
    start_url: str,
    choose: _Chooser,
    *,
    accept_final_page: bool,
    timeout: float,
    on_page: PageHook | None = None,
) -> requests.Response:
    provider = _origin(start_url)
    method, url, data = "GET", start_url, None
    for _ in range(MAX_FORM_STEPS):
        response = session.request(method, url, data=data, allow_redirects=False, timeout=timeout)
        if response.status_code in _REDIRECT_STATUSES:
            location = response.headers.get("Location")
            if not location:
                raise RuntimeError(f"redirect without Location: {_page_summary(response)}")
            target = urljoin(response.url, location)
            if _origin(target) != provider:
                return response
            if response.status_code in {307, 308}:
                url = target  # keep method and body
            else:
                method, url, data = "GET", target, None
            continue

        if response.status_code != 200:
            raise RuntimeError(f"devidp returned an error page: {_page_summary(response)}")

        if on_page is not None:
            on_page(response)
        forms = _parse_forms(response.text)
        choice = choose(forms)
        if choice is None:
            if accept_final_page and not forms:
                return response
            raise RuntimeError(f"unexpected devidp page: {_page_summary(response)}")
        form, extra = choice
        action = urljoin(response.url, form.attrs.get("action") or response.url)
        fields = dict(form.fields)
        fields.update(extra)
        if _origin(action) != provider:
            # e.g. response_mode=form_post: the page itself is the hand-off to the RP.
            return response
        if form.method == "POST":
            method, url, data = "POST", action, fields
        else:
            method, url, data = (
                "GET",
                requests.Request("GET", action, params=fields).prepare().url,
                None,
            )
    raise RuntimeError(f"devidp form flow did not finish within {MAX_FORM_STEPS} steps (at {url})")


def _submit_fields(form: _Form, predicate: Callable[[str, str, str], bool]) -> dict[str, str]:
    """Fields contributed by the first submit button matching predicate(name, value, text)."""
    for name, value, text in form.buttons:
        if predicate(name, value, text):
            return {name: value} if name else {}
    return {}


def login_via_devidp(
    session: requests.Session,
    authorize_url: str,
    login: str,
    *,
    password: str = DEFAULT_PASSWORD,
    timeout: float = 10.0,
    on_page: PageHook | None = None,
) -> requests.Response:
    """Sign ``login`` in at devidp and grant consent, starting at ``authorize_url``.

    ``authorize_url`` is the provider's authorization endpoint with the
    request's query string.  The devInteractions login form (fields ``login``
    and ``password``, hidden ``prompt=login``) and consent form (hidden
    ``prompt=consent``, button "Continue") are submitted as a browser would.
    Pages that the provider skips (existing session, existing grant) are
    simply not seen.  Returns the first response that redirects off the
    provider's origin (normally 303 to the client's redirect_uri with
    ``code``, ``state`` and ``iss``, or an error) without following it.
    ``on_page`` (a :data:`PageHook`) sees each provider page on the way.
    """

    def choose(forms: list[_Form]) -> tuple[_Form, dict[str, str]] | None:
        for form in forms:
            names = form.field_names()
            if form.value("prompt") == "login" or {"login", "password"} <= names:
                return form, {"login": login, "password": password}
        for form in forms:
            if form.value("prompt") == "consent":
                extra = _submit_fields(form, lambda n, v, t: t.lower() in {"continue", "allow"})
                return form, extra
        # response_mode=form_post hand-off (an auto-submitting form to the RP)
        for form in forms:
            if form.field_names() & {"code", "error", "response"}:
                return form, {}
        return None

    return _drive(
        session, authorize_url, choose, accept_final_page=False, timeout=timeout, on_page=on_page
    )


def reauthenticate_via_devidp(
    session: requests.Session,
    authorize_url: str,
    login: str,
    *,
    password: str = DEFAULT_PASSWORD,
    timeout: float = 10.0,
    on_page: PageHook | None = None,
) -> requests.Response:
    """Like :func:`login_via_devidp`, for a request that must authenticate afresh
    (``prompt=login``, ``max_age=0``, a step-up).

    Raises ``RuntimeError`` when the provider answers without showing its login form
    (it reused its session). When ``login`` is another account than the one the
    provider's session holds, the provider first signs the previous account out with
    an automatic form (hidden ``xsrf`` and ``logout=yes``); that form is submitted as
    a browser would. Returns the first response that redirects off the provider.
    """
    asked = []

    def choose(forms: list[_Form]) -> tuple[_Form, dict[str, str]] | None:
        for form in forms:
            if form.value("prompt") == "login" or {"login", "password"} <= form.field_names():
                asked.append(form)
                return form, {"login": login, "password": password}
        for form in forms:
            if form.value("prompt") == "consent":
                extra = _submit_fields(form, lambda n, v, t: t.lower() in {"continue", "allow"})
                return form, extra
        for form in forms:
            if "xsrf" in form.field_names() and form.value("logout") == "yes":
                return form, {}
        for form in forms:
            if form.field_names() & {"code", "error", "response"}:
                return form, {}
        return None

    response = _drive(
        session, authorize_url, choose, accept_final_page=False, timeout=timeout, on_page=on_page
    )
    if not asked:
        raise RuntimeError(
            f"devidp did not ask for a login again: {response.headers.get('Location', '')}"
        )
    return response


def end_session_via_devidp(
    session: requests.Session,
    end_session_url: str,
    *,
    timeout: float = 10.0,
    on_page: PageHook | None = None,
    stay_signed_in: bool = False,
) -> requests.Response:
    """Confirm RP-initiated logout at devidp, starting at ``end_session_url``.

    ``end_session_url`` is the provider's end_session_endpoint with its query
    (``id_token_hint`` / ``client_id``, ``post_logout_redirect_uri``, ``state``).
    The "Do you want to sign-out" page is answered with ``logout=yes`` (the
    "Yes, sign me out" button, which ends the whole provider session), or,
    with ``stay_signed_in``, with its "No, stay signed in" button (no
    ``logout`` field: only the requesting client's authorization ends; a
    ``RuntimeError`` if the page has no such button).
    Returns the first response that redirects off the provider's origin (the
    303 to ``post_logout_redirect_uri``), without following it.  If the
    provider instead ends on its own "signed out" page (no
    post_logout_redirect_uri was accepted), that 200 page is returned.
    ``on_page`` (a :data:`PageHook`) sees each provider page on the way,
    that last one included.
    """

    def choose(forms: list[_Form]) -> tuple[_Form, dict[str, str]] | None:
        for form in forms:
            action = form.attrs.get("action", "")
            if (
                form.id == "op.logoutForm"
                or "xsrf" in form.field_names()
                or "/session/end" in action
            ):
                if stay_signed_in and form.buttons:
                    for name, value, text in form.buttons:
                        if text.lower().startswith("no"):
                            return form, ({name: value} if name else {})
                    raise RuntimeError(f"no 'No, stay signed in' button in {form.buttons}")
                extra = _submit_fields(form, lambda n, v, t: n == "logout" and v == "yes")
                extra.setdefault("logout", "yes")
                return form, extra
        return None

    return _drive(
        session, end_session_url, choose, accept_final_page=True, timeout=timeout, on_page=on_page
    )


__all__ = [
    "DEVIDP_DIR",
    "DEVIDP_NODE",
    "SERVER_SCRIPT",
    "DevIdP",
    "PageHook",
    "end_session_via_devidp",
    "ensure_devidp_installed",
    "login_via_devidp",
    "reauthenticate_via_devidp",
]
