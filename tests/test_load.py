"""``ml.load`` of a file that is not a fit raises the library's DataError naming the file.

Never a bare OSError, nor an h5py, xarray or ArviZ traceback: a missing file, a
directory, a text file, an empty file, netCDF or HDF5 without the fit's
``multilevel`` attribute, and an attribute that cannot be read back.
"""

from __future__ import annotations

import arviz as az
import h5py
import numpy as np
import pytest
import xarray as xr

import multilevel as ml


def raises_data_error_naming(path, match: str):
    with pytest.raises(ml.DataError, match=match) as caught:
        ml.load(path)
    assert str(path) in str(caught.value)
    error = caught.value
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)  # nothing chained


def test_a_missing_file(tmp_path):
    raises_data_error_naming(tmp_path / "fit.nc", "there is no such file; give the netCDF file written by fit.save")


def test_a_directory(tmp_path):
    raises_data_error_naming(tmp_path, "it is a directory")


@pytest.mark.parametrize("content", [b"", b"y,x\n1,2\n"], ids=["empty", "csv"])
def test_a_file_that_is_not_netcdf(tmp_path, content):
    path = tmp_path / "fit.nc"
    path.write_bytes(content)
    raises_data_error_naming(path, "is not a fit written by fit.save\\(\\): it cannot be read as netCDF")


def test_netcdf_of_a_plain_dataset(tmp_path):
    path = tmp_path / "data.nc"
    xr.Dataset({"a": ("x", np.arange(3.0))}).to_netcdf(path, engine="h5netcdf")
    raises_data_error_naming(path, "is not a multilevel fit: it has no posterior with the 'multilevel' attribute")


def test_inference_data_not_written_by_multilevel(tmp_path):
    path = tmp_path / "other.nc"
    az.from_dict(posterior={"mu": np.zeros((2, 5))}).to_netcdf(str(path), engine="h5netcdf")
    raises_data_error_naming(path, "is not a multilevel fit")


def test_hdf5_that_is_not_netcdf(tmp_path, recwarn):
    path = tmp_path / "raw.h5"
    with h5py.File(path, "w") as handle:
        handle["x"] = np.arange(3)
    raises_data_error_naming(path, "is not a multilevel fit")
    assert not [w for w in recwarn if "phony_dims" in str(w.message)]  # h5netcdf's note is not the user's concern


def test_a_damaged_multilevel_attribute(tmp_path):
    path = tmp_path / "damaged.nc"
    idata = az.from_dict(posterior={"mu": np.zeros((2, 5))})
    idata.posterior.attrs["multilevel"] = '{"spec": '
    idata.to_netcdf(str(path), engine="h5netcdf")
    raises_data_error_naming(path, "'multilevel' attribute that cannot be read back")
