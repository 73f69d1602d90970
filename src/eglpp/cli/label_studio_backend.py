"""``eglpp label-studio-backend``: eglpp as Label Studio's ML backend, a live loop.

Flags in, :mod:`eglpp.service.label_studio_backend` out (FastAPI on uvicorn: the optional extra
``eglpp[label-studio-backend]``).
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import torch
import typer

from eglpp.devices import check_device
from eglpp.io import check_output, run_lock
from eglpp.practitioner.label_studio import connect
from eglpp.practitioner.live_loop import LiveLoop, RetrainConfig
from eglpp.practitioner.select import SelectConfig
from eglpp.practitioner.settings import (
    build_scoring,
    build_strategy,
    checkpoint_settings,
    parse_params,
)

try:  # the optional extra eglpp[label-studio-backend]
    import uvicorn

    from eglpp.service.label_studio_backend import create_app
    from eglpp.service.worker import Worker
except ImportError as exc:  # refused when the command runs; --help still works
    uvicorn, _MISSING = None, exc.name

__all__ = ["label_studio_backend", "TOKEN_VARIABLE", "is_loopback"]

#: The environment variable of the backend's access token (Label Studio sends it).
TOKEN_VARIABLE = "EGLPP_BACKEND_TOKEN"


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _config(checkpoint, strategy, param, estimator, input_size, sigma, chunk_size, batch_size,
            device, seed) -> SelectConfig:  # fmt: skip
    """The scoring settings, as ``eglpp select`` makes them (the budget: set per scoring)."""
    found = checkpoint_settings(checkpoint)
    size = input_size or found.get("input_size")
    if size is None:
        raise ValueError(
            f"--input-size is needed: no train.json beside {checkpoint} records the input size"
        )
    return SelectConfig(
        budget=1, strategy=build_strategy(strategy, parse_params(param), estimator),
        scoring=build_scoring(), input_size=int(size), batch_size=batch_size,
        chunk_size=chunk_size, device=device, sigma=float(sigma or found.get("sigma", 1.0)),
        seed=seed,
    )  # fmt: skip


def label_studio_backend(
    checkpoint: Path = typer.Option(..., help="Model checkpoint (eglpp train / eglpp run)."),
    labelled: Path = typer.Option(..., help="Labelled set: COCO keypoints .json (or .mat)."),
    pool: Path = typer.Option(..., help="Folder of images, or a .csv/.json list with boxes."),
    state: Path = typer.Option(
        ..., help="State folder: the annotations received, the retrained models, their scores "
        "(the truth: restart with the same folder and nothing is lost)."
    ),
    strategy: str = typer.Option("egl++", help="random | coreset | multipeak | egl++"),
    param: list[str] = typer.Option([], help="Strategy hyperparameter NAME=VALUE, repeatable."),
    estimator: str = typer.Option("exact", help="EGL++ gradient norms: exact | approx."),
    input_size: int | None = typer.Option(None, help="Input px (default: from train.json)."),
    sigma: float | None = typer.Option(None, help="Label heatmap σ (default: from train.json)."),
    chunk_size: int = typer.Option(256, help="Pool images per resumable chunk."),
    batch_size: int = typer.Option(16),
    device: str = typer.Option("cpu", help="cpu | cuda | cuda:1 ..."),
    seed: int = typer.Option(0),
    threads: int | None = typer.Option(None, help="torch CPU threads."),
    retrain_every: int = typer.Option(
        10, help="Fine-tune after every N new annotations (0: never), in the background."
    ),
    retrain_epochs: int = typer.Option(5, help="Epochs of each fine-tuning."),
    retrain_lr: float = typer.Option(2.5e-4, help="Learning rate of the fine-tuning (Adam)."),
    accept_unchanged: bool = typer.Option(
        False, "--accept-unchanged", help="Record annotations submitted with the model's "
        "prediction unchanged (refused by default, as by eglpp import)."
    ),
    label_studio: str | None = typer.Option(
        None, "--label-studio", help="Label Studio URL: read the annotations made while the "
        "backend was down, and replace the open tasks' predictions after each retrain "
        "(API token: LABEL_STUDIO_API_KEY)."
    ),
    project: int | None = typer.Option(None, help="The Label Studio project served."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (other than loopback: "
                             f"an access token is required, {TOKEN_VARIABLE})."),
    port: int = typer.Option(9090, help="Port to listen on."),
) -> None:
    """Serve eglpp as Label Studio's ML backend: predictions scored by the strategy, retrained
    as annotators submit.

    Connect it in Label Studio (project Settings → Model, or POST /api/ml) at
    http://HOST:PORT; sort the Data Manager by prediction score, descending: the first task is
    the strategy's first choice. With an access token in EGLPP_BACKEND_TOKEN, Label Studio must
    send it (Authentication: Basic Auth, the token as password; the webhook: a header
    Authorization: Bearer TOKEN).

    Example:

        eglpp label-studio-backend --checkpoint runs/train/model.pt --labelled labelled.json \\
            --pool photos/ --state backend/ --retrain-every 10 \\
            --label-studio http://localhost:8080 --project 1
    """
    token = os.environ.get(TOKEN_VARIABLE, "").strip() or None
    if not is_loopback(host) and not token:
        raise ValueError(f"--host {host}: not loopback, so an access token is required: set "
                         f"{TOKEN_VARIABLE} (and Label Studio's Authentication to it)")  # fmt: skip
    if label_studio and project is None:
        raise ValueError(f"--label-studio {label_studio}: --project is needed too")
    if uvicorn is None:
        raise ValueError(f"eglpp label-studio-backend needs {_MISSING}: pip install "
                         "'eglpp[label-studio-backend]'")  # fmt: skip
    check_device(device)
    if threads:
        torch.set_num_threads(threads)
    config = _config(checkpoint, strategy, param, estimator, input_size, sigma, chunk_size,
                     batch_size, device, seed)  # fmt: skip
    if "predicted_loss" in config.strategy.needs and retrain_every:
        raise ValueError(f"--strategy {strategy}: its auxiliary head is not retrained here; "
                         "use egl++, coreset, multipeak or random, or --retrain-every 0")
    retrain = RetrainConfig(every=retrain_every, epochs=retrain_epochs, lr=retrain_lr)
    client = connect(label_studio) if label_studio else None
    with run_lock(check_output(state, "--state"), log=typer.echo):
        loop = LiveLoop(state, checkpoint, labelled, pool, config, retrain,
                        accept_unchanged=accept_unchanged, log=typer.echo)  # fmt: skip
        if client is not None:
            loop.use_label_config(client.project(project))
        scores = loop.scores()
        typer.echo(f"model version {scores.version} scored {len(scores.images)} pool images "
                   f"with {config.strategy.name}")  # fmt: skip
        worker = Worker(loop, client, project, log=typer.echo).start()
        app = create_app(loop, worker, project=project, token=token)
        typer.echo(f"eglpp label-studio-backend listening on http://{host}:{port}")
        uvicorn.run(app, host=host, port=port, log_level="warning")
        worker.stop()
