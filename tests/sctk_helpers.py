"""Running NIST SCTK (Debian's ``sctk`` package) in tests and reading what ``sc_stats`` prints."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

SCTK = shutil.which("sctk")
SCLITE = SCTK and [SCTK, "sclite"]
SC_STATS = SCTK and [SCTK, "sc_stats"]


def sclite_sgml(ref_trn: Path, hyp_trn: Path, out_dir: Path, name: str) -> Path:
    """Score ``hyp_trn`` against ``ref_trn`` with sclite; the path of the SGML alignment it writes."""
    out_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run([*SCLITE, "-r", str(ref_trn), "trn", "-h", str(hyp_trn), "trn", "-i", "spu_id", "-o", "sgml",
                    "-O", str(out_dir), "-n", name], check=True, capture_output=True, timeout=120)
    return out_dir / f"{name}.sgml"


@dataclass(frozen=True)
class ScStats:
    """What sc_stats printed for one pair: MAPSSWE segments/totals/mean/sd/Z, sign-test counts, the
    Wilcoxon rank sums and Z, and the unified report's p-values (``None`` for ``<0.001``)."""

    segments: int
    totals: tuple[int, int, int]
    mean: float
    sd: float
    z_mapsswe: float
    sign_plus: int
    sign_minus: int
    sign_zero: int
    sign_p: float
    wilc_plus: tuple[int, float]
    wilc_minus: tuple[int, float]
    wilc_z: float
    p_unified: dict[str, float | None]


def run_sc_stats(sgml_a: Path, sgml_b: Path, work: Path) -> ScStats:
    """``sc_stats -t mapsswe sign wilc`` on two systems (A first), verbose and unified."""
    work.mkdir(parents=True, exist_ok=True)
    text = sgml_a.read_text() + sgml_b.read_text()
    for extra in ([], ["-u"]):
        subprocess.run([*SC_STATS, "-p", "-t", "mapsswe", "sign", "wilc", "-v", *extra, "-n",
                        str(work / ("uni" if extra else "out"))], input=text, text=True, check=True,
                       capture_output=True, timeout=120)
    mp = (work / "out.stats.mapsswe").read_text()
    sign = (work / "out.stats.sign").read_text()
    wilc = (work / "out.stats.wilc").read_text()
    uni = (work / "uni.stats.unified").read_text()
    res = re.search(r"\(# segs: (\d+)\).*\(mean: (\S+)\) \(std dev: (\S+)\) \(Z Stat: (\S+)\)", mp)
    totals = re.search(r"Totals\s+(\d+)\s+(\d+)\s+(\d+)", mp)
    p_unified: dict[str, float | None] = {}
    for abbrev in ("MP", "SI", "WI"):
        m = re.search(rf"\|\s+{abbrev}\s+\|\|[^|]*\|[^|]*\|\s+\S+\s+(<0\.001|[\d.]+)", uni)
        p_unified[abbrev] = None if m.group(1) == "<0.001" else float(m.group(1))
    return ScStats(
        segments=int(res.group(1)), totals=tuple(int(x) for x in totals.groups()), mean=float(res.group(2)),
        sd=float(res.group(3)), z_mapsswe=float(res.group(4)),
        sign_plus=int(re.search(r"N\(\+\) =\s*(\d+)", sign).group(1)),
        sign_minus=int(re.search(r"N\(-\) =\s*(\d+)", sign).group(1)),
        sign_zero=int(re.search(r"N\(0\) =\s*(\d+)", sign).group(1)),
        sign_p=float(re.search(r"it occurring is\s+([\d.]+)", sign).group(1)),
        wilc_plus=_rank_sum(wilc, "positive"), wilc_minus=_rank_sum(wilc, "negative"),
        wilc_z=float(re.search(r"The Z statistic =\s*(\S+),", wilc).group(1)),
        p_unified=p_unified,
    )


def _rank_sum(text: str, side: str) -> tuple[int, float]:
    m = re.search(rf"Sum of\s+(\d+) {side} ranks =\s*(\S+)", text)
    return int(m.group(1)), float(m.group(2))


def table_p(z: float) -> float:
    """The two-sided p sc_stats prints for a normal statistic: its table holds the normal CDF at steps
    of 0.01 and returns the entry at or below |z| (a reading of sc_stats' documented behaviour, used
    here only to check what it prints)."""
    grid = math.floor(round(abs(z) * 100, 6)) / 100
    return 1.0 - 2.0 * (0.5 * (1 + math.erf(grid / math.sqrt(2))) - 0.5)
