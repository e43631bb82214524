"""Terminal progress output: the status line overwrites itself, is cleared at the end, and is silent
when disabled (not a terminal, or CI)."""

from __future__ import annotations

from voxproof.cli.progress import StatusLine


def test_status_line_overwrites_and_clears(capsys):
    status = StatusLine("audit", enabled=True)
    status("analysing a long stage name")
    status("short")
    status.close()
    err = capsys.readouterr().err
    assert err.startswith("\raudit: analysing a long stage name\raudit: short")
    # the shorter message is padded over the longer one, and the line is blanked at the end
    longest = len("audit: analysing a long stage name")
    assert "\raudit: short" + " " * (longest - len("audit: short")) in err
    assert err.endswith("\r" + " " * longest + "\r")


def test_status_line_is_silent_when_disabled(capsys, monkeypatch):
    monkeypatch.setenv("CI", "true")
    status = StatusLine("audit")
    status("anything")
    status.close()
    assert capsys.readouterr().err == ""
