"""Every way of reading a fit works the same on the fit read back by ``ml.load``, and a
bad argument raises the library's DataError naming it.

The fit is built from draws the test chose (``known_fits``: no sampler runs), saved
and loaded; each reading of the loaded fit must equal the same reading of the fit in
memory exactly (the file holds the same draws and the same formula, encoders and
layout). Refitting readings (``kfold``, ``update``) are run on a loaded fit by the
README test of the cheese analysis.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import multilevel as ml
from known_fits import known_fit

pytestmark = pytest.mark.unit


def ratings(seed: int = 0, rows: int = 80) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"x": rng.normal(size=rows), "f": rng.choice(["a", "b", "c"], rows),
                          "g": rng.choice(["g1", "g2", "g3", "g4"], rows)})
    frame["y"] = 1 + 0.5 * frame["x"] + (frame["f"] == "b") + rng.normal(size=rows)
    return frame


@pytest.fixture(scope="module")
def fits(tmp_path_factory) -> tuple[ml.Fit, ml.Fit]:
    fit = known_fit("y ~ x + f + (1 + x | g)", ratings(), means={"x": 0.5})
    return fit, ml.load(fit.save(tmp_path_factory.mktemp("fits") / "fit.nc"))


READINGS = {
    "summary": lambda fit: fit.summary(),
    "fixef": lambda fit: fit.fixef(),
    "ranef": lambda fit: fit.ranef(),
    "coef": lambda fit: fit.coef(summary=False),
    "varcorr": lambda fit: fit.varcorr(),
    "predict population": lambda fit: fit.predict(ratings(1).head(5), re_formula="~ 0"),
    "predict one term": lambda fit: fit.predict(ratings(1).head(5), re_formula="~ (1 | g)", new_groups="error"),
    "conditional_effects": lambda fit: fit.conditional_effects("x:f", resolution=5).data,
    "conditional_effects per level": lambda fit: fit.conditional_effects(
        "x", conditions={"g": ["g1", "g3"]}, re_formula=None, resolution=5).data,
    "datagrid": lambda fit: fit.datagrid(x=[0, 1], f=["a", "c"]),
    "predictions": lambda fit: fit.predictions(by="f"),
    "comparisons": lambda fit: fit.comparisons({"f": "pairwise", "x": 2}),
    "slopes": lambda fit: fit.slopes("x", by="f"),
    "hypothesis": lambda fit: fit.hypothesis(["x > 0", "f[b] = f[c]"]),
    "hypothesis per level": lambda fit: fit.hypothesis("x > 0.5", scope="coef", group="g"),
    "r2": lambda fit: fit.r2(),
    "loo_r2": lambda fit: fit.r2(loo=True),
    "loo": lambda fit: fit.loo().pareto_k.to_series(),
}


@pytest.mark.filterwarnings("ignore:.*Pareto")     # the draws are not a posterior of these rows
@pytest.mark.parametrize("reading", READINGS)
def test_the_loaded_fit_reads_as_the_fit_in_memory(fits, reading):
    memory, loaded = (READINGS[reading](fit) for fit in fits)
    if isinstance(memory, pd.Series):
        pd.testing.assert_series_equal(loaded, memory)
    else:
        pd.testing.assert_frame_equal(loaded, memory)


@pytest.mark.filterwarnings("ignore:.*Pareto")
def test_the_loaded_fit_draws_every_check_and_display(fits):
    _, loaded = fits
    for options in ({"kind": "density", "num_draws": 5}, {"kind": "stat", "stat": "max"},
                    {"kind": "stat", "group": "f"}, {"kind": "loo_pit"}):
        figure = loaded.plot_ppc(**options)
        assert figure.axes and figure.axes[0].has_data(), options
    assert loaded.plot_trace(["x"]).axes and loaded.plot_effects().axes
    assert "Population-level effects" in repr(loaded) and "<table" in loaded._repr_html_()


BAD_ARGUMENTS = [
    (lambda fit: fit.fixef(prob=1.5), "prob"),
    (lambda fit: fit.predict(ratings().head(2), kind="median"), "kind must be one of"),
    (lambda fit: fit.predict(ratings().head(2), re_formula="~ (1 | h)"), "h"),
    (lambda fit: fit.conditional_effects("z"), "effect 'z'"),
    (lambda fit: fit.conditional_effects("x", conditions={"q": [1, 2]}), "conditions name 'q'"),
    (lambda fit: fit.datagrid(z=[1]), "'z' is not a column of the formula"),
    (lambda fit: fit.comparisons("z"), "'z' is not a predictor"),
    (lambda fit: fit.slopes("f"), "'f' is not a numeric predictor"),
    (lambda fit: fit.hypothesis("z > 0"), "no parameter named 'z'"),
    (lambda fit: fit.hypothesis("x > 0", scope="coef", group="f"), "group= must be one of 'g', got 'f'"),
    (lambda fit: fit.r2(prob=0), "prob"),
    (lambda fit: fit.plot_ppc(kind="violin"), "kind must be one of"),
    (lambda fit: fit.plot_ppc(kind="stat", stat="skew"), "stat must be one of"),
    (lambda fit: fit.plot_ppc(group="z"), "group='z' is not a column"),
    (lambda fit: fit.plot_effects(group="f"), "group='f' is not a grouping factor"),
    (lambda fit: fit.kfold(ratings(), K=1), "K"),
]


@pytest.mark.parametrize("call, named", BAD_ARGUMENTS, ids=[named for _, named in BAD_ARGUMENTS])
def test_a_bad_argument_to_the_loaded_fit_is_a_data_error_naming_it(fits, call, named):
    with pytest.raises(ml.DataError, match=named.replace("(", r"\(").replace("|", r"\|")):
        call(fits[1])


def test_each_diagnostic_is_computed_once_per_fit_and_read_by_every_table(monkeypatch):
    from multilevel.results import summary
    from multilevel.results.diagnostics import diagnostics

    computed = []
    monkeypatch.setattr(summary, "diagnostics", lambda values, columns: computed.append(columns)
                        or diagnostics(values, columns))
    fit = known_fit("y ~ x + f + (1 + x | g)", ratings(), means={"x": 0.5})
    fit.diagnostics(), fit.diagnostics()
    assert computed == [("r_hat", "ess_bulk")]       # the check: its two columns, once
    table = fit.summary()
    fit.summary(prob=0.9), fit.summary(group_effects=False), fit.summary(style="coda"), repr(fit)
    assert computed == [("r_hat", "ess_bulk"), ("mcse_mean", "mcse_sd", "ess_tail")]
    values, _ = summary.stacked_draws(fit._posterior, fit.info.layout, group_effects=True)
    for name, column in diagnostics(values).items():
        np.testing.assert_array_equal(table[name].to_numpy(), column)
