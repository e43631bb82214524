"""Simulated listeners, to test the scoring of listening tests (never a substitute for people: every
file they write says ``"simulated": true`` and the scored result says so in its warnings).

Generative model (all draws from one seeded generator):

- each system ``s`` has a true quality ``q[s]`` on the 1-5 scale (given by the caller);
- each clip ``c`` has an effect ``e[c] ~ N(0, clip_sd)`` shared by every listener (some sentences
  come out worse);
- each listener ``l`` has a bias ``b[l] ~ N(0, bias_sd)`` (harsh or lenient) and a noise level
  ``sd[l] ~ U(noise_low, noise_high)``;
- ACR rating: ``round(q[s] + e[c] + b[l] + N(0, sd[l]))`` clipped to 1..5;
- A/B choice of clips ``x`` vs ``y``: ``x`` with probability ``logistic((q[x] + e[x] - q[y] - e[y]) / ab_scale)``;
- attention checks are answered as instructed, except with probability ``lapse`` (a slip);
- a *careless* listener (``careless=True``) gives the same rating to every clip, answers A/B at
  random and ignores the written instructions: screening must drop them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from voxproof.listen.answers import answers_dict
from voxproof.listen.design import Design


@dataclass(frozen=True)
class ListenerModel:
    clip_sd: float = 0.3
    bias_sd: float = 0.3
    noise_low: float = 0.4
    noise_high: float = 0.8
    ab_scale: float = 0.5
    lapse: float = 0.02


def simulate_listeners(design: Design, quality: dict[str, float], n: int = 5, *, careless: int = 0,
                       seed: int = 0, model: ListenerModel = ListenerModel()) -> list[dict[str, Any]]:
    """``n`` answer files (dicts); the last ``careless`` listeners are careless. ``quality`` maps every
    system of the design (including ``hidden-reference`` when present) to its true 1-5 quality."""
    missing = sorted({c.system for c in design.clips} - set(quality))
    if missing:
        raise ValueError(f"no true quality for {missing}")
    rng = np.random.default_rng(seed)
    effect = rng.normal(0.0, model.clip_sd, len(design.clips))
    out = []
    for k in range(n):
        bias = rng.normal(0.0, model.bias_sd)
        sd = rng.uniform(model.noise_low, model.noise_high)
        lazy = k >= n - careless
        lazy_rating = int(rng.integers(3, 5))
        ratings: dict[str, int] = {}
        choices: dict[str, str] = {}
        for it in design.items:
            slip = rng.random() < model.lapse
            if it.kind == "acr-check":
                ratings[it.id] = lazy_rating if lazy else (int(rng.integers(2, 6)) if slip else 1)
            elif it.kind == "ab-check":
                other = "B" if it.expected == "A" else "A"
                choices[it.id] = str(rng.choice(["A", "B"])) if lazy else (other if slip else str(it.expected))
            elif it.kind == "acr":
                c = it.clips[0]
                true = quality[design.clips[c].system] + effect[c]
                ratings[it.id] = lazy_rating if lazy else int(np.clip(np.rint(true + bias + rng.normal(0, sd)), 1, 5))
            else:
                x, y = it.clips
                d = quality[design.clips[x].system] + effect[x] - quality[design.clips[y].system] - effect[y]
                p = 0.5 if lazy else 1 / (1 + np.exp(-d / model.ab_scale))
                choices[it.id] = "A" if rng.random() < p else "B"
        label = f"sim-{'careless' if lazy else 'listener'}-{k + 1}"
        out.append(answers_dict(label, design, ratings, choices, simulated=True,
                                note="SIMULATED listener (voxproof.listen.simulate), not a person"))
    return out
