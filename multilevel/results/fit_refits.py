"""Refitting a fit: k-fold cross-validation and ``update``.

:class:`RefitsMixin` is a base of :class:`~multilevel.results.fit.Fit`; it uses the fit's
``info`` (the formula, priors and sampler settings) to fit again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from typing import Mapping

import pandas as pd

from ..model.families import Family

if TYPE_CHECKING:
    from .fit import Fit
    from .kfold import KFold

class RefitsMixin:
    """The Fit's methods that fit the model again."""

    def kfold(self, data: pd.DataFrame, K: int = 10, group: str | None = None, folds=None, seed: int = 0,
              progress: bool | None = None) -> KFold:
        """K-fold cross-validation (brms's ``kfold``): refit without each fold, score its rows.

        For each fold, the same model (formula, family, the fit's priors exactly, sampler,
        chains, draws, warmup, seed and NUTS settings) is fitted to the other rows, and
        each held-out row i gets ``elpd_i = log (1/S) Σ_s p(y_i | θ_s)`` over the refit's
        S draws; a row whose group level the refit did not see gets a group effect drawn
        from the fitted population per draw (brms's ``sample_new_levels = "uncertainty"``).
        ``elpd_kfold = Σ_i elpd_i``, ``se = sqrt(n var(elpd_i))``, ``p_kfold`` the full fit's
        lppd minus ``elpd_kfold``. See :mod:`multilevel.results.kfold`.

        Parameters
        ----------
        data
            The data frame the model was fitted to (a fit keeps no copy): the same rows, in
            the same order (rows with missing values in the formula's columns are dropped
            as in fitting).
        K
            Number of random folds (sizes differing by at most one), from 2 to the rows.
        group
            A column of ``data``: leave one group out, one fold per level (``K`` is ignored).
        folds
            A fold label per row (brms's ``folds``): one fold per distinct label.
        seed
            Seed of the random folds and of the effects drawn for new group levels (the
            refits use the fit's own seed).
        progress
            A progress bar over the folds (default: when standard error is a terminal).

        Returns
        -------
        KFold
            ArviZ's ELPDData with ``elpd_kfold``, ``se``, ``p_kfold``, ``kfold_i`` (per row),
            ``folds`` (per row, its fold's label); ``ml.compare({...}, ic="kfold")`` ranks them.

        Raises
        ------
        DataError
            When ``data`` is not the fitted data (another number of rows, another response),
            ``group`` is not a column, ``K`` is not from 2 to the rows, or a fold's refit fails
            (the message names the fold).
        """
        from ..api import fit as refit  # the whole pipeline, as ml.fit runs it (api imports this module)
        from . import kfold as kfold_module  # with ArviZ, imported at first use
        return kfold_module.kfold(self, data, refit=refit, K=K, group=group, folds=folds, seed=seed,
                                  progress=progress)

    def update(self, data: pd.DataFrame | None = None, *, formula=None, family: str | Family | None = None,
               priors: Mapping[str, object] | None = None, **options) -> "Fit":
        """Refit with some things changed, as brms's ``update``: new ``data``, ``formula``,
        ``family``, ``priors`` or sampler options (``draws=``, ``chains=``, ``seed=`` ... as
        :func:`multilevel.fit` takes them); everything not given is the fit's own.

        Without ``data`` the model is refitted to the fitted rows of the formula's columns,
        which the fit keeps (so a new formula may only use those columns). Without
        ``priors``, and with the same formula and family, the refit has exactly the fit's
        priors, data-scaled defaults included; with ``priors``, those and the defaults.
        Compiled programs are reused when the model's structure and shapes allow (same
        formula and family, as many rows and levels): then a refit costs sampling only.
        """
        from ..api import fit as refit  # the whole pipeline, as ml.fit runs it (api imports this module)
        from . import kfold as kfold_module  # with ArviZ, imported at first use
        info = self.info
        same_model = formula is None and family is None
        if data is None:
            data, _ = self._fitted_data("update without data")
        if priors is None and same_model:
            priors = kfold_module.refit_priors(info)
        settings = {**kfold_module.refit_settings(self.sampler_info), **options}
        return refit(info.spec if formula is None else formula, data,
                     family=info.family if family is None else family, priors=priors, **settings)

    # -- prediction --------------------------------------------------------------
