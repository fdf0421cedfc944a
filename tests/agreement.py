"""Agreement of two posterior fits of the same model, within Monte Carlo error."""

from __future__ import annotations

import numpy as np
from scipy import stats

import multilevel as ml


def assert_agree(a: ml.Fit, b: ml.Fit, group_effects: bool = True) -> None:
    """Every posterior mean and sd (group effects included) of two fits of the same model
    differ by less than z combined Monte Carlo standard errors, and both fits have
    R-hat <= 1.01 on every parameter.

    z is 4, or the Bonferroni bound that keeps the chance of a false alarm over
    all m parameters at 1% (``z = Φ⁻¹(1 - 0.005/m)``: 4.6 for 1,400 tree effects)
    when that is larger.
    """
    sa, sb = a.summary(group_effects=group_effects), b.summary(group_effects=group_effects)
    assert list(sa.index) == list(sb.index)
    assert sb["r_hat"].max() <= 1.01 and sa["r_hat"].max() <= 1.01
    z = max(4.0, stats.norm.isf(0.005 / len(sa)))
    bound = z * np.sqrt(sa["mcse_mean"] ** 2 + sb["mcse_mean"] ** 2)
    gap = (sa["mean"] - sb["mean"]).abs()
    assert (gap <= bound).all(), f"means differ beyond {z:.1f} MCSE:\n{(gap / bound)[gap > bound]}"
    sd_bound = z * np.sqrt(sa["mcse_sd"] ** 2 + sb["mcse_sd"] ** 2)
    sd_gap = (sa["sd"] - sb["sd"]).abs()
    assert (sd_gap <= sd_bound).all(), f"sds differ beyond {z:.1f} MCSE:\n{(sd_gap / sd_bound)[sd_gap > sd_bound]}"
