"""A fit on disk: netCDF written atomically, with the fit's description as JSON.

The file is the fit's InferenceData with :class:`~multilevel.results.fit.FitInfo`
as JSON in the posterior's attribute :data:`META_KEY`. netCDF (HDF5) names cannot
hold ``/``, which parameter names such as ``I(x/2)`` can, so names are escaped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import os
import warnings
from pathlib import Path


from ..errors import DataError
from .files import write_atomic
from .lazy import arviz

if TYPE_CHECKING:
    import arviz as az

#: The posterior attribute that holds the fit's description.
META_KEY = "multilevel"


def _escape(name: str) -> str:
    return name.replace("%", "%25").replace("/", "%2F")


def _unescape(name: str) -> str:
    return name.replace("%2F", "/").replace("%25", "%")


def _renamed(idata: az.InferenceData, rename) -> az.InferenceData:
    """A copy of ``idata`` with every variable and dimension name passed through ``rename``."""
    names = {n for group in idata.groups() for n in [*idata[group].data_vars, *idata[group].dims]}
    mapping = {n: rename(n) for n in names if rename(n) != n}
    return idata.rename(mapping) if mapping else idata


def write_fit_file(idata: az.InferenceData, meta: str, path: str | os.PathLike) -> Path:
    """Write ``idata`` with ``meta`` in the posterior's :data:`META_KEY` attribute (of the
    copy written: ``idata`` is not changed), atomically."""
    written = _renamed(idata, _escape).map(lambda group: group.assign_attrs({META_KEY: meta}), groups="posterior")
    return write_atomic(path, lambda tmp: written.to_netcdf(tmp, engine="h5netcdf"))


def read_fit_file(path: Path) -> tuple[az.InferenceData, str]:
    """The InferenceData and the :data:`META_KEY` text of a file written by :func:`write_fit_file`.

    Raises
    ------
    DataError
        When there is no file at ``path``, or it is not netCDF, or it has no posterior
        with the attribute.
    """
    if not path.is_file():
        what = "it is a directory" if path.is_dir() else "there is no such file"
        raise DataError(f"no fit at {path}: {what}; give the netCDF file written by fit.save()")
    try:
        with warnings.catch_warnings():  # h5netcdf's note on an HDF5 file that is not netCDF
            warnings.filterwarnings("ignore", message=".*phony_dims.*")
            idata = arviz().from_netcdf(path, engine="h5netcdf")
            idata.load()
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} is not a fit written by fit.save(): it cannot be read as netCDF "
                        f"({exc})") from None
    idata = _renamed(idata, _unescape)
    if "posterior" not in idata.groups() or META_KEY not in idata.posterior.attrs:
        raise DataError(f"{path} is not a multilevel fit: it has no posterior with the {META_KEY!r} "
                        "attribute that fit.save() writes; give the file written by fit.save()")
    return idata, idata.posterior.attrs[META_KEY]
