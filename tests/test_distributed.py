"""Scoring sharded across 2 CPU processes (torchrun, gloo) equals one process's scoring."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from eglpp.distributed import gather_rows, is_distributed, shard_rows, sharded

HERE = Path(__file__).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(n: int, *command: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    launcher = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={n}"]
    launcher += ["--nnodes=1", "--master_addr=127.0.0.1", f"--master_port={_free_port()}"]
    proc = subprocess.run(
        launcher + list(command), env=env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.mark.parametrize("n_rows,world,align", [(0, 2, 1), (11, 2, 2), (10, 3, 2), (5, 8, 1)])
def test_shards_tile_the_rows_in_rank_order(n_rows, world, align):
    shards = [shard_rows(n_rows, r, world, align) for r in range(world)]
    covered = np.concatenate([np.arange(s.start, s.stop) for s in shards])
    assert covered.tolist() == list(range(n_rows))
    assert all(s.start % align == 0 for s in shards if s.stop > s.start)
    sizes = [s.stop - s.start for s in shards]
    assert max(sizes) - min(sizes) <= align


def test_shard_rows_rejects_bad_arguments():
    with pytest.raises(ValueError, match="rank"):
        shard_rows(10, 2, 2)
    with pytest.raises(ValueError, match="align"):
        shard_rows(10, 0, 2, align=0)


def test_one_process_is_a_no_op():
    assert not is_distributed()
    seen = []
    out = sharded(lambda rows: seen.append(rows) or np.arange(rows.start, rows.stop), 7, align=3)
    assert seen == [slice(0, 7)] and out.tolist() == list(range(7))
    with pytest.raises(KeyError):
        gather_rows(KeyError("boom"), 3)


def test_two_processes_score_like_one(tmp_path):
    _torchrun(2, str(HERE / "distributed_worker.py"), str(tmp_path))
    ranks = [json.loads((tmp_path / f"rank-{r}.json").read_text()) for r in range(2)]
    assert [(r["active"], r["rank"], r["world"]) for r in ranks] == [(True, 0, 2), (True, 1, 2)]
    assert [r["shard"] for r in ranks] == [[0, 6], [6, 11]]  # whole batches of 2 per rank
    for estimator in ("exact", "approx"):
        single = np.array(ranks[0][estimator]["single"]["gradnorms"])
        assert single.shape == ((11, 3) if estimator == "exact" else (11,))
        assert np.all(single > 0)
        for r in ranks:
            found = r[estimator]
            np.testing.assert_allclose(found["sharded"]["gradnorms"], single, rtol=1e-6)
            assert found["sharded"]["query"] == found["single"]["query"]
            assert found["sharded"]["query"] == ranks[0][estimator]["single"]["query"]
