"""Real tabular regression data: built-in sets shipped offline by PyPI packages, or a user CSV.

Built in (nothing is downloaded; each loads from files inside an installed package):

========== ======== ====================================== ==================================
name       rows × D target                                 source
========== ======== ====================================== ==================================
diabetes   442 × 10 disease progression after one year     scikit-learn ``load_diabetes``
star98     303 × 20 share of students above the median      statsmodels ``star98`` (California
                    in maths (NABOVE / (NABOVE + NBELOW))   schools, 1998)
randhie    20190×9  outpatient visits (mdvis)              statsmodels ``randhie`` (RAND HIE)
fair       6366 × 8 time in affairs (affairs)              statsmodels ``fair`` (Fair 1978)
grunfeld   220 × 3  gross investment (invest) from firm     statsmodels ``grunfeld``
                    value, capital stock and year
engel      235 × 1  food expenditure from income           statsmodels ``engel`` (Engel 1857)
macrodata  203 × 11 real private investment (realinv)      statsmodels ``macrodata`` (US
                    from the other macro series            quarterly, 1959-2009)
========== ======== ====================================== ==================================
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_diabetes

__all__ = ["Table", "dataset_names", "load_dataset", "load_csv", "table_from_frame"]


@dataclass(frozen=True)
class Table:
    """A regression table: features ``x`` (N, D), target ``y`` (N,), names and origin."""

    x: np.ndarray
    y: np.ndarray
    feature_names: tuple[str, ...]
    target_name: str
    source: str

    def __len__(self) -> int:
        return len(self.y)


def dataset_names() -> tuple[str, ...]:
    """Names accepted by :func:`load_dataset`."""
    return ("diabetes", "star98", "randhie", "fair", "grunfeld", "engel", "macrodata")


def table_from_frame(
    frame: pd.DataFrame, target: str, source: str, features: Sequence[str] | None = None
) -> Table:
    """Check a pandas DataFrame and turn it into a :class:`Table`.

    Raises ``ValueError`` naming the source and the column (and first bad row) when the target
    column is missing, a cell is not numeric, or a cell is empty / NaN / infinite.
    """

    if target not in frame.columns:
        raise ValueError(
            f"{source}: target column '{target}' not found; columns are {list(frame.columns)}"
        )
    if frame.empty:
        raise ValueError(f"{source}: no data rows (only a header)")
    features = [c for c in frame.columns if c != target] if features is None else list(features)
    if not features:
        raise ValueError(f"{source}: no feature columns besides the target '{target}'")
    for col in [*features, target]:
        values = pd.to_numeric(frame[col], errors="coerce")
        bad = values.isna() & frame[col].notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise ValueError(
                f"{source}: column '{col}' has a non-numeric cell {frame[col].iloc[row]!r} "
                f"at data row {row + 1}; every feature and the target must be numeric"
            )
        missing = ~np.isfinite(values.to_numpy(dtype=np.float64))
        if missing.any():
            row = int(np.flatnonzero(missing)[0])
            raise ValueError(
                f"{source}: column '{col}' has {int(missing.sum())} empty, NaN or infinite "
                f"cells (first at data row {row + 1})"
            )
    x = frame[features].apply(pd.to_numeric).to_numpy(dtype=np.float64)
    y = pd.to_numeric(frame[target]).to_numpy(dtype=np.float64)
    if np.ptp(y) == 0:
        raise ValueError(
            f"{source}: target column '{target}' is constant ({y[0]:g} in every row): "
            "there is nothing to learn"
        )
    return Table(x, y, tuple(str(c) for c in features), str(target), source)


def load_csv(path: str | Path, target: str) -> Table:
    """Read a CSV with a header row; every column but ``target`` is a numeric feature."""

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file not found: {path}")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: cannot be read as CSV ({err})") from err
    return table_from_frame(frame, target, str(path))


def _statsmodels(name: str):
    import importlib  # lazy: statsmodels' data sets load only when one is asked for

    return importlib.import_module(f"statsmodels.datasets.{name}").load_pandas().data


def load_dataset(name: str) -> Table:
    """One of :func:`dataset_names`, loaded from an installed package (no network)."""
    if name == "diabetes":
        d = load_diabetes(as_frame=True)
        frame = d.frame
        return table_from_frame(frame, "target", "scikit-learn diabetes")
    source = f"statsmodels {name}"
    if name == "star98":
        frame = _statsmodels("star98").copy()
        frame["share_above"] = frame["NABOVE"] / (frame["NABOVE"] + frame["NBELOW"])
        frame = frame.drop(columns=["NABOVE", "NBELOW"])
        return table_from_frame(frame, "share_above", source)
    if name == "randhie":
        return table_from_frame(_statsmodels("randhie"), "mdvis", source)
    if name == "fair":
        return table_from_frame(_statsmodels("fair"), "affairs", source)
    if name == "grunfeld":
        return table_from_frame(
            _statsmodels("grunfeld"), "invest", source, ["value", "capital", "year"]
        )
    if name == "engel":
        return table_from_frame(_statsmodels("engel"), "foodexp", source)
    if name == "macrodata":
        frame = _statsmodels("macrodata").drop(columns=["year", "quarter"])
        return table_from_frame(frame, "realinv", source)
    raise ValueError(f"unknown dataset '{name}'; built-in datasets: {', '.join(dataset_names())}")
