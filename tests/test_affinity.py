"""Affinities (Eq. 13) against scikit-learn's and openTSNE's perplexity calibration."""

import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from eglpp.affinity import AffinityConfig, calibrate_perplexity, nearest_labelled, tsne_affinities


def _points(seed, n, c, scale=1.0):
    return np.random.default_rng(seed).normal(size=(n, c)) * scale


def test_calibration_equals_sklearn_binary_search():
    from sklearn.manifold._utils import _binary_search_perplexity

    zu, zl = _points(0, 60, 5), _points(1, 40, 5)
    sq = cdist(zu, zl, "sqeuclidean").astype(np.float32)  # sklearn works in float32 distances
    expected = _binary_search_perplexity(sq, 10.0, 0)
    p, _ = calibrate_perplexity(sq.astype(np.float64), 10.0, tol=1e-5)
    np.testing.assert_allclose(p.numpy(), expected, atol=1e-6)


@pytest.mark.parametrize("scale", [0.01, 1.0, 30.0])
def test_calibration_equals_opentsne(scale):
    from openTSNE import _tsne

    zu, zl = _points(2, 50, 8, scale), _points(3, 90, 8, scale)
    dist = cdist(zu, zl)  # openTSNE squares the distances itself
    perp = np.full(len(zu), 20.0)
    expected = np.asarray(_tsne.compute_gaussian_perplexity(dist, perp))
    p, beta = calibrate_perplexity(dist**2, 20.0, tol=1e-10)
    np.testing.assert_allclose(p.numpy(), expected, atol=1e-6)
    entropy_bits = -(p * torch.log2(p.clamp_min(1e-300))).sum(1)
    np.testing.assert_allclose(2.0 ** entropy_bits.numpy(), 20.0, rtol=1e-6)
    # beta is 1/(2 sigma^2): p ∝ exp(-beta d^2)
    ratio = np.log(p[:, 0].numpy() / p[:, 1].numpy())
    np.testing.assert_allclose(ratio, beta.numpy() * (dist[:, 1] ** 2 - dist[:, 0] ** 2), atol=1e-8)


def test_reference_entropy_has_effective_perplexity_near_75():
    zu, zl = _points(4, 10, 4), _points(5, 500, 4)
    p, _ = calibrate_perplexity(cdist(zu, zl, "sqeuclidean"), 20.0, tol=1e-9, entropy="reference")
    entropy_nats = -(p * torch.log(p.clamp_min(1e-300))).sum(1).numpy()
    np.testing.assert_allclose(np.exp(entropy_nats), math.exp(math.log2(20.0)), rtol=1e-6)
    assert 75 < math.exp(math.log2(20.0)) < 76


def test_nearest_labelled_chunked_equals_dense_sort():
    zu, zl = _points(6, 37, 3), _points(7, 23, 3)
    d, nb = nearest_labelled(zu, zl, 5, chunk_size=4)
    dense = cdist(zu, zl, "sqeuclidean")
    np.testing.assert_array_equal(nb, np.argsort(dense, axis=1)[:, :5])
    np.testing.assert_allclose(d, np.sort(dense, axis=1)[:, :5], atol=1e-10)


@pytest.mark.parametrize("renormalise", [False, True])
def test_all_calibration_topk_equals_dense_opentsne(renormalise):
    from openTSNE import _tsne

    zu, zl = _points(8, 30, 6), _points(9, 70, 6)
    cfg = AffinityConfig(perplexity=15, k=10, renormalise=renormalise, tol=1e-10, chunk_size=7)
    a = tsne_affinities(zu, zl, cfg)
    dist = cdist(zu, zl)
    full = np.asarray(_tsne.compute_gaussian_perplexity(dist, np.full(len(zu), 15.0)))
    order = np.argsort(dist, axis=1)[:, :10]
    expected = np.take_along_axis(full, order, axis=1)
    if renormalise:
        expected = expected / expected.sum(1, keepdims=True)
        np.testing.assert_allclose(a.p.sum(1), 1.0, atol=1e-12)
    else:
        assert (a.p.sum(1) < 1.0).all()
    np.testing.assert_array_equal(a.neighbours, order)
    np.testing.assert_allclose(a.p, expected, atol=1e-6)


def test_neighbour_calibration_equals_opentsne_on_the_neighbours():
    from openTSNE import _tsne

    zu, zl = _points(10, 25, 4), _points(11, 200, 4)
    cfg = AffinityConfig(perplexity=5, k=8, calibration="neighbours", tol=1e-10)
    a = tsne_affinities(zu, zl, cfg)  # n_calibration = max(8, 15) = 15
    dist = np.sort(cdist(zu, zl), axis=1)[:, :15]
    expected = np.asarray(_tsne.compute_gaussian_perplexity(dist, np.full(len(zu), 5.0)))[:, :8]
    np.testing.assert_allclose(a.p, expected, atol=1e-6)
    # with 3·perplexity calibration neighbours it approximates calibrating on all of L
    full = tsne_affinities(zu, zl, AffinityConfig(perplexity=5, k=8, tol=1e-10))
    np.testing.assert_array_equal(a.neighbours, full.neighbours)
    assert np.abs(a.p - full.p).max() < 0.05


def test_k_larger_than_labelled_is_clamped_and_p_sums_to_one():
    a = tsne_affinities(_points(12, 5, 2), _points(13, 3, 2), AffinityConfig(k=30))
    assert a.neighbours.shape == (5, 3) and a.p.shape == (5, 3)
    np.testing.assert_allclose(a.p.sum(1), 1.0, atol=1e-12)


