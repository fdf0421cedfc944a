"""The centring rule and hierarchical centring, as pure functions (no sampling).

* :func:`effective_information` is the exact marginal information of each level's
  effects for nested random intercepts: the terms nested below integrated out at
  their prior variance, the terms above held fixed (checked against the dense
  ``Z'Σ⁻¹Z`` of a small design).
* On a design whose answer is known (a location holding one brood: its rows inform
  brood + location, so a brood with a large sd leaves the location nearly no
  information), the rule centres the brood and not the location, where sd² times
  the conditional information of the location's rows would centre both.
* Centred positions are a reparameterisation: every choice maps to the same
  effects and back (:func:`recentre`), and among crossed centred terms the one
  whose effects' mean its prior holds least carries the intercept.
"""

from __future__ import annotations

import itertools

import jax
import numpy as np
import pandas as pd
import pytest

import multilevel as ml
from multilevel.design import build_design
from multilevel.inference.centering import decide_from_sds, effective_information, median_kappa
from multilevel.model import Layout, constrain, model_data, recentre, resolve_priors, structure, zero_position
from multilevel.model.hierarchy import centering_arrays, term_parents

#: Pure unit and property tests: no sampler runs (``make test-unit``).
pytestmark = pytest.mark.unit


def nested_frame(broods_per_location: list[int], rows_per_brood: int | list[int], seed: int = 0) -> pd.DataFrame:
    """Locations holding broods holding chicks (one row per chick), with a covariate
    constant within locations (``height``) and one constant within broods (``year``)."""
    rng = np.random.default_rng(seed)
    rows, brood = [], 0
    for location, broods in enumerate(broods_per_location):
        height = rng.normal()
        for _ in range(broods):
            k = rows_per_brood if isinstance(rows_per_brood, int) else rows_per_brood[brood % len(rows_per_brood)]
            year = int(rng.integers(0, 2))
            rows += [{"location": location, "brood": brood, "height": height, "year": year} for _ in range(k)]
            brood += 1
    frame = pd.DataFrame(rows)
    frame["chick"] = np.arange(len(frame))
    frame["y"] = rng.poisson(3.0, len(frame))
    return frame


NESTED = "y ~ height + year + (1 | brood) + (1 | chick) + (1 | location)"


def design_of(formula: str, frame: pd.DataFrame):
    return build_design(ml.parse_formula(formula), frame)


def dense_information(design, weights, sds, t: int) -> np.ndarray:
    """Diagonal of ``Z_t' (W⁻¹ + Σ_below s² Z Z')⁻¹ Z_t``, the terms below t (more levels,
    nested in t) integrated out, dense."""
    g = design.groups[t]
    cov = np.diag(1 / weights)
    for o, h in enumerate(design.groups):
        if h.num_levels > g.num_levels:
            Z = np.zeros((design.num_rows, h.num_levels))
            Z[np.arange(design.num_rows), h.refs] = 1.0
            cov += float(sds[o][0]) ** 2 * Z @ Z.T
    Zt = np.zeros((design.num_rows, g.num_levels))
    Zt[np.arange(design.num_rows), g.refs] = 1.0
    return np.diag(Zt.T @ np.linalg.solve(cov, Zt))


def test_effective_information_is_exact_for_nested_intercepts():
    frame = nested_frame([1, 2, 3, 1, 4], [1, 2, 4, 3])
    design = design_of(NESTED, frame)
    rng = np.random.default_rng(1)
    weights = rng.uniform(0.2, 5.0, design.num_rows)
    sds = [np.array([s]) for s in (0.9, 0.6, 0.4)]          # brood, chick, location
    info = effective_information(design, weights, sds)
    for t in range(3):
        np.testing.assert_allclose(info[t][:, 0, 0], dense_information(design, weights, sds, t), rtol=1e-10)


def test_a_location_with_one_brood_gets_the_information_passed_up_through_it():
    # 40 locations of one brood of 30 rows (their rows pin brood + location), 5 of two.
    design = design_of("y ~ 1 + (1 | brood) + (1 | location)", nested_frame([1] * 40 + [2] * 5, 30))
    weights = np.ones(design.num_rows)
    sd_brood, sd_location = 2.0, 0.5
    sds = [np.array([sd_brood]), np.array([sd_location])]
    kappa = median_kappa(design, weights, sds)
    assert kappa[0][0] == pytest.approx(sd_brood ** 2 * 30)                            # 120
    assert kappa[1][0] == pytest.approx(sd_location ** 2 / (sd_brood ** 2 + 1 / 30))  # 0.062
    choice, reasons = decide_from_sds(design, weights, sds)
    assert choice == (True, False)
    assert "prior dominates" in reasons[1]
    # what the rule of the conditional information would say about the location: 7.5
    assert sd_location ** 2 * 30 > 1


