import math

import numpy as np
import pytest
from template_strategy import StrategyTemplate

from eglpp.strategies import make_strategy, multi_peak_entropy
from eglpp.strategies.multipeak import find_peaks


def _gaussian(h, w, cy, cx, sigma=1.0, amp=1.0):
    yy, xx = np.mgrid[0:h, 0:w]
    return amp * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))


class TestMultiPeak(StrategyTemplate):
    name = "multipeak"

    def test_one_peak_scores_below_two_equal_peaks(self):
        one = _gaussian(32, 32, 10, 10)
        two = _gaussian(32, 32, 8, 8) + _gaussian(32, 32, 24, 24)
        s = multi_peak_entropy(np.stack([one, two])[:, None])
        assert s[0] == pytest.approx(0.0)
        assert s[1] == pytest.approx(math.log(2), abs=1e-9)

    def test_hand_worked_entropy_three_peaks(self):
        hm = np.zeros((1, 2, 20, 20))
        hm[0, 0, 2, 2], hm[0, 0, 10, 10], hm[0, 0, 17, 3] = 1.0, 0.5, 0.25
        hm[0, 1, 5, 5] = 0.7  # one peak: entropy 0
        v = np.array([1.0, 0.5, 0.25])
        p = np.exp(v) / np.exp(v).sum()
        expected = -(p * np.log(p)).sum()
        np.testing.assert_allclose(multi_peak_entropy(hm, min_distance=2), [expected])

    def test_at_most_max_peaks_highest_kept(self):
        hm = np.zeros((24, 24))
        for i, v in enumerate([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3]):
            hm[3 * i + 1, 3 * i + 1] = v
        np.testing.assert_allclose(
            find_peaks(hm, max_peaks=5, min_distance=1), [0.9, 0.8, 0.7, 0.6, 0.5]
        )

    def test_min_distance_suppresses_close_peaks(self):
        hm = np.zeros((16, 16))
        hm[5, 5], hm[5, 8] = 1.0, 0.9  # 3 px apart
        assert find_peaks(hm, min_distance=2).tolist() == [1.0, 0.9]
        assert find_peaks(hm, min_distance=3).tolist() == [1.0]

    def test_plateau_is_one_peak_and_flat_map_none(self):
        hm = np.zeros((10, 10))
        hm[4:6, 4:6] = 0.5
        assert find_peaks(hm, min_distance=1).tolist() == [0.5]
        assert find_peaks(np.zeros((10, 10)), min_distance=1).size == 0

    def test_default_min_distance_scales_with_heatmap_size(self):
        # at 16x16 the reference 5 px at 64x64 becomes 1 px: peaks 2 px apart both count
        hm = np.zeros((1, 1, 16, 16))
        hm[0, 0, 5, 5], hm[0, 0, 5, 7] = 1.0, 1.0
        assert multi_peak_entropy(hm)[0] == pytest.approx(math.log(2))
        big = np.zeros((1, 1, 64, 64))
        big[0, 0, 20, 20], big[0, 0, 20, 24] = 1.0, 1.0  # 4 px apart at 64x64: suppressed
        assert multi_peak_entropy(big)[0] == pytest.approx(0.0)

    def test_bad_hyperparameters(self):
        with pytest.raises(ValueError, match="max_peaks"):
            make_strategy("multipeak", max_peaks=0)
        with pytest.raises(ValueError, match="min_distance"):
            make_strategy("multipeak", min_distance=0)
        with pytest.raises(ValueError, match="heatmaps"):
            multi_peak_entropy(np.zeros((3, 4, 4)))


def test_nan_heatmaps_are_refused_not_scored_zero():
    hm = np.zeros((3, 2, 16, 16))
    hm[:, :, 4, 4] = hm[:, :, 11, 11] = 1.0
    hm[1, 1, 7, 7] = np.nan
    with pytest.raises(ValueError, match=r"heatmaps of 1 image\(s\) hold NaN .*first: image 1"):
        multi_peak_entropy(hm)
    hm[1, 1, 7, 7] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        multi_peak_entropy(hm)
