"""The ``eglpp`` command's thread default: set before torch loads, or it does nothing."""

import json
import os
import subprocess
import sys

from eglpp.console import SMALL, thread_policy

# What the installed ``eglpp`` script does (``from eglpp.console import main``; ``main()``),
# then what torch ended up with.
SCRIPT = """
import json, os, sys
from eglpp.console import main, usable_cores
loaded_early = "torch" in sys.modules
sys.argv = ["eglpp", "--help"]
try:
    main()
except SystemExit:
    pass
import torch
print(json.dumps({"loaded_early": loaded_early, "threads": torch.get_num_threads(),
                  "cores": usable_cores(), "policy": os.environ.get("OMP_WAIT_POLICY")}))
"""


def _run(env: dict) -> dict:
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                          text=True, check=True)  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_command_applies_its_thread_default_before_torch_loads():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "MKL_"))}
    got = _run(env)
    assert not got["loaded_early"], "importing eglpp.console loaded torch: the policy is too late"
    assert got["policy"] == "PASSIVE"
    if got["cores"] <= SMALL:
        assert got["threads"] == 1, got


def test_the_users_own_omp_settings_win():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "MKL_"))}
    got = _run({**env, "OMP_NUM_THREADS": "2"})
    assert got["threads"] == 2 and got["policy"] is None
    assert thread_policy({"OMP_PROC_BIND": "true"}, cores=1) == {}