def test_far_away_points_do_not_underflow():
    zl = _points(14, 20, 3)
    a = tsne_affinities(zl[:2] + 1e4, zl, AffinityConfig(perplexity=5, k=5))
    assert np.isfinite(a.p).all() and (a.p > 0).all()


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="perplexity"):
        AffinityConfig(perplexity=0)
    with pytest.raises(ValueError, match="calibration"):
        AffinityConfig(calibration="some")
    with pytest.raises(ValueError, match="channels"):
        tsne_affinities(np.zeros((2, 3)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="empty"):
        tsne_affinities(np.zeros((2, 3)), np.zeros((0, 3)))
    with pytest.raises(ValueError, match="NaN"):
        tsne_affinities(np.full((2, 3), np.nan), np.zeros((4, 3)))


@pytest.mark.parametrize("calibration", ["all", "neighbours"])
def test_chunks_write_the_same_rows_as_one_chunk(calibration):
    """Each chunk lands in its own rows of the preallocated outputs, whatever its size."""
    zu, zl = _points(15, 23, 4).astype(np.float32), _points(16, 40, 4)
    cfg = AffinityConfig(perplexity=4, k=6, calibration=calibration, n_calibration=12)
    whole = tsne_affinities(zu, zl, AffinityConfig(**{**vars(cfg), "chunk_size": len(zu)}))
    for chunk_size in (1, 5, 22):
        a = tsne_affinities(zu, zl, AffinityConfig(**{**vars(cfg), "chunk_size": chunk_size}))
        np.testing.assert_array_equal(a.neighbours, whole.neighbours)
        for name in ("p", "beta", "sq_distances"):  # the matmul's rounding depends on its shape
            np.testing.assert_allclose(getattr(a, name), getattr(whole, name), rtol=1e-12)
    dense = cdist(zu.astype(np.float64), zl, "sqeuclidean")
    np.testing.assert_array_equal(whole.neighbours, np.argsort(dense, axis=1)[:, :6])
    np.testing.assert_allclose(whole.sq_distances, np.sort(dense, axis=1)[:, :6], atol=1e-9)
    assert whole.p.flags.c_contiguous and whole.neighbours.dtype == np.int64


def test_non_finite_row_in_a_later_chunk_is_reported():
    zu = _points(17, 10, 3)
    zu[8, 1] = np.inf
    with pytest.raises(ValueError, match="embeddings_unlabelled contains NaN or infinite"):
        tsne_affinities(zu, _points(18, 5, 3), AffinityConfig(k=2, chunk_size=3))
    with pytest.raises(ValueError, match="embeddings_unlabelled contains NaN or infinite"):
        nearest_labelled(zu, _points(18, 5, 3), 2, chunk_size=3)
    with pytest.raises(ValueError, match="embeddings_labelled contains NaN"):
        nearest_labelled(_points(19, 2, 3), np.full((3, 3), np.nan), 2)


def test_rows_no_beta_can_calibrate_stop_at_once():
    """Identical embeddings, one labelled point, fewer candidates than the perplexity: no β
    reaches the target, so the row gets the uniform p (β = 0) without 200 halvings."""
    d = torch.tensor([[4.0, 4.0, 4.0], [0.0, 1.0, 9.0], [2.0, 2.0, 2.0]], dtype=torch.float64)
    p, beta = calibrate_perplexity(d, perplexity=2.0)
    assert beta[0] == 0 and beta[2] == 0 and 0 < beta[1] < 1e3
    torch.testing.assert_close(p[0], torch.full((3,), 1 / 3, dtype=torch.float64))
    p, beta = calibrate_perplexity(torch.tensor([[5.0]]), perplexity=3.0)  # one labelled point
    assert beta.tolist() == [0.0] and p.tolist() == [[1.0]]
    p, beta = calibrate_perplexity(torch.tensor([[0.0, 1.0, 4.0]]), perplexity=5.0)  # 5 > M = 3
    assert beta.tolist() == [0.0]
    zu, zl = np.ones((4, 3)), np.ones((6, 3))  # identical embeddings, through the public call
    a = tsne_affinities(zu, zl, AffinityConfig(perplexity=3.0, k=2))
    assert np.all(a.beta == 0) and np.allclose(a.p, 1 / 6)


def test_calibrated_rows_hit_the_target_perplexity():
    """2^H of each row is the target to the bisection's tolerance (a loose tolerance fails)."""
    rng = np.random.default_rng(3)
    zu, zl = rng.normal(size=(30, 4)), rng.normal(size=(80, 4))
    d = torch.as_tensor(cdist(zu, zl, "sqeuclidean"))
    for perplexity in (5.0, 20.0):
        p, _ = calibrate_perplexity(d, perplexity)
        entropy_bits = -(p * torch.log2(p.clamp_min(1e-300))).sum(dim=1)
        np.testing.assert_allclose(2 ** entropy_bits.numpy(), perplexity, rtol=1e-4)
    a = tsne_affinities(zu, zl, AffinityConfig(perplexity=7.0, k=80))  # every point kept
    entropy_bits = -(a.p * np.log2(np.clip(a.p, 1e-300, None))).sum(axis=1)
    np.testing.assert_allclose(2**entropy_bits, 7.0, rtol=1e-4)
