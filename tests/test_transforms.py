"""R's stateful basis transforms poly(), ns(), bs() (and scale/center): the columns R
gives on the fitting data, and on new data those of R's predict() with the fitting state."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import multilevel as ml
from multilevel.design.build import build_design
from multilevel.design.columns import Encoders
from multilevel.errors import DataError, FormulaError

#: R's ``women`` data set (datasets package): height (in) and weight (lb) of 15 women.
WOMEN = pd.DataFrame({"height": np.arange(58.0, 73.0),
                      "weight": [115, 117, 120, 123, 126, 129, 132, 135, 139, 142, 146, 150, 154, 159, 164.0]})


def design(formula, data, encoders=None):
    return build_design(ml.parse_formula(formula), data, encoders=encoders, with_response=encoders is None)


def columns(d, prefix):
    return d.X[:, [j for j, c in enumerate(d.columns) if c.startswith(prefix)]]


@pytest.fixture
def frame():
    rng = np.random.default_rng(3)
    return pd.DataFrame({"x": rng.uniform(0, 10, 40), "y": rng.normal(size=40)})


@pytest.mark.unit
def test_ns_gives_R_basis_itself_lm_coefficients_of_the_ns_help_page():
    # R: coef(lm(weight ~ ns(height, df = 5), data = women)), printed in splines' ns example
    # (broom::tidy output): 114.74466 15.94736 25.16949 33.25822 50.78938 45.03633
    d = design("weight ~ ns(height, df = 5)", WOMEN)
    assert d.columns == ("Intercept",) + tuple(f"ns(height, df = 5){j}" for j in range(1, 6))
    coef = np.linalg.lstsq(d.X, d.y, rcond=None)[0]
    np.testing.assert_allclose(coef, [114.74466, 15.94736, 25.16949, 33.25822, 50.78938, 45.03633], atol=6e-6)


@pytest.mark.unit
def test_an_ordered_factor_gets_R_polynomial_contrasts():
    # R: contr.poly(4) (stats::contr.poly help page): .L, .Q, .C
    a, b = 3 / np.sqrt(20), 1 / np.sqrt(20)
    contr = np.array([[-a, 0.5, -b], [-b, -0.5, a], [b, -0.5, -a], [a, 0.5, b]])
    frame = pd.DataFrame({"dose": [2.0, 1, 4, 3, 1, 2], "y": [0.0, 1, 0, 1, 1, 0]})
    d = design("y ~ ordered(dose)", frame)
    assert d.columns == ("Intercept", "ordered(dose).L", "ordered(dose).Q", "ordered(dose).C")
    np.testing.assert_allclose(d.X[:, 1:], contr[[1, 0, 3, 2, 0, 1]], atol=1e-12)
    frame["level"] = pd.Categorical(np.array(["lo", "mid", "hi", "top"])[frame["dose"].astype(int) - 1],
                                    categories=["lo", "mid", "hi", "top"], ordered=True)
    as_column = design("y ~ level", frame)
    assert as_column.columns == ("Intercept", "level.L", "level.Q", "level.C")
    np.testing.assert_allclose(as_column.X, d.X, atol=1e-12)
    # new data need not carry the order: the fit remembers it
    new = design("y ~ level", frame.assign(level=frame["level"].astype(str)), as_column.encoders)
    np.testing.assert_allclose(new.X, d.X, atol=1e-12)
    # without an intercept the first factor is coded in full, ordered or not (model.matrix(~ 0 + o))
    assert design("y ~ 0 + level", frame).columns == ("level[lo]", "level[mid]", "level[hi]", "level[top]")
    # higher powers are named ^4, ^5, ...
    six = design("y ~ ordered(k)", pd.DataFrame({"k": np.arange(6.0), "y": np.zeros(6)}))
    assert six.columns[1:] == tuple(f"ordered(k){s}" for s in (".L", ".Q", ".C", "^4", "^5"))
    np.testing.assert_allclose(six.X[:, 1:].T @ six.X[:, 1:], np.eye(5), atol=1e-12)


@pytest.mark.unit
def test_poly_of_equally_spaced_points_is_R_contr_poly():
    # R: contr.poly(4) = poly(1:4, 3) (stats::contr.poly help page)
    d = design("y ~ poly(x, 3)", pd.DataFrame({"x": [1.0, 2, 3, 4], "y": [0.0, 1, 0, 1]}))
    assert d.columns == ("Intercept", "poly(x, 3)1", "poly(x, 3)2", "poly(x, 3)3")
    a, b = 3 / np.sqrt(20), 1 / np.sqrt(20)
    np.testing.assert_allclose(d.X[:, 1:], [[-a, 0.5, -b], [-b, -0.5, a], [b, -0.5, -a], [a, 0.5, b]], atol=1e-12)


@pytest.mark.unit
def test_poly_columns_are_orthonormal_and_centred_on_the_fitting_data(frame):
    P = columns(design("y ~ poly(x, 4)", frame), "poly")
    np.testing.assert_allclose(P.T @ P, np.eye(4), atol=1e-10)
    np.testing.assert_allclose(P.sum(axis=0), 0, atol=1e-10)


@pytest.mark.unit
def test_poly_on_new_data_is_the_fitted_polynomials_evaluated_there(frame):
    """R's predict(poly(x, 3), newdata): the same polynomials of x, however far out."""
    fitted = design("y ~ poly(x, 3)", frame)
    powers = lambda x: np.vander(np.asarray(x), 4, increasing=True)  # noqa: E731
    coef = np.linalg.lstsq(powers(frame.x), columns(fitted, "poly"), rcond=None)[0]
    new = pd.DataFrame({"x": [-5.0, 0.5, 12.0, 30.0]})
    encoded = design("y ~ poly(x, 3)", new, encoders=fitted.encoders)
    np.testing.assert_allclose(columns(encoded, "poly"), powers(new.x) @ coef, rtol=1e-8, atol=1e-8)
    again = design("y ~ poly(x, 3)", frame, encoders=fitted.encoders)
    np.testing.assert_array_equal(again.X, fitted.X)


