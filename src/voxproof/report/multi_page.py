"""The HTML page comparing N runs (``voxproof compare RUN_A RUN_B RUN_C ...``): one table of WER, rank
interval and P(best) per system, the omnibus tests, and the Holm-corrected pairwise comparisons."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from voxproof.report.html import Page, esc, fmt_interval, fmt_num, fmt_pct, json_block, paragraph, table


def _rank_text(r: dict[str, Any]) -> str:
    if r.get("rank_low") is None:
        return fmt_num(r["rank"], "g") + " (no resample)"
    return f"{r['rank']:g} [{r['rank_low']:g}, {r['rank_high']:g}]"


def _p(x: float | None, why: str) -> str:
    return fmt_num(x, ".3g", why) if x is None or x >= 0.001 else "<0.001"


def condition_tables(c: dict[str, Any], level: int) -> str:
    ranking = table(["system", "WER", f"rank [{level}% interval]", "mean rank", "P(best)"], [
        [esc(r["system"]), (fmt_pct(r["wer"]), r["wer"] or 0), esc(_rank_text(r)), fmt_num(r["mean_rank"], ".2f"),
         fmt_num(r["p_best"], ".3f", "no resample")] for r in c["ranking"]], numeric=(1, 3, 4))
    omnibus = table(["test", "statistic", "p", "method", "blocks"], [
        [t["name"], fmt_num(t["statistic"], ".4g", t.get("reason") or "not computable"),
         _p(t["p_value"], t.get("reason") or "not computable"), t["method"], t["blocks"]] for t in c["omnibus"]],
        numeric=(4,), sortable=False)
    rows = []
    for p in c["pairwise"]:
        comp = p["comparison"]
        rows.append([esc(p["a"]), esc(p["b"]), esc(fmt_interval(comp["difference"])),
                     fmt_num(comp["prob_b_better"], ".3f", "no resample")]
                    + [f"{_p(t['p_value'], 'n/a')} → {_p(p['holm_p'].get(t['name']), 'n/a')}" for t in comp["tests"]])
    names = [t["name"] for t in c["pairwise"][0]["comparison"]["tests"]] if c["pairwise"] else []
    pairwise = table(["A", "B", "B − A (paired)", "P(B better)"] + [f"{n} p → Holm" for n in names], rows)
    warn = "".join(paragraph("Warning: " + w, "muted") for w in c["warnings"])
    return (f"<h3>Ranking</h3>{ranking}<h3>Omnibus tests (all systems equal?)</h3>{omnibus}"
            f"<h3>Pairwise (p-values raw → Holm-corrected over {len(rows)} pairs)</h3>{pairwise}{warn}")


def render_multi_page(data: dict[str, Any], runs: list[str | Path], level: float) -> str:
    norm = data["normalizer"]
    page = Page(f"voxproof compare: {len(data['systems'])} systems",
                f"normaliser {norm.get('name')}@{norm.get('version')} · "
                + ("only utterances every run shares (--intersect)" if data.get("intersect") else "every utterance"))
    page.add("Systems", table(["system", "run"], [[esc(s), esc(str(r))] for s, r in zip(data["systems"], runs)],
                              sortable=False), "systems")
    for c in data["conditions"]:
        page.add(f"Condition {c['condition']}: {c['utterances']} utterances, {c['ref_words']} words",
                 paragraph("Rank 1 = lowest corpus WER; the rank interval and P(best) come from a joint bootstrap "
                           "of all systems on the same " + ("speakers" if c["blocked_by"] else "utterances") + ".")
                 + condition_tables(c, round(100 * level)), f"cond-{c['condition']}")
    page.add("Data", json_block(data), "data")
    return page.render()
