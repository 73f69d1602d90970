"""Multi-peak entropy (Liu & Ferrari): ambiguity of each joint's heatmap.

Per joint, the local maxima of the last stack's heatmap (at most ``max_peaks``, more than
``min_distance`` pixels apart in Chebyshev distance, above ``threshold``) are found; a softmax
over their values gives a distribution whose entropy (nats) measures the ambiguity; the score
of an image is the sum over joints. A joint with one peak (or none) has entropy 0.

Peak finding: a pixel is a candidate when it equals the maximum of its
``(2·min_distance + 1)²`` window (as ``skimage.feature.peak_local_max`` does); candidates are
then taken highest first, skipping any within ``min_distance`` of one already kept (so a
plateau yields one peak).

References
----------
Liu, B. and Ferrari, V. "Active Learning for Human Pose Estimation." ICCV 2017.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from eglpp.strategies.base import PoolInputs, Strategy

__all__ = ["MultiPeakEntropy", "find_peaks", "multi_peak_entropy"]

REFERENCE_MIN_DISTANCE = 5  # pixels at 64×64 heatmaps (the reference setting)


def find_peaks(
    heatmap: np.ndarray, max_peaks: int = 5, min_distance: int = 5, threshold: float = 0.0
) -> np.ndarray:
    """Values of the local maxima of one (h, w) heatmap, highest first, at most ``max_peaks``."""
    return _peaks_batch(torch.as_tensor(heatmap)[None, None], max_peaks, min_distance, threshold)[0]


def _peaks_batch(maps: torch.Tensor, max_peaks: int, min_distance: int, threshold: float):
    """maps (N, 1, h, w) → list of N arrays of peak values."""
    N, _, h, w = maps.shape
    maps = maps.to(torch.float64)
    pooled = F.max_pool2d(maps, 2 * min_distance + 1, stride=1, padding=min_distance)
    candidate = (maps == pooled) & (maps > threshold)
    flat, cand = maps.reshape(N, -1).numpy(), candidate.reshape(N, -1).numpy()
    out = []
    for n in range(N):
        idx = np.flatnonzero(cand[n])
        if idx.size == 0:
            out.append(np.zeros(0))
            continue
        order = np.argsort(-flat[n, idx], kind="stable")
        idx = idx[order]
        vals = flat[n, idx]
        rows, cols = idx // w, idx % w
        kept: list[int] = []
        for c in range(idx.size):
            if all(
                max(abs(rows[c] - rows[k]), abs(cols[c] - cols[k])) > min_distance for k in kept
            ):
                kept.append(c)
                if len(kept) == max_peaks:
                    break
        out.append(vals[kept])
    return out


def _entropy_of_softmax(values: np.ndarray) -> float:
    if values.size <= 1:
        return 0.0
    z = values - values.max()
    p = np.exp(z) / np.exp(z).sum()
    return float(-(p * np.log(p)).sum())


def multi_peak_entropy(
    heatmaps: np.ndarray,
    max_peaks: int = 5,
    min_distance: int | None = None,
    threshold: float = 0.0,
) -> np.ndarray:
    """Sum over joints of the entropy of the softmax over each heatmap's peak values.

    Parameters
    ----------
    heatmaps : (U, J, h, w) array
        The last stack's heatmaps.
    max_peaks : int
        Peaks kept per joint (the reference: 5).
    min_distance : int or None
        Peaks must be more than this Chebyshev distance apart (heatmap pixels); None scales the
        reference's 5 px at 64×64 to the heatmap size: ``max(1, round(5 · h / 64))``.
    threshold : float
        Peaks must be strictly above this value.

    Returns
    -------
    scores : (U,) float64

    Examples
    --------
    >>> hm = np.zeros((1, 1, 16, 16)); hm[0, 0, 3, 3] = hm[0, 0, 12, 12] = 1.0
    >>> round(float(multi_peak_entropy(hm)[0]), 4)  # two equal peaks: ln 2
    0.6931
    """
    heatmaps = np.asarray(heatmaps)
    if heatmaps.ndim != 4:
        raise ValueError(f"heatmaps must be (U, J, h, w), got shape {heatmaps.shape}")
    U, J, h, w = heatmaps.shape
    bad = ~np.isfinite(heatmaps).all(axis=(1, 2, 3))
    if bad.any():  # a NaN is never a peak: the image would score 0 without a word
        raise ValueError(
            f"heatmaps of {int(bad.sum())} image(s) hold NaN or infinite values (first: image "
            f"{int(np.flatnonzero(bad)[0])}); multi-peak entropy needs finite heatmaps"
        )
    if min_distance is None:
        min_distance = max(1, round(REFERENCE_MIN_DISTANCE * h / 64))
    maps = torch.as_tensor(heatmaps).reshape(U * J, 1, h, w)
    peaks = _peaks_batch(maps, max_peaks, min_distance, threshold)
    ent = np.array([_entropy_of_softmax(v) for v in peaks], dtype=np.float64)
    return ent.reshape(U, J).sum(axis=1)


@dataclass(frozen=True)
class MultiPeakEntropy(Strategy):
    """Select the images whose joint heatmaps have the most ambiguous peaks."""

    max_peaks: int = 5  # the reference: 5
    min_distance: int | None = None  # None: 5 px at 64×64, scaled with the heatmap size
    threshold: float = 0.0  # peaks must exceed this value

    name: ClassVar[str] = "multipeak"
    needs: ClassVar[frozenset[str]] = frozenset({"heatmaps"})

    def __post_init__(self) -> None:
        if isinstance(self.max_peaks, bool) or not isinstance(self.max_peaks, int):
            raise TypeError(f"max_peaks must be an integer, got {self.max_peaks!r}")
        if self.max_peaks < 1:
            raise ValueError(f"max_peaks must be at least 1, got {self.max_peaks}")
        if self.min_distance is not None and self.min_distance < 1:
            raise ValueError(f"min_distance must be at least 1 pixel, got {self.min_distance}")

    def score(self, inputs: PoolInputs, rng: np.random.Generator) -> np.ndarray:
        self.check_inputs(inputs)
        self._check_rng(rng)
        return multi_peak_entropy(
            inputs.heatmaps_unlabelled, self.max_peaks, self.min_distance, self.threshold
        )
