"""Everyday comfort of the CLI: every command's --help has an example; YAML configs are checked."""

import json
import re

import pytest
import yaml
from typer.testing import CliRunner

from eglpp.cli import COMMANDS as CLI_COMMANDS
from eglpp.cli import app

COMMANDS = sorted(CLI_COMMANDS)


def _invoke(args):
    return CliRunner().invoke(app, args, env={"COLUMNS": "1000", "NO_COLOR": "1"})


def test_root_help_has_an_example_and_lists_every_command():
    res = _invoke(["--help"])
    assert res.exit_code == 0, res.output
    assert "Example: eglpp " in res.output
    for name in COMMANDS:
        assert name in res.output


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_help_has_an_example(name):
    res = _invoke([name, "--help"])
    assert res.exit_code == 0, res.output
    example = re.search(rf"Examples?:\s+(\$ )?eglpp {re.escape(name)}\b", res.output)
    assert example, f"`eglpp {name} --help` shows no example"


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"runs": 1, "cycels": 2}, "cycels"),  # a typo at the top level
        ({"model": {"chanels": 8}}, "chanels"),  # a typo inside a section
        ({"strategy": {"k": 4, "perplexty": 3.0}}, "perplexty"),
    ],
)
def test_run_config_rejects_unknown_keys_by_name(tmp_path, settings, named):
    config = tmp_path / "exp.yaml"
    config.write_text(yaml.safe_dump(settings))
    out = tmp_path / "run"
    res = _invoke(["run", "--config", str(config), "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert "unknown key" in res.output and named in res.output
    assert str(config) in res.output, "the error names the file"
    assert not out.exists(), "nothing may run on a rejected config"


def test_run_config_that_is_not_a_mapping_is_rejected(tmp_path):
    config = tmp_path / "exp.yaml"
    config.write_text("- runs\n- 2\n")
    res = _invoke(["run", "--config", str(config), "--out", str(tmp_path / "run")])
    assert res.exit_code == 2 and "must hold a mapping" in res.output


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        ("runs", "expected KEY=VALUE"),
        ("strategy.perplexty=3", "perplexty"),
        ("runs.first=1", "runs must be int"),
        ("budget=ten", "budget must be int"),
        ("strategy.estimator=fast", "'exact' or 'approx'"),
    ],
)
def test_run_set_rejects_bad_settings_by_name(tmp_path, setting, named):
    out = tmp_path / "run"
    res = _invoke(["run", "--set", setting, "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert named in res.output
    assert not out.exists(), "nothing may run on a rejected setting"


@pytest.mark.parametrize("command", ["run", "train", "select"])
def test_an_unavailable_device_is_refused_before_any_work(tmp_path, command):
    import torch

    device = "cuda:7" if torch.cuda.is_available() else "cuda"
    if torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    out = tmp_path / "out"
    args = {
        "run": ["run", "--device", device, "--out", str(out)],
        "train": ["train", "--device", device, "--out", str(out)],
        "select": ["select", "--checkpoint", str(tmp_path / "m.pt"), "--labelled",
                   str(tmp_path / "l.json"), "--pool", str(tmp_path), "--budget", "1",
                   "--input-size", "64", "--device", device, "--out", str(out)],
    }[command]  # fmt: skip
    res = _invoke(args)  # (eglpp's main() turns the ValueError into a one-line error, exit 2)
    assert isinstance(res.exception, ValueError), (res.exit_code, res.output)
    why = "GPU(s)" if torch.cuda.is_available() else "use --device cpu"
    assert f"--device '{device}'" in str(res.exception) and why in str(res.exception)
    assert not out.exists()
    res = _invoke(["run", "--device", "tpu", "--out", str(out)])
    assert isinstance(res.exception, ValueError) and "not a torch device" in str(res.exception)


def test_run_from_yaml_then_report(tmp_path):
    """A valid YAML file runs the experiment (micro size); `eglpp report` then reads it."""
    config = tmp_path / "exp.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "strategies": ["random"],
                "runs": 1,
                "cycles": 1,
                "budget": 3,  # overridden by --set below
                "initial": 8,
                "n_pool": 20,
                "n_test": 8,
                "input_size": 32,
                "model": {"n_stacks": 1, "channels": 4, "depth": 2},
                "base_train": {"epochs": 1, "batch_size": 8},
                "cycle_train": {"epochs": 1, "batch_size": 8},
            }
        )
    )
    out = tmp_path / "run"
    settings = ["--set", "budget=4", "--set", "model.channels=8"]  # over the YAML file
    res = _invoke(
        ["run", "--preset", "tiny", "--config", str(config), *settings, "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    saved = json.loads((out / "config.json").read_text())
    assert saved["n_pool"] == 20 and saved["model"]["channels"] == 8 and saved["budget"] == 4
    assert json.loads((out / "results.json").read_text())["n_labelled"] == [8, 12]
    res = _invoke(["report", str(out)])
    assert res.exit_code == 0, res.output
    assert (out / "report.html").read_text().count('data-strategy="random"') == 3