@pytest.mark.unit
def test_raw_poly_and_namespaced_spellings(frame):
    raw = design("y ~ stats::poly(x, 3, raw = TRUE)", frame)
    assert raw.columns[1:] == tuple(f"poly(x, 3, raw = TRUE){j}" for j in (1, 2, 3))
    np.testing.assert_allclose(raw.X[:, 1:], np.vander(frame.x, 4, increasing=True)[:, 1:])
    np.testing.assert_array_equal(design("y ~ splines::ns(x, 3)", frame).X, design("y ~ ns(x, 3)", frame).X)
    np.testing.assert_array_equal(design("y ~ splines::bs(x, df = 4)", frame).X, design("y ~ bs(x, 4)", frame).X)


@pytest.mark.unit
def test_ns_is_natural_and_linear_beyond_the_boundary_knots(frame):
    fitted = design("y ~ ns(x, df = 4)", frame)
    state = fitted.encoders.bases["ns(x, df = 4)"]
    assert state["boundary"] == (frame.x.min(), frame.x.max())
    np.testing.assert_allclose(state["knots"], np.quantile(frame.x, [0.25, 0.5, 0.75]))   # R's type-7 quantiles
    a, b = state["boundary"]
    h, middle = 1e-4, (a + b) / 2
    grid = np.concatenate([a + h * np.arange(-1, 2), b + h * np.arange(-1, 2),        # across each boundary knot
                           np.linspace(a - 5, a - 1, 3), np.linspace(b + 1, b + 5, 3), middle + h * np.arange(-1, 2)])
    N = columns(design("y ~ ns(x, df = 4)", pd.DataFrame({"x": grid}), fitted.encoders), "ns")
    second = lambda rows: (N[rows[0]] - 2 * N[rows[1]] + N[rows[2]]) / h ** 2  # noqa: E731
    assert np.max(np.abs(second((12, 13, 14)))) > 1e-2              # curved inside, but
    np.testing.assert_allclose(second((0, 1, 2)), 0, atol=1e-4)    # second derivative 0 at the boundary knots
    np.testing.assert_allclose(second((3, 4, 5)), 0, atol=1e-4)
    np.testing.assert_allclose(N[6] - 2 * N[7] + N[8], 0, atol=1e-9)   # linear beyond them
    np.testing.assert_allclose(N[9] - 2 * N[10] + N[11], 0, atol=1e-9)
    np.testing.assert_allclose(N[1], 0, atol=1e-12)                  # no intercept: 0 at the left knot


@pytest.mark.unit
def test_bs_is_R_b_spline_basis_continued_by_its_end_pieces(frame):
    fitted = design("y ~ 0 + bs(x, df = 5, intercept = TRUE)", frame)
    B = columns(fitted, "bs")
    assert B.shape[1] == 5                                            # 1 interior knot, at the median
    np.testing.assert_allclose(fitted.encoders.bases["bs(x, df = 5, intercept = TRUE)"]["knots"], [frame.x.median()])
    np.testing.assert_allclose(B.sum(axis=1), 1.0, atol=1e-12)        # a partition of unity
    cubic = design("y ~ bs(x, df = 3)", frame)                       # no interior knot: the cubics
    powers = np.vander(frame.x, 4, increasing=True)
    coef = np.linalg.lstsq(cubic.X, powers, rcond=None)[0]
    np.testing.assert_allclose(cubic.X @ coef, powers, atol=1e-8)
    new = pd.DataFrame({"x": [-3.0, 14.0]})                          # beyond the range: the same cubics
    outside = design("y ~ bs(x, df = 3)", new, cubic.encoders)
    np.testing.assert_allclose(outside.X @ coef, np.vander(new.x, 4, increasing=True), atol=1e-6)


