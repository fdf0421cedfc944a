"""The command line reads the data files users have, whatever their delimiter and line endings.

* delimited text: tab, comma or semicolon (detected), with LF, CRLF or CR line endings;
* Parquet (``.parquet``), and a DataError saying what to install when pyarrow is missing;
* the Duke Forest FACE file as published (tab-separated, CR line endings) reads as the
  derived CSV does;
* a column the formula names but the file lacks gives an error that shows what was read.
"""

from __future__ import annotations

import io
import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import multilevel as ml
from multilevel import cli
from multilevel.cli import main, read_table
from multilevel.formula import parse_formula
from conftest import SHARED_DATA

TABLE = pd.DataFrame({
    "y": [1.5, 2.25, -0.5, 4.0],
    "x": [1, 2, 3, 4],
    "g": ["a", "b", "a", "b"],
    "note": ["plain", "with, comma", "with; semicolon", "with\ttab"],
})
DELIMITERS = {"tab": "\t", "comma": ",", "semicolon": ";"}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n", "CR": "\r"}


def write_text(path, table: pd.DataFrame, delimiter: str, line_ending: str):
    """Write ``table`` by hand, quoting fields that hold a delimiter, with the given line ending."""
    def field(value) -> str:
        text = str(value)
        return f'"{text}"' if any(d in text for d in DELIMITERS.values()) else text

    lines = [delimiter.join(table.columns)] + [delimiter.join(map(field, row)) for row in table.itertuples(index=False)]
    path.write_bytes((line_ending.join(lines) + line_ending).encode())
    return path


@pytest.mark.parametrize("line_ending", LINE_ENDINGS)
@pytest.mark.parametrize("delimiter", DELIMITERS)
def test_text_reads_whatever_its_delimiter_and_line_endings(tmp_path, delimiter, line_ending):
    path = write_text(tmp_path / "data.txt", TABLE, DELIMITERS[delimiter], LINE_ENDINGS[line_ending])
    table = read_table(path)
    pd.testing.assert_frame_equal(table.data, TABLE)
    assert table.how == f"{delimiter}-separated"