def test_a_crossed_term_well_informed_by_other_rows_hardly_blurs_a_level():
    # 30 students × 30 lecturers, each pair once: a lecturer has 30 rows, a student 30.
    students, lecturers = np.meshgrid(np.arange(30), np.arange(30))
    frame = pd.DataFrame({"y": 0.0, "s": students.ravel(), "l": lecturers.ravel()})
    design = design_of("y ~ 1 + (1 | s) + (1 | l)", frame)
    weights = np.ones(design.num_rows)
    info = effective_information(design, weights, [np.array([1.0]), np.array([1.0])])
    # the lecturer's conditional posterior variance is 1/31: each row keeps 1/(1 + 1/31)
    np.testing.assert_allclose(info[0][:, 0, 0], 30 / (1 + 1 / 31))


def test_parents_are_the_nearest_nesting_terms_with_the_column():
    design = design_of(NESTED, nested_frame([1, 2, 3], 2))
    names = [g.name for g in design.groups]
    parents = term_parents(design)
    assert {names[t]: None if p[0] is None else names[p[0][0]] for t, p in enumerate(parents)} == {
        "brood": "location", "chick": "brood", "location": None}


def test_the_root_carries_the_intercept_and_the_covariates_enter_where_they_are_constant():
    design = design_of(NESTED, nested_frame([1, 2, 3, 2], 3))
    names = [g.name for g in design.groups]
    with jax.enable_x64(True):
        arrays = dict(zip(names, centering_arrays(design, tuple(n == "brood" for n in names))))
    columns = list(design.columns)
    entering = {name: {columns[k] for k in np.flatnonzero(np.abs(np.asarray(a[2])).sum(axis=0))}
                for name, a in arrays.items()}
    assert entering == {"location": {"height"}, "brood": {"year"}, "chick": set()}
    assert np.asarray(arrays["location"][1])[0, columns.index("Intercept")] == 1.0
    assert not np.asarray(arrays["brood"][1]).any()


def test_of_crossed_centred_terms_the_one_with_the_largest_sd2_per_level_carries_the_intercept():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"y": rng.poisson(3.0, 400), "a": rng.integers(0, 20, 400), "b": np.arange(400) % 200})
    design = design_of("y ~ 1 + (1 | b) + (1 | a)", frame)        # b: 200 levels, a: 20

    def carrier(sds=None):
        with jax.enable_x64(True):
            arrays = centering_arrays(design, (True, True), sds)
        return [g.name for g, a in zip(design.groups, arrays) if np.asarray(a[1]).any()]

    assert carrier() == ["a"]                                      # equal sds: the fewer levels
    assert carrier([np.array([0.5]), np.array([1.0])]) == ["a"]    # 0.25/200 < 1/20
    assert carrier([np.array([5.0]), np.array([0.1])]) == ["b"]    # 25/200 > 0.01/20


@pytest.mark.parametrize("formula", [NESTED, "y ~ height + (1 + year | location) + (1 + year | brood)"])
def test_every_parameterisation_is_the_same_point(formula):
    design = design_of(formula, nested_frame([1, 2, 3, 1], [2, 3]))
    family = ml.families.poisson()
    layout = Layout.of(design, family)
    priors = resolve_priors(design, layout, None, family)
    with jax.enable_x64(True):
        struct = structure(layout, family)
        # compiled, as inside the sampler (op by op this test took seconds)
        effects_of = jax.jit(lambda position, data: constrain(position, data, struct)[0].effects)
        move = jax.jit(lambda position, data, centering: recentre(position, data, centering, struct))
        rng = np.random.default_rng(0)
        position = jax.tree_util.tree_map(lambda a: rng.normal(size=a.shape), zero_position(layout))
        non_centred = model_data(design, priors)
        effects = effects_of(position, non_centred)
        for choice in itertools.product([False, True], repeat=len(design.groups)):
            data = model_data(design, priors, choice)
            moved = move(position, non_centred, data.centering)
            for got, expected in zip(effects_of(moved, data), effects):
                np.testing.assert_allclose(got, expected, atol=1e-12)
            back = move(moved, data, non_centred.centering)
            for got, expected in zip(jax.tree_util.tree_leaves(back), jax.tree_util.tree_leaves(position)):
                np.testing.assert_allclose(got, expected, atol=1e-12)
