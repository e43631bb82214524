"""Privacy: one PII redaction policy for every output. A transcript with an e-mail address (written and
spoken) and a phone number goes through eval (JSON + HTML report), audit (JSON, HTML, datasheet, fix log),
the registry and its model card, the CLI's logs and a serve request-log row; none of the planted values
appears in any file written (the run/audit/registry stores hold the data itself and are listed apart)."""

from __future__ import annotations

import json
import logging
import re

import pytest

from voxproof.cli.main import main
from voxproof.security.redact import (
    RedactingFilter,
    RedactionPolicy,
    current_policy,
    redact_request_entry,
    redact_value,
    set_policy,
)

PLANTED = " PLEASE WRITE TO JANE DOT DOE AT EXAMPLE DOT COM OR jane.doe@example.com OR CALL 555 867 5309"
NEEDLES = re.compile(r"jane|doe@|example\.com|example dot com|867\W?5309", re.IGNORECASE)
DATA_URI = re.compile(r"data:[a-z]+/[a-z+.-]+;base64,[A-Za-z0-9+/=]+")
STORES = {"run.sqlite", "audit-items.sqlite", "audit-cache.sqlite", "registry.sqlite", "m.jsonl"}


def test_policy_parse_and_fields():
    assert not RedactionPolicy.parse(None).enabled and not RedactionPolicy.parse("none").enabled
    assert RedactionPolicy.parse("all").kinds == ("email", "phone", "card", "address", "name")
    only_email = RedactionPolicy.parse("email")
    assert only_email.text("mail jo@x.org or 555 867 5309") == "mail [EMAIL] or 555 867 5309"
    from voxproof.errors import UsageError

    with pytest.raises(UsageError):
        RedactionPolicy.parse("email,ssn")
    on = RedactionPolicy(True)
    data = {"id": "1688-142285-0002", "created_at": "2026-12-06T02:12:14Z", "sha": "12345678901",
            "rows": [{"reference": "call 555 867 5309", "hypothesis": "mail jo@x.org", "wer": 0.5}]}
    out = redact_value(data, on)
    assert out["id"] == data["id"] and out["created_at"] == data["created_at"] and out["sha"] == data["sha"]
    assert out["rows"][0] == {"reference": "call [PHONE]", "hypothesis": "mail [EMAIL]", "wer": 0.5}
    assert redact_value(data, RedactionPolicy(False)) is data


def test_log_filter_and_serve_default(monkeypatch):
    monkeypatch.delenv("VOXPROOF_REDACT_PII", raising=False)
    set_policy(None)
    assert not current_policy().enabled  # off by default outside serve
    entry = {"request_id": "r-20261206-0001", "text": "reach me at jo@x.org", "latency_s": 0.2}
    assert redact_request_entry(entry)["text"] == "reach me at [EMAIL]"  # serve: on by default
    assert redact_request_entry(entry)["request_id"] == entry["request_id"]
    record = logging.LogRecord("voxproof.x", logging.INFO, __file__, 1, "hyp=%s", ("jo@x.org",), None)
    assert RedactingFilter(RedactionPolicy(True)).filter(record) and record.getMessage() == "hyp=[EMAIL]"
    monkeypatch.setenv("VOXPROOF_REDACT_PII", "email")
    assert current_policy().kinds == ("email",)
    monkeypatch.setenv("VOXPROOF_REDACT_PII", "none")  # serve's default can be turned off explicitly
    assert redact_request_entry(entry)["text"] == entry["text"]


def test_cli_rejects_unknown_kind(capsys):
    assert main(["--redact-pii", "email,ssn", "suites", "list"]) == 2
    assert "UsageError" in capsys.readouterr().err
    assert not current_policy().enabled or current_policy() == RedactionPolicy.parse(None)


def test_planted_pii_never_reaches_an_output_file(tmp_path, capsys):
    from voxproof.manifest import bundled_dataset_path, read_manifest, write_jsonl
    from voxproof.monitor.source import write_jsonl as write_request_log

    utts = [u for u in read_manifest(bundled_dataset_path()) if u.id == "1688-142285-0002"]
    utts[0] = utts[0].replace(text=utts[0].text + PLANTED)
    write_jsonl(utts, tmp_path / "m.jsonl")
    red = ["--redact-pii", "all"]
    assert main(red + ["eval", "-m", "whisper", "-d", str(tmp_path / "m.jsonl"), "-o", str(tmp_path / "run"),
                       "--features", "none"]) == 0
    assert main(red + ["audit", str(tmp_path / "m.jsonl"), "-o", str(tmp_path / "audit"), "--vad", "energy",
                       "--workers", "1", "--fix", str(tmp_path / "audit" / "fixed.jsonl")]) in (0, 1)
    reg = ["--registry", str(tmp_path / "registry.sqlite")]
    assert main(red + ["registry", *reg, "register", "v1", "--from-run", str(tmp_path / "run")]) == 0
    assert main(red + ["card", "v1", *reg, "-o", str(tmp_path / "card.md")]) == 0
    # a serve request-log row through the shared function serve calls (on by default there)
    write_request_log([redact_request_entry({"request_id": "r1", "text": utts[0].text.lower()})],
                      tmp_path / "requests.jsonl")
    logs = capsys.readouterr()
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.name.split("-wal")[0].split("-shm")[0] not in STORES]
    assert {"summary.json", "report.html", "findings.json", "datasheet.md", "fixed.log.jsonl", "card.md",
            "requests.jsonl"} <= {p.name for p in written}
    # (embedded base64 images are left out: their letters can spell anything)
    leaks = {str(p.relative_to(tmp_path)): NEEDLES.findall(DATA_URI.sub("", p.read_text(encoding="utf-8",
                                                                                        errors="replace")))
             for p in written}
    leaked = {k: v for k, v in leaks.items() if v}
    assert leaked == {}, leaked
    assert not NEEDLES.search(logs.out) and not NEEDLES.search(logs.err)
    report = (tmp_path / "run" / "report.html").read_text()
    assert "[PII]" in report  # the deleted words of the planted span, shown redacted
    import sqlite3

    con = sqlite3.connect(tmp_path / "run" / "run.sqlite")  # the store keeps the data (to re-score)
    assert "jane.doe@example.com" in con.execute("SELECT reference FROM rows").fetchone()[0]
    con.close()
    findings = json.loads((tmp_path / "audit" / "findings.json").read_text())["findings"]
    assert {"pii.email", "pii.phone"} <= {f["kind"] for f in findings}
    # the figures do not depend on the policy: the same report rebuilt without redaction has the same WER
    from voxproof.report.build import write_reports

    redacted = json.loads((tmp_path / "run" / "summary.json").read_text())["scores"]["conditions"][0]["wer"]
    plain, _ = write_reports(tmp_path / "run", html=False)
    assert plain["scores"]["conditions"][0]["wer"] == redacted
    assert NEEDLES.search((tmp_path / "run" / "summary.json").read_text()) is None  # no transcript in the JSON
