"""``vlaeval power``: how many episodes detect a given change in success rate.

- Independent runs (default): two-sided two-proportion z-test on Cohen's
  ``h = 2·asin(√p1) − 2·asin(√p2)``, solved with statsmodels
  ``NormalIndPower().solve_power(effect_size=|h|, alpha, power, ratio=1)``; the answer is
  episodes per model.
- Paired runs (``--paired``; same init states and seeds, as ``vlaeval compare`` matches
  them): the normal approximation to McNemar's test (Connor 1987),
  ``n = (z_{1−α/2}·√ψ + z_{power}·√(ψ − δ²))² / δ²`` pairs, where ``δ = p1 − p2`` and ``ψ``
  is the probability that a pair is discordant. Unless ``discordant`` is given, ``ψ``
  assumes outcomes independent within a pair, ``ψ = p1(1−p2) + p2(1−p1)``; positively
  correlated pairs (the usual case) discord less, so this is conservative.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from scipy import stats as sps


@dataclass(frozen=True)
class PowerResult:
    design: str
    method: str
    baseline: float
    alternative: float
    effect: float
    alpha: float
    power: float
    discordant: float | None
    episodes_per_model: int

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def episodes_needed(effect: float, baseline: float, alpha: float = 0.05, power: float = 0.8, paired: bool = False,
                    discordant: float | None = None) -> PowerResult:
    """Episodes per model to detect a change of ``effect`` from ``baseline`` (a drop when possible)."""
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    _check(effect, baseline, alpha, power)
    p1 = baseline
    p2 = baseline - effect if baseline - effect > 0 else baseline + effect
    if not 0 < p2 < 1:
        raise ValueError(f"baseline {baseline} ± effect {effect} leaves (0, 1)")
    if not paired:
        h = abs(float(proportion_effectsize(p1, p2)))
        n = NormalIndPower().solve_power(effect_size=h, alpha=alpha, power=power, ratio=1.0, alternative="two-sided")
        return PowerResult("independent", "two-proportion z-test, Cohen's h (statsmodels NormalIndPower)",
                           p1, p2, effect, alpha, power, None, math.ceil(float(n) - 1e-9))
    psi = p1 * (1 - p2) + p2 * (1 - p1) if discordant is None else discordant
    if not effect**2 < psi <= 1:
        raise ValueError(f"--discordant must be in ({effect**2:g}, 1] for effect {effect}")
    z_alpha, z_power = sps.norm.ppf(1 - alpha / 2), sps.norm.ppf(power)
    n = (z_alpha * math.sqrt(psi) + z_power * math.sqrt(psi - effect**2)) ** 2 / effect**2
    return PowerResult("paired", "McNemar normal approximation (Connor 1987)", p1, p2, effect, alpha, power,
                       psi, math.ceil(n - 1e-9))


def _check(effect: float, baseline: float, alpha: float, power: float) -> None:
    if not 0 < baseline < 1:
        raise ValueError("--baseline must be in (0, 1)")
    if not 0 < effect < 1:
        raise ValueError("--effect must be in (0, 1)")
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError("--alpha and --power must be in (0, 1)")
