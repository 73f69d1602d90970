"""lsp-lspet-rendered: ``n_base`` caps the base set of LSP's train poses (0: all 1000), so a
benchmark can start on the steep part of the learning curve (issue 27)."""

from pathlib import Path

import numpy as np
import pytest

from eglpp.experiment.config import config_from_dict, preset
from eglpp.experiment.data import build_data

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
pytestmark = pytest.mark.skipif(
    not (SHARED / "lsp" / "joints.mat").is_file(), reason="no ../shared/data/lsp/joints.mat"
)


def _data(n_base: int):
    cfg = config_from_dict(
        {"dataset": "lsp-lspet-rendered", "poses": str(SHARED), "n_base": n_base, "n_pool": 40,
         "n_test": 8, "initial": 4, "cycles": 1, "budget": 4, "input_size": 32},
        base=preset("tiny"),
    )  # fmt: skip
    return build_data(cfg)


def test_n_base_caps_the_rendered_base_set_to_its_first_poses():
    capped, whole = _data(50), _data(0)
    assert len(capped.base) == 50 and len(whole.base) == 1000
    np.testing.assert_array_equal(capped.base.joints, whole.base.joints[:50])
    assert capped.n_base == 50