def test_a_byte_order_mark_is_not_part_of_the_first_name(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbf" + TABLE.to_csv(index=False).encode())
    assert list(read_table(path).data.columns) == list(TABLE.columns)


def test_a_table_of_one_column_reads_as_one_column(tmp_path):
    path = tmp_path / "y.csv"
    path.write_text("y\n1\n2\n3\n")
    pd.testing.assert_frame_equal(read_table(path).data, pd.DataFrame({"y": [1, 2, 3]}))


def test_parquet_reads_as_written(tmp_path):
    pytest.importorskip("pyarrow", reason="writing the Parquet file of this test needs pyarrow")
    path = tmp_path / "data.parquet"
    TABLE.to_parquet(path)
    table = read_table(path)
    pd.testing.assert_frame_equal(table.data, TABLE)
    assert table.how == "Parquet"


def test_parquet_without_pyarrow_says_what_to_install(tmp_path, monkeypatch):
    path = tmp_path / "data.parquet"
    path.write_bytes(b"PAR1")

    def no_engine(*args, **kwargs):
        raise ImportError("Unable to find a usable engine; tried using: 'pyarrow', 'fastparquet'.")

    monkeypatch.setattr(pd, "read_parquet", no_engine)
    with pytest.raises(ml.DataError, match=r"needs pyarrow: pip install 'multilevel\[dask\]'"):
        read_table(path)


def test_a_file_that_is_not_parquet_is_a_data_error_naming_it(tmp_path):
    pytest.importorskip("pyarrow", reason="the Parquet reader is pyarrow")
    path = tmp_path / "data.parquet"
    path.write_text("y,x\n1,2\n")
    with pytest.raises(ml.DataError, match="cannot read .*data.parquet as Parquet"):
        read_table(path)


def test_face_trees_as_published_read_as_the_derived_csv():
    published, derived = SHARED_DATA / "FACEtrees.txt", SHARED_DATA / "dataTreeFACE.csv"
    if not (published.exists() and derived.exists()):
        pytest.skip(f"{SHARED_DATA} lacks FACEtrees.txt or dataTreeFACE.csv: this test needs the real files")
    table = read_table(published)
    assert table.how == "tab-separated"
    assert len(table.data) == 7656
    # dataTreeFACE.csv is FACEtrees.txt without the rows where diam is NA, tabs and CRs made commas and LFs
    kept = table.data.dropna(subset=["diam"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, read_table(derived).data, check_dtype=False)


# -- through the command line -----------------------------------------------------------------------
@pytest.fixture
def fit_inputs(monkeypatch):
    """Stand in for api.fit: record the data frame the command hands it, and stop there."""
    received = []

    def record(formula, data, **kwargs):
        received.append(data)
        raise ml.DataError("stopped after reading (test)")

    monkeypatch.setattr(cli.api, "fit", record)
    return received


def test_fit_hands_the_model_the_columns_of_a_tab_separated_file_with_cr_endings(tmp_path, fit_inputs, capsys):
    path = write_text(tmp_path / "trees.txt", TABLE, "\t", "\r")
    assert main(["fit", str(path), "log(y + 1) ~ x + (1 | g)"]) == 2
    assert "stopped after reading" in capsys.readouterr().err
    pd.testing.assert_frame_equal(fit_inputs[0], TABLE)


def test_fit_of_face_trees_as_published_finds_dnow(fit_inputs, capsys):
    path = SHARED_DATA / "FACEtrees.txt"
    if not path.exists():
        pytest.skip(f"{path} is absent: this test needs the real data set beside the repository")
    assert main(["fit", str(path), "log(dnow) ~ diam*trt + (1 + diam || tindex)"]) == 2
    assert "stopped after reading" in capsys.readouterr().err
    assert {"dnow", "diam", "trt", "tindex"} <= set(fit_inputs[0].columns)


def test_a_missing_column_error_shows_the_one_column_read(tmp_path, fit_inputs, capsys):
    path = tmp_path / "pipes.txt"
    path.write_text("y|x|g\n1|2|a\n3|4|b\n")
    assert main(["fit", str(path), "y ~ x + (1 | g)"]) == 2
    err = capsys.readouterr().err
    assert "pipes.txt has no column 'y', 'x', 'g' (named by the formula)" in err
    assert "read 1 column from it (no tab, comma or semicolon in its first lines): 'y|x|g'" in err
    assert "delimiter is not a tab, comma or semicolon" in err
    assert not fit_inputs  # the model never saw the table


def test_a_missing_column_error_lists_the_columns_read(tmp_path, fit_inputs, capsys):
    path = tmp_path / "data.csv"
    TABLE.to_csv(path, index=False)
    assert main(["fit", str(path), "y ~ diam"]) == 2
    err = capsys.readouterr().err
    assert "data.csv has no column 'diam' (named by the formula); read 4 columns from it (comma-separated): " \
           "'y', 'x', 'g', 'note'" in err
    assert "delimiter" not in err


def test_a_missing_data_file_is_named(tmp_path, capsys):
    assert main(["fit", str(tmp_path / "absent.csv"), "y ~ x"]) == 2
    assert f"no data file at {tmp_path / 'absent.csv'}" in capsys.readouterr().err


def test_a_directory_is_not_a_data_file(tmp_path):
    with pytest.raises(ml.DataError, match=re.escape(f"cannot read {tmp_path}: Is a directory")):
        read_table(tmp_path)


def test_predict_reads_new_rows_as_fit_does(tmp_path, monkeypatch, capsys):
    fitted = SimpleNamespace(info=SimpleNamespace(spec=parse_formula("y ~ x + (1 | g)")),
                             predict=lambda data, **kwargs: data.assign(mean=np.arange(len(data), dtype=float)))
    monkeypatch.setattr(cli, "load", lambda path: fitted)
    path = write_text(tmp_path / "new.txt", TABLE.drop(columns="y"), ";", "\r\n")
    assert main(["predict", "fit.nc", str(path)]) == 0
    printed = pd.read_csv(io.StringIO(capsys.readouterr().out))
    pd.testing.assert_frame_equal(printed, TABLE.drop(columns="y").assign(mean=[0.0, 1.0, 2.0, 3.0]))
    write_text(path, TABLE.drop(columns="g"), ";", "\r\n")
    assert main(["predict", "fit.nc", str(path)]) == 2
    assert "new.txt has no column 'g' (named by the formula)" in capsys.readouterr().err


def test_fit_takes_a_formula_per_parameter_with_dpar(tmp_path, monkeypatch, capsys):
    received = []

    def record(formula, data, **kwargs):
        received.append(formula)
        raise ml.DataError("stopped after reading (test)")

    monkeypatch.setattr(cli.api, "fit", record)
    path = write_text(tmp_path / "trees.csv", TABLE, ",", "\n")
    assert main(["fit", str(path), "y ~ x + (1 | g)", "--dpar", "sigma ~ x", "--dpar", "nu ~ 1"]) == 2
    assert received[0].parse().formulas == ("y ~ x + (1 | g)", "sigma ~ x", "nu ~ 1")
    assert main(["fit", str(path), "y ~ x", "--dpar", "sigma ~ w"]) == 2
    assert "no column 'w'" in capsys.readouterr().err


def test_predict_passes_dpar_on(tmp_path, monkeypatch, capsys):
    asked = {}
    fitted = SimpleNamespace(info=SimpleNamespace(spec=parse_formula("y ~ x + (1 | g)")),
                             predict=lambda data, **kwargs: asked.update(kwargs) or data.assign(mean=1.0))
    monkeypatch.setattr(cli, "load", lambda path: fitted)
    path = write_text(tmp_path / "new.csv", TABLE.drop(columns="y"), ",", "\n")
    assert main(["predict", "fit.nc", str(path), "--dpar", "sigma"]) == 0
    assert asked["dpar"] == "sigma"


@pytest.mark.parametrize("formula", ["y > 1 ~ x + 1 | g", "y ~ . - g - note + (1 | g)", "round(y) ~ factor(x) + (1 | g)"])
def test_fit_takes_r_formulas_and_weights_as_the_api_does(tmp_path, monkeypatch, capsys, formula):
    received = []

    def record(formula, data, **kwargs):
        received.append((formula.parse(list(data.columns)), kwargs["weights"]))
        raise ml.DataError("stopped after reading (test)")

    monkeypatch.setattr(cli.api, "fit", record)
    path = write_text(tmp_path / "data.csv", TABLE, ",", "\n")
    assert main(["fit", str(path), formula, "--weights", "x"]) == 2
    spec, weights = received[0]
    assert spec == parse_formula(formula, TABLE.columns) and weights == "x"
    assert main(["fit", str(path), formula, "--weights", "w"]) == 2
    assert "no column 'w' (named by --weights)" in capsys.readouterr().err
