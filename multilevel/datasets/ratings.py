"""A simulated product-ratings study with the structure of the cheese data.

Boatwright, McCulloch & Rossi (1999) had 4 cheeses (A–D) rated twice by each of
20 raters, 10 rural and 10 urban: 160 ratings around 70 with sd about 12.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Mean rating of each product, and the urban-minus-rural shift, as in the real study.
PRODUCT_MEANS = {"A": 74.8, "B": 56.6, "C": 79.6, "D": 72.3}
BACKGROUND_SHIFT = 7.4


def simulate_ratings(seed: int = 0, raters_per_background: int = 10, replicates: int = 2) -> pd.DataFrame:
    """Simulate ratings of 4 products by raters from 2 backgrounds.

    ``y = mu_product + shift_background + u_rater + e``, with ``shift`` ±3.7
    (urban above rural), rater effects ``u ~ N(0, 4)`` and noise ``e ~ N(0, 8)``,
    rounded to whole numbers.

    Returns
    -------
    pandas.DataFrame
        Columns ``cheese`` (A–D), ``rater`` (1..raters_per_background within each
        background), ``background`` (rural/urban), ``y``, and the indicator
        columns ``cheese_A`` ... ``cheese_D`` (1.0 where the row's product is that one).
    """
    rng = np.random.default_rng(seed)
    rows = []
    for background, shift in (("rural", -BACKGROUND_SHIFT / 2), ("urban", BACKGROUND_SHIFT / 2)):
        for rater in range(1, raters_per_background + 1):
            rater_effect = rng.normal(0.0, 4.0)
            for cheese, mean in PRODUCT_MEANS.items():
                for _ in range(replicates):
                    y = mean + shift + rater_effect + rng.normal(0.0, 8.0)
                    rows.append((cheese, rater, background, float(np.round(y))))
    data = pd.DataFrame(rows, columns=["cheese", "rater", "background", "y"])
    for cheese in PRODUCT_MEANS:
        data[f"cheese_{cheese}"] = (data["cheese"] == cheese).astype(float)
    return data


_CHEESES = "cheese_A + cheese_B + cheese_C + cheese_D"

#: The four models of the cheese analysis: number -> (title, formula).
CHEESE_MODELS = {
    1: ("varying intercept", f"y ~ 1 + {_CHEESES} + (1 | background)"),
    2: ("varying slopes", f"y ~ 1 + (0 + {_CHEESES} || background)"),
    3: ("varying intercept and slopes", f"y ~ 1 + (1 + {_CHEESES} || background)"),
    4: ("correlated varying intercept and slopes", f"y ~ 1 + {_CHEESES} + (1 + {_CHEESES} | background)"),
}


def cheese_priors(data: pd.DataFrame, model: int) -> dict:
    """Priors of cheese model 1–4: with ``ȳ``, ``s_y`` the mean and sd of y,
    Intercept ~ Normal(ȳ, 2.5 s_y), product coefficients ~ Normal(0, 2) (models
    1 and 4), sigma ~ Exponential(rate = 1/s_y), sds ~ HalfCauchy(2) and the
    correlations ~ LKJ(2) (model 4).
    """
    from ..model.priors import LKJ, Exponential, HalfCauchy, Normal

    ybar, s_y = float(data["y"].mean()), float(data["y"].std())
    priors = {"Intercept": Normal(ybar, 2.5 * s_y), "sigma": Exponential(1.0 / s_y), "sd": HalfCauchy(2.0)}
    if model in (1, 4):
        priors["b"] = Normal(0.0, 2.0)
    if model == 4:
        priors["cor"] = LKJ(2.0)
    return priors