@pytest.mark.unit
def test_given_knots_and_boundary_knots_are_used_as_given(frame):
    d = design("y ~ ns(x, knots = c(3, 6), Boundary.knots = c(-1, 11))", frame)
    state = d.encoders.bases["ns(x, knots = c(3, 6), Boundary.knots = c(-1, 11))"]
    assert state == {"knots": (3.0, 6.0), "boundary": (-1.0, 11.0)} and d.X.shape[1] == 1 + 3
    with pytest.raises(DataError, match="strictly between"):
        design("y ~ bs(x, knots = c(3, 20))", frame)


@pytest.mark.unit
def test_transform_errors_name_the_call(frame):
    with pytest.raises(FormulaError, match="no argument 'dgree'"):
        ml.parse_formula("y ~ poly(x, dgree = 2)")
    with pytest.raises(FormulaError, match="must be a constant"):
        ml.parse_formula("y ~ ns(x, df = x)")
    with pytest.raises(DataError, match="less than the number of distinct values"):
        design("y ~ poly(x, 3)", pd.DataFrame({"x": [1.0, 2, 3, 1], "y": [0.0, 1, 2, 3]}))
    with pytest.raises(DataError, match="basis of 2 columns"):
        design("y ~ log(poly(x, 2))", frame)


@pytest.mark.unit
@pytest.mark.filterwarnings("ignore:the fixed-effects design is rank deficient")
def test_basis_state_survives_saving(frame):
    encoders = design("y ~ poly(x, 2) + ns(x, 3) + scale(x)", frame).encoders
    assert Encoders.from_dict(encoders.to_dict()) == encoders


@pytest.fixture(scope="module")
def women_fit():
    return ml.fit("weight ~ poly(height, 2) + center(z)", data=WOMEN.assign(z=np.arange(15.0) % 4),
                  chains=2, draws=150, warmup=150, seed=2, progress=False)


def test_predict_reuses_the_fitting_state(women_fit):
    """On the fitting frame the predictions are the fitted values (the stored log-likelihood is
    their Normal density); on new data, the fitted polynomials and centre (R's predict)."""
    fit = women_fit
    data = WOMEN.assign(z=np.arange(15.0) % 4)
    mu = fit.predict(data, kind="linear", summary=False)
    sigma = fit.idata.posterior["sigma"].values.reshape(-1, 1)
    stored = fit.idata.log_likelihood["y"].values.reshape(mu.shape)
    np.testing.assert_allclose(stats.norm.logpdf(WOMEN.weight.values, mu, sigma), stored, rtol=1e-8, atol=1e-8)
    new = pd.DataFrame({"height": [50.0, 65.5, 80.0], "z": [-1.0, 0.5, 7.0]})
    post = fit.idata.posterior
    flat = lambda name: post[name].values.reshape(-1)  # noqa: E731
    powers = lambda x: np.vander(np.asarray(x, dtype=float), 3, increasing=True)  # noqa: E731
    P = columns(design("weight ~ poly(height, 2)", WOMEN), "poly")
    coef = np.linalg.lstsq(powers(WOMEN.height), P, rcond=None)[0]
    expected = (flat("Intercept")[:, None] + np.outer(flat("poly(height, 2)1"), powers(new.height) @ coef[:, 0])
                + np.outer(flat("poly(height, 2)2"), powers(new.height) @ coef[:, 1])
                + np.outer(flat("center(z)"), new.z - data.z.mean()))
    np.testing.assert_allclose(fit.predict(new, kind="linear", summary=False), expected, rtol=1e-8, atol=1e-6)


@pytest.mark.unit
def test_a_dask_frame_refuses_bases_that_learn_from_the_whole_column():
    dd = pytest.importorskip("dask.dataframe")
    with pytest.raises(DataError, match="compute a pandas DataFrame"):
        ml.fit("weight ~ ns(height, df = 3)", dd.from_pandas(WOMEN, npartitions=2))


@pytest.mark.unit
def test_basis_calls_survive_the_spec_round_trip_of_saved_fits():
    from multilevel.formula.spec import spec_from_dict, spec_to_dict
    spec = ml.parse_formula("y ~ poly(x, 2, raw = TRUE) + ns(z, knots = c(1, -2.5), intercept = FALSE) + cs(1 + x | g)")
    assert spec_from_dict(spec_to_dict(spec)) == spec
