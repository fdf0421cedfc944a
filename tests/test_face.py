"""The Duke Forest FACE workflow (issue: Gibbs sampling as in JAGS), on the real data.

With the vague priors of the JAGS analysis (``ml.datasets.face_priors``):

* the Gibbs fit of the fixed-effects model matches the exact posterior (Student-t
  around OLS for the coefficients, the Gamma law of the precision for sigma);
* the Gibbs fit of the random-effects model converges (on every fixed effect,
  sigma and sd: bulk ESS >= 200 and R-hat within the limit for its ESS of
  ``agreement.rhat_limit``) and agrees with the collapsed sampler within Monte
  Carlo error on every parameter, tree effects included (``agreement.assert_agree``);
* DIC ranks the random-effects model far ahead of the fixed-effects one, and
  the comparison table works for DIC, WAIC and LOO;
* ``multilevel demo --example face`` runs the same steps on simulated data and
  writes the plots.

The real-data fits take minutes: they are in the slow tier (``make test-slow``);
tests/test_gibbs.py and tests/test_criteria.py check the same properties on
simulated FACE-like data in the default run.
"""

from __future__ import annotations

import warnings

import pytest

import multilevel as ml
from agreement import assert_agree, assert_converged
from conftest import read_shared
from multilevel.cli import main
from multilevel.design import build_design
from test_gibbs import assert_matches_exact, exact_regression_posterior

MODELS = ml.datasets.FACE_MODELS


@pytest.fixture(scope="module")
def face():
    return read_shared("dataTreeFACE.csv").rename(columns={"tindex": "tree"})


def quiet_fit(formula, data, **kwargs) -> ml.Fit:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ml.fit(formula, data, progress=False, **kwargs)


@pytest.fixture(scope="module")
def fits(face):
    return {name: quiet_fit(formula, face, priors=ml.datasets.face_priors(name), sampler="gibbs", chains=4,
                            draws=1200, warmup=300, seed=1)
            for name, formula in MODELS.items()}


@pytest.mark.slow
def test_fixed_effects_gibbs_fit_is_the_exact_posterior(fits, face):
    design = build_design(ml.parse_formula(MODELS["fixed"]), face)
    mean, sd, sigma_mean = exact_regression_posterior(design.X, design.y, 0.001, 0.001)
    table = fits["fixed"].summary()
    assert_converged(table, chains=4, ess_min=1000)
    assert_matches_exact(table, list(design.columns), mean, sd, sigma_mean)


@pytest.mark.slow
def test_random_effects_gibbs_fit_converges_and_agrees_with_the_collapsed_sampler(fits, face):
    gibbs = fits["random"]
    assert_converged(gibbs.summary(group_effects=False), chains=4, ess_min=200)
    collapsed = quiet_fit(MODELS["random"], face, priors=ml.datasets.face_priors("random"),
                          sampler="collapsed", chains=4, draws=1000, seed=2)
    assert_agree(gibbs, collapsed)


@pytest.mark.slow
def test_dic_ranks_random_effects_far_ahead_and_compare_works(fits):
    dic = {name: fit.dic() for name, fit in fits.items()}
    assert dic["random"].dic < dic["fixed"].dic - 1000
    for d in dic.values():
        assert d.dic == pytest.approx(d.d_hat + 2 * d.p_d) and d.p_d > 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for ic in ("dic", "waic", "loo"):
            table = ml.compare(fits, ic=ic)
            assert table.index[-1] == "fixed" and list(table["rank"]) == [0, 1, 2]


def test_face_demo_runs_the_workflow_and_writes_the_plots(tmp_path, capsys):
    code = main(["demo", "--example", "face", "--chains", "2", "--draws", "150", "--warmup", "100",
                 "--plots", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Model comparison by DIC" in out and "Time-series SE" in out
    for name in MODELS:
        assert (tmp_path / name / "lines.png").stat().st_size > 10_000
        assert (tmp_path / name / "trace.png").exists() and (tmp_path / name / "ppc.png").exists()
    assert (tmp_path / "random" / "effects.png").exists()
