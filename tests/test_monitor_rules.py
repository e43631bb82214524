"""SLO rules, the watcher's registry actions, incidents, webhook, Prometheus rules, dashboard and the
``voxproof monitor`` CLI exit codes, on synthetic request logs (the real-model replay is in
test_monitor_real.py)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import pytest
from test_monitor_log import make_rows, ref_profile

from voxproof.cli.main import main
from voxproof.errors import UsageError
from voxproof.monitor.policy import parse_policy
from voxproof.monitor.rules import evaluate_rules, read_tail
from voxproof.monitor.source import batch_from_records, write_jsonl
from voxproof.monitor.watch import watch_once
from voxproof.registry import Registry

POLICY = """
[window]
size = 100
min_requests = 30
[[slo]]
name = "errors"
metric = "error_rate"
max = 0.05
window = 200
[[slo]]
name = "canary-wer"
metric = "est_wer"
route = "canary"
compare = "production"
max = 0.02
window = 200
min_requests = 30
[[slo]]
name = "canary-empty"
metric = "empty_output"
route = "canary"
compare = "production"
max = 0.05
window = 200
min_requests = 30
[[slo]]
name = "shadow-wer"
metric = "est_wer"
route = "shadow"
compare = "production"
max = 0.02
min_requests = 30
"""


def interleave(prod, canary):
    rows = []
    for i, r in enumerate(prod + canary):
        rows.append({**r, "ts": 1000.0 + i * 0.5})
    rows.sort(key=lambda r: r["request_id"])
    for i, r in enumerate(rows):
        r["ts"] = 1000.0 + i
    return rows


def test_policy_refuses_bad_values_with_the_key_path():
    for text, match in [
        ("[drift]\npsi = nan", "drift.psi"),
        ("[drift]\ncorrection = 'sidak'", "holm"),
        ("[window]\nsize = 10\nstep = 20", "step"),
        ("[[slo]]\nname='a'\nmetric='est_wer'\nmax=0.1\nroute='main'\ncompare='production'", "route"),
        ("[[slo]]\nname='a'\nmetric='nope'\nmax=1", "metric"),
        ("[[slo]]\nname='a'\nmetric='error_rate'\nmax=1\n[[slo]]\nname='a'\nmetric='error_rate'\nmax=1", "two"),
        ("bogus = 1", "unknown key"),
        ("[estimate]\nresamples = 1e99", "integer"),
    ]:
        with pytest.raises(UsageError, match=match):
            parse_policy(text, source="t.toml")
    assert [r.name for r in parse_policy(POLICY).rules] == ["errors", "canary-wer", "canary-empty", "shadow-wer"]


def test_two_sample_and_paired_canary_comparisons():
    policy = parse_policy(POLICY)
    prod = make_rows(300, seed=1, conf=0.95)
    bad = make_rows(100, seed=2, conf=0.6, route="canary", version="v2", empty_every=3)
    tails = read_tail([batch_from_records(interleave(prod, bad))], 800)
    res = {r.rule.name: r for r in evaluate_rules(tails, policy, ref_profile())}
    assert res["canary-wer"].status == "breach" and res["canary-wer"].low > 0.02
    assert res["canary-wer"].method == "two-sample bootstrap"
    assert res["canary-empty"].status == "breach"
    assert res["errors"].status == "ok"
    good = make_rows(100, seed=3, conf=0.95, route="canary", version="v2")
    tails = read_tail([batch_from_records(interleave(prod, good))], 800)
    res = {r.rule.name: r for r in evaluate_rules(tails, policy, ref_profile())}
    assert res["canary-wer"].status == "ok" and res["canary-empty"].status == "ok"
    # shadow rows: the same request ids as production, judged in pairs
    shadow = [{**r, "route": "shadow", "version": "v2",
               "word_confs": json.dumps([min(1.0, c * 0.7) for c in json.loads(r["word_confs"])])
               if r["word_confs"] else None} for r in prod[:150]]
    tails = read_tail([batch_from_records(prod + shadow)], 800)
    r = next(x for x in evaluate_rules(tails, policy, ref_profile()) if x.rule.name == "shadow-wer")
    assert r.method == "paired bootstrap" and r.n == 150 and r.status == "breach"


def test_small_samples_are_too_small_not_breaches():
    policy = parse_policy(POLICY)
    prod = make_rows(300, seed=1)
    bad = make_rows(10, seed=2, conf=0.3, route="canary", version="v2", empty_every=1)
    res = evaluate_rules(read_tail([batch_from_records(prod + bad)], 800), policy, ref_profile())
    assert {r.rule.name: r.status for r in res}["canary-empty"] == "too small"


def _registry(path):
    with Registry.open(path) as reg:
        for v in ("v0", "v1", "v2"):
            reg.register(v, backend="whisper", actor="alice")
        reg.promote("v0", actor="alice")
        reg.promote("v1", actor="alice", force=True, reason="test setup")
        reg.set_alias("canary", "v2", actor="alice")


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *a):
        pass


@pytest.fixture()
def webhook():
    _Hook.received = []
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", _Hook.received
    server.shutdown()


def test_watch_removes_a_bad_canary_and_leaves_production(tmp_path, webhook):
    url, received = webhook
    reg = tmp_path / "reg.sqlite"
    _registry(reg)
    log = tmp_path / "log.jsonl"
    write_jsonl(interleave(make_rows(300, seed=1, version="v1"),
                           make_rows(100, seed=2, conf=0.55, route="canary", version="v2", empty_every=2)), log)
    (tmp_path / "policy.toml").write_text(POLICY)
    res = watch_once(str(log), str(reg), parse_policy(POLICY), ref_profile(), incidents_dir=tmp_path / "inc",
                     webhook=url)
    assert res.breached
    actions = [i.action for i in res.incidents]
    assert actions.count("remove-canary") == 1
    with Registry.open(reg) as r:
        aliases = r.aliases()
        last = r.history()[-1]
    assert "canary" not in aliases and aliases["production"] == "v1"
    assert last.actor == "monitor" and last.action == "remove-alias" and "canary-" in last.reason
    files = sorted((tmp_path / "inc").glob("incident-*.json"))
    inc = json.loads(files[0].read_text())
    assert inc["rule"]["status"] == "breach" and inc["log"]["row_ids"] and inc["version"] == "v2"
    assert received and received[0]["type"] == "voxproof.monitor.incident"
    # the next cycle has no canary left to judge: nothing more happens
    again = watch_once(str(log), str(reg), parse_policy(POLICY), ref_profile(), incidents_dir=tmp_path / "inc")
    assert not again.incidents


def test_watch_rolls_production_back_only_when_previous_passes(tmp_path):
    reg = tmp_path / "reg.sqlite"
    _registry(reg)
    policy = parse_policy(POLICY.replace('name = "errors"', 'name = "errors"\nroute = "main"'))
    log = tmp_path / "log.jsonl"
    older = make_rows(200, seed=4, version="v0")
    broken = make_rows(200, seed=5, version="v1", status=500)
    rows = older + broken
    for i, r in enumerate(rows):
        r["ts"] = 1000.0 + i
    write_jsonl(rows, log)
    res = watch_once(str(log), str(reg), policy, ref_profile(), incidents_dir=tmp_path / "inc")
    inc = next(i for i in res.incidents if i.rule["rule"] == "errors")
    assert inc.action == "rollback" and inc.change["to_version"] == "v0"
    with Registry.open(reg) as r:
        assert r.aliases()["production"] == "v0"
        assert r.history()[-1].actor == "monitor"
    # previous also broken: alert only, production kept
    reg2 = tmp_path / "reg2.sqlite"
    _registry(reg2)
    for r in older:
        r["status"] = 500
    write_jsonl(rows, log)
    res = watch_once(str(log), str(reg2), policy, ref_profile(), incidents_dir=tmp_path / "inc2")
    inc = next(i for i in res.incidents if i.rule["rule"] == "errors")
    assert inc.action == "alert-only" and "not rolled back" in inc.notes[0]
    with Registry.open(reg2) as r:
        assert r.aliases()["production"] == "v1"


def test_cli_check_exit_codes_rules_and_report(tmp_path, capsys):
    log = tmp_path / "log.jsonl"
    write_jsonl(make_rows(300, seed=1), log)
    prof = ref_profile().save(tmp_path / "profile.json")
    pol = tmp_path / "p.toml"
    pol.write_text(POLICY)
    assert main(["monitor", "check", "--log", str(log), "--policy", str(pol), "--profile", str(prof),
                 "--metrics-out", str(tmp_path / "m.prom")]) == 0
    assert 'voxproof_monitor_rule_value{rule="errors"' in (tmp_path / "m.prom").read_text()
    bad = tmp_path / "bad.jsonl"
    write_jsonl(make_rows(300, seed=1, status=503), bad)
    assert main(["monitor", "check", "--log", str(bad), "--policy", str(pol)]) == 1
    assert "BREACH" in capsys.readouterr().out
    assert main(["monitor", "check", "--log", str(tmp_path / "missing.jsonl")]) == 3
    assert main(["monitor", "check", "--log", "/dev/zero"]) == 3
    (tmp_path / "broken.toml").write_text("[drift]\nalpha = 2")
    assert main(["monitor", "check", "--log", str(log), "--policy", str(tmp_path / "broken.toml")]) == 2
    assert main(["monitor", "watch", "--log", str(log), "--registry", str(tmp_path / "r.sqlite"), "--every",
                 "nan", "--once"]) == 2
    capsys.readouterr()
    assert main(["monitor", "rules", "--prometheus", "--policy", str(pol)]) == 0
    out = capsys.readouterr().out
    assert "alert: VoxproofMonitorCanaryWer" in out and 'voxproof_monitor_rule_low{rule="canary-wer"}' in out
    html = tmp_path / "m.html"
    rows = make_rows(300, seed=1) + make_rows(300, seed=8, start=1300.0, bandwidth=3400.0, codec="mulaw", snr=10.0)
    write_jsonl(rows, log)
    assert main(["monitor", "report", "--log", str(log), "--profile", str(prof), "--policy", str(pol),
                 "-o", str(html)]) == 0
    text = html.read_text()
    assert "<svg" in text and "bandwidth_hz" in text and "drift" in text
    assert "src='http" not in text and 'src="http' not in text and "<link" not in text  # self-contained
    assert main(["monitor", "analyze", "--log", str(log), "--profile", str(prof), "--policy", str(pol)]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.strip()[:1].isdigit()]
    statuses = [line.split()[2] for line in lines]
    assert statuses[:3] == ["ok", "ok", "ok"] and statuses[3:6] == ["drift", "drift", "drift"]
