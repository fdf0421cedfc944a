"""``import multilevel`` loads only what every fit needs.

Plotting, ArviZ, netCDF and the spline libraries are imported where they are used:
a process that fits and summarises a model never pays for them.
"""

import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

#: Modules that must not be loaded by ``import multilevel`` alone.
DEFERRED = ("arviz", "matplotlib", "scipy.interpolate", "scipy.stats", "netCDF4", "h5netcdf")


def test_import_defers_plotting_arviz_and_splines():
    code = ("import sys, multilevel; "
            f"print(','.join(m for m in {DEFERRED!r} if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "", f"import multilevel loaded {loaded}"
