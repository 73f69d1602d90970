"""Run by ``tests/test_distributed.py`` under torchrun (2 processes, gloo), not collected itself.

Each rank computes EGL++'s gradient norms and selections sharded across the processes and, with
the one-process library functions, the same things on the whole pool; it writes both to
``<out>/rank-<r>.json`` for the test to compare.
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch

from eglpp.distributed import process_group, rank_and_size, shard_rows
from eglpp.gradnorm.approx import expected_pair_gradnorms
from eglpp.gradnorm.pool import pair_gradnorms
from eglpp.gradnorm.sharded import sharded_expected_pair_gradnorms, sharded_pair_gradnorms
from eglpp.pose.heatmaps import heatmap_loss
from eglpp.pose.hourglass import HourglassConfig, StackedHourglass
from eglpp.strategies import make_strategy
from eglpp.strategies.base import PoolInputs

U, L, K, BATCH, BUDGET = 11, 6, 3, 2, 4


def _problem():
    g = torch.Generator().manual_seed(0)
    model = StackedHourglass(HourglassConfig(n_stacks=1, channels=8, depth=2)).reset_parameters(g)
    images = torch.rand(U, 3, 32, 32, generator=g)
    targets = torch.rand(L, 14, 8, 8, generator=g)
    weights = (torch.rand(L, 14, generator=g) > 0.2).float()
    zu = torch.randn(U, 4, generator=g).double().numpy()
    zl = torch.randn(L, 4, generator=g).double().numpy()
    return model, images, targets, weights, zu, zl


def main(out: Path) -> None:
    model, images, targets, weights, zu, zl = _problem()
    kw = {"batch_size": BATCH, "loss_fn": heatmap_loss}
    probes = {"n_exact": 1, "n_probes": 2, "seed": 5, **kw}
    with process_group("cpu") as active:
        rank, world = rank_and_size()
        result = {"active": active, "rank": rank, "world": world}
        shard = shard_rows(U, rank, world, BATCH)
        result["shard"] = [shard.start, shard.stop]
        for estimator in ("exact", "approx"):
            strategy = make_strategy("egl++", k=K, perplexity=2.0, estimator=estimator)
            found = {}
            for mode, pair_fn, expected_fn in (
                ("sharded", sharded_pair_gradnorms, sharded_expected_pair_gradnorms),
                ("single", pair_gradnorms, expected_pair_gradnorms),
            ):
                calls: dict[str, np.ndarray] = {}

                def pair(nb, _source, fn=pair_fn, calls=calls):
                    calls["g"] = fn(model, images, targets, weights, nb, **kw)
                    return calls["g"]

                def expected(nb, p, _source, fn=expected_fn, calls=calls):
                    calls["g"] = fn(model, images, targets, weights, nb, p, **probes)
                    return calls["g"]

                inputs = PoolInputs(
                    n_unlabelled=U,
                    embeddings_unlabelled=zu,
                    embeddings_labelled=zl,
                    pair_gradnorms=pair,
                    expected_gradnorms=expected,
                )
                query = strategy.select(inputs, BUDGET, np.random.default_rng(0))
                found[mode] = {"gradnorms": calls["g"].tolist(), "query": query.tolist()}
            result[estimator] = found
        (out / f"rank-{rank}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
