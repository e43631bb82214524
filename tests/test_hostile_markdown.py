"""Issue 21 item 8: names and notes from data cannot forge structure in the model card or the datasheet.

The Markdown is rendered with markdown-it-py in its GitHub-like preset (tables, strikethrough,
autolinks), as a code-hosting site would, and the HTML is checked: the number of sections is the
card's own, no image, no link, no raw HTML, and the hostile text is still shown as text.
"""

from __future__ import annotations

import json
import re

import pytest
from test_gate_rules import drop_words, make_run
from test_hostile_gate import bundled_utterances

from voxproof.cli.main import main
from voxproof.markdown import md_code, md_text

markdown_it = pytest.importorskip("markdown_it")

FORGED_SECTION = "evil\n\n## Gate history\n\n| 9 | v2 | v1 | pass | - | PASSED |\n"
IMAGE = "![x](http://evil/a.png)"
HOSTILE = [
    FORGED_SECTION,
    IMAGE,
    "[click](https://evil.example/login) <https://evil.example> www.evil.example mail@evil.example",
    "<img src=x onerror=alert(1)> <script>alert(1)</script> <!-- hidden -->",
    "**bold** _it_ ~~gone~~ `code` $x^2$ \\ | a | b |",
    "1. not a list\n- nor this\n> nor a quote\n=====",
    "bidi \u202egnp.exe\u202c zero\u200bwidth bell\x07 nul\x00 esc\x1b[31m",
]


def render(text: str) -> str:
    return markdown_it.MarkdownIt("gfm-like").render(text)


def structure(html: str) -> dict[str, int]:
    return {tag: len(re.findall(rf"<{tag}[\s>]", html)) for tag in ("h1", "h2", "h3", "img", "a", "table", "tr",
                                                                      "li", "blockquote", "script", "code", "em",
                                                                      "strong", "s")}


@pytest.mark.parametrize("hostile", HOSTILE)
def test_md_text_renders_as_the_same_text_and_nothing_else(hostile):
    html = render(f"before {md_text(hostile)} after")
    assert structure(html) == structure("<p>x</p>") and html.startswith("<p>before ") and html.count("<p>") == 1
    assert "<img" not in html and "<a " not in html and "<script" not in html and "<!--" not in html
    shown = re.sub(r"<[^>]+>", "", html).strip()
    for word in re.findall(r"[a-z]{4,}", hostile):  # the words are still shown, as text
        if word not in ("gnp", "width", "zero"):
            assert word in shown.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"), word
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u200b]", md_text(hostile))


@pytest.mark.parametrize("hostile", HOSTILE + ["``tick`` ` x"])
def test_md_code_cannot_be_closed_early(hostile):
    html = render(f"| a | b |\n|---|---|\n| {md_code(hostile, in_table=True)} | z |")
    assert html.count("<code>") == 1 and html.count("<td>") == 2 and "<img" not in html and "<a " not in html


def test_model_card_from_hostile_registry_data(tmp_path, capsys, monkeypatch):
    """A speaker name, notes, an actor and a reason carrying a forged section, an image and links."""
    monkeypatch.setenv("VOXPROOF_REGISTRY", str(tmp_path / "reg.sqlite"))
    utts = [(uid, text, (FORGED_SECTION + IMAGE) if i % 2 else spk, g, d)
            for i, (uid, text, spk, g, d) in enumerate(bundled_utterances()[:12])]
    run = make_run(tmp_path / "run", utts, lambda u, c: drop_words(u[1], 1))
    assert main(["registry", "--user", "mallory\n## Gate history", "register", "v1", "--from-run", str(run),
                 "--notes", f"intended use\n\n# Model card: trusted\n{IMAGE}"]) == 0
    assert main(["registry", "--user", "ci", "promote", "v1", "--reason", f"ok\n## Gate history\n{IMAGE}"]) == 0
    assert main(["card", "v1", "-o", str(tmp_path / "card.md")]) == 0
    capsys.readouterr()
    card = (tmp_path / "card.md").read_text()
    html = render(card)
    sections = re.findall(r"<h2>(.*?)</h2>", html)
    assert sections == ["Model details", "Intended use", "Data", "Metrics", "Slices", "Robustness", "Calibration",
                        "Latency and cost", "Known failure modes", "Governance (NIST AI RMF)", "Gate history",
                        "Registry history"]
    assert re.findall(r"<h1>(.*?)</h1>", html) == ["Model card: v1"]
    assert "<img" not in html and "<a " not in html and "http://evil" not in html
    assert "No data: no gate verdict involves this version." in card  # the forged gate row did not land
    # the hostile speaker is still reported, on one line, as text
    slice_rows = [line for line in card.splitlines() if line.startswith("| #1 | speaker |")]
    assert any("evil \\#\\# Gate history" in row and "\\!\\[x\\](http\\[:\\]//evil/a.png)" in row for row in slice_rows)
    for table in re.findall(r"<table>.*?</table>", html, flags=re.S):
        rows = re.findall(r"<tr>(.*?)</tr>", table, flags=re.S)
        widths = {len(re.findall(r"<t[hd][\s>]", r)) for r in rows}
        assert len(widths) == 1, widths  # no cell was added by a | in the data


def test_datasheet_from_hostile_tags(tmp_path, capsys):
    from voxproof.manifest.bundled import bundled_dataset_path

    d = bundled_dataset_path()
    texts = dict(line.split("\t", 1) for line in (d / "transcripts.tsv").read_text().splitlines())
    rows = [{"id": uid, "audio": str(d / "audio" / f"{uid}.flac"), "text": texts[uid], "speaker": FORGED_SECTION,
             "tags": {"licence": f"CC BY 4.0 {IMAGE}", "source": f"corpus\n## Licences\n{IMAGE}",
                      f"tag\n# {IMAGE}": "v"}}
            for uid in sorted(texts)[:2]]
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code = main(["audit", str(data), "-o", str(tmp_path / "out"), "--vad", "energy", "--workers", "1"])
    assert code in (0, 1), capsys.readouterr().err
    sheet = (tmp_path / "out" / "datasheet.md").read_text()
    html = render(sheet)
    assert re.findall(r"<h2>(.*?)</h2>", html) == ["Composition", "Collection", "Quality", "Known issues",
                                                     "Licences"]
    assert len(re.findall(r"<h1>", html)) == 1 and "<img" not in html and "<a " not in html
    assert "corpus \\#\\# Licences \\!\\[x\\](http\\[:\\]//evil/a.png) (2 items)" in sheet
