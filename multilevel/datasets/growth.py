"""A simulated tree-growth study with the structure of the Duke Forest FACE data.

The real study (Clark's FACE data, 6814 yearly records of 696 trees in 6 rings)
measured each tree's diameter growth over up to 11 years; rings 2–4 had
elevated CO2, and half of the trees were fertilised with nitrogen from year 9.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..model.priors import GammaPrecision, Normal

#: Trees per ring in the real study; rings 2, 3 and 4 had elevated CO2.
TREES_PER_RING = (105, 74, 122, 121, 107, 167)
ELEVATED_RINGS = (2, 3, 4)
#: Population coefficients of log growth on (1, diam, trt, diam:trt).
COEFFICIENTS = (-3.0, 0.08, 0.6, -0.025)
#: sds of the tree intercepts and diameter slopes, and of the yearly noise.
TREE_SD = (0.5, 0.02)
SIGMA = 0.3
NFERT_EFFECT = 0.15


def simulate_growth(seed: int = 0, num_years: int = 11) -> pd.DataFrame:
    """Simulate yearly diameter growth of 696 trees.

    For tree k in year t with diameter d (cm), ``log(dnow) = β₀ + β₁ d + β₂ trt + β₃ d·trt
    + 0.15 nfert + a_k + s_k d + e`` with β = (-3, 0.08, 0.6, -0.025), ``a_k ~ N(0, 0.5)``,
    ``s_k ~ N(0, 0.02)`` and ``e ~ N(0, 0.3)``. Diameters start around 15 cm (sd 6) and
    grow 0.1–0.6 cm a year. About 45% of the trees enter the record late (3–10
    years recorded), as in the real data.

    Returns
    -------
    pandas.DataFrame
        Columns ``tree`` (1–696), ``j`` (ring 1–6), ``i`` (tree within ring), ``t``
        (year), ``diam`` (cm), ``dnow`` (growth, cm/yr), ``trt`` (1 = elevated CO2),
        ``nfert`` (1 = fertilised, from year 9 for half of the trees).
    """
    rng = np.random.default_rng(seed)
    b0, b1, b2, b3 = COEFFICIENTS
    rows, tree = [], 0
    for ring, count in enumerate(TREES_PER_RING, start=1):
        trt = int(ring in ELEVATED_RINGS)
        for i in range(1, count + 1):
            tree += 1
            a, s = rng.normal(0.0, TREE_SD[0]), rng.normal(0.0, TREE_SD[1])
            fertilised = rng.random() < 0.5
            years = num_years if rng.random() < 0.55 else int(rng.integers(3, num_years))
            diam = float(np.clip(rng.normal(15.0, 6.0), 2.5, None))
            for t in range(num_years - years + 1, num_years + 1):
                nfert = int(fertilised and t >= 9)
                mean = b0 + b1 * diam + b2 * trt + b3 * diam * trt + NFERT_EFFECT * nfert + a + s * diam
                dnow = float(np.exp(mean + rng.normal(0.0, SIGMA)))
                rows.append((tree, ring, i, t, diam, dnow, trt, nfert))
                diam += rng.uniform(0.1, 0.6)
    return pd.DataFrame(rows, columns=["tree", "j", "i", "t", "diam", "dnow", "trt", "nfert"])


#: The models of the FACE analysis: fixed effects only, random intercept and diameter
#: slope per tree, and the same with nitrogen fertilisation added.
FACE_MODELS = {
    "fixed": "log(dnow) ~ diam*trt",
    "random": "log(dnow) ~ diam*trt + (1 + diam || tree)",
    "nfert": "log(dnow) ~ diam*trt + nfert + (1 + diam || tree)",
}


def face_priors(model: str = "random") -> dict:
    """The vague priors of the JAGS analysis for one of :data:`FACE_MODELS`: every
    coefficient Normal(0, sd 1000), and the residual and (but for the fixed-effects
    model) each tree-level precision Gamma(0.001, 0.001)."""
    priors = {"Intercept": Normal(0, 1000), "b": Normal(0, 1000), "sigma": GammaPrecision(0.001, 0.001)}
    return priors if model == "fixed" else {**priors, "sd": GammaPrecision(0.001, 0.001)}
