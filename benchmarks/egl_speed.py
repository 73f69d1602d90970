"""EGL++ scoring speed: per-example gradient norms and affinities (issue 5's benchmark table).

Rows (unlabelled images scored per second, K neighbour labels each):

- ``naive``: one forward and one backward per (image, neighbour) pair, autograd;
- ``k-copies``: the reference's scheme without its hooks: K copies of each image in a batch,
  per-copy gradients with ``torch.func`` (K forwards per image, vectorised);
- ``exact auto``: eglpp's default (``method="auto"``: per-layer norms where every parameter is
  a layer's, else vmap; the choice is printed);
- ``exact vmap``: ``eglpp.gradnorm.per_example_gradnorms``: one forward per image, the K
  vector-Jacobian products vmapped (also vmapped over the images of a batch);
- ``exact hooks``: ``eglpp.gradnorm.hooks``: one batched forward, one backward carrying all
  K × B cotangents (data gradients only), per-layer norms from activations × output gradients;
- ``… conv_linear`` / ``… last``: restricted to conv/linear parameters (the paper's Goodfellow
  approximation) or to the last layer;
- ``approx m+R vmap`` / ``… hooks``: ``eglpp.gradnorm.approx``: the m most probable neighbours
  exactly, the rest by their p-weighted mean cotangent plus R random-sign probes of its spread,
  m + 1 + R products per image (per-example gradients with torch.func, or per-layer norms from
  one backward carrying all the cotangents);
- ``peer …``: BackPACK's ``BatchL2Grad`` and Opacus' ``GradSampleModule`` on K copies of each
  image, and plain torch.func (``benchmarks/egl_peers.py``), each where installed
  (``--skip-peers``);
- ``bound``: ``1 forward + K backward`` per image at the training kernels' speed (a batched
  forward and forward+backward timed separately), the ceiling for any exact method that does
  one backward per neighbour.

Rank agreement (Spearman, and overlap of the top 10 %) of each approximate score with the exact
EGL++ score is measured on a model trained on rendered people (``--train-epochs``), or on a
trained checkpoint (``--checkpoint``, e.g. an experiment's ``run-00/base/model.pt``); the
model's PCK@0.2 on the rank pool is reported beside it. Each row reports its peak memory: on
CUDA ``torch.cuda.max_memory_allocated`` (reset before the row), on Linux CPUs the process's
peak resident memory during the row above what it held before it (``VmHWM``, reset through
``/proc/self/clear_refs``; tracemalloc does not see torch's allocations).
Affinities: ``eglpp.affinity.tsne_affinities`` against openTSNE's ``PerplexityBasedNN.to_new``
on random embeddings.

``--model PKG.MODULE:FACTORY`` (imported as ``eglpp select --model`` does, from the current
folder; ``--model-embedding`` the submodule of its embedding) times a network of heatmap
predictions (B, J, h, w) beside the hourglass: the same rows (random-initialised, no PCK) in the
JSON's ``model`` entry, e.g. the tests' SimpleBaseline (ResNet-18 + 3 deconvolutions)::

    cd tests/foreign && python ../../benchmarks/egl_speed.py --model \
        foreign_networks:simple_baseline --model-embedding layer4 --threads 1 --skip-affinity

Usage::

    python benchmarks/egl_speed.py --out benchmarks/results/egl_speed_cpu.json      # CPU sizes
    python benchmarks/egl_speed.py --paper-size --device cuda --out egl_speed_gpu.json
"""

from __future__ import annotations

import argparse
import itertools
import platform
import time
from collections.abc import Callable

import numpy as np
import torch
from egl_peers import available_peers  # benchmarks/egl_peers.py, beside this script
from torch.func import functional_call, grad, vmap
from torch.utils.data import Subset

from eglpp.affinity import AffinityConfig, tsne_affinities
from eglpp.experiment.config import ExperimentConfig
from eglpp.experiment.data import build_data
from eglpp.gradnorm.approx import expected_gradnorms
from eglpp.gradnorm.base import GradNormConfig, heatmaps_of
from eglpp.gradnorm.exact import per_example_gradnorms
from eglpp.gradnorm.plan import plan_gradnorms
from eglpp.io import atomic_write_json
from eglpp.pose.checkpoint import load_model, save_checkpoint
from eglpp.pose.datasets.synthetic import RenderConfig, SyntheticPoseDataset
from eglpp.pose.heatmaps import (
    gaussian_heatmaps,
    heatmap_loss,
    heatmap_loss_per_example,
    input_to_heatmap,
)
from eglpp.pose.hourglass import HourglassConfig, StackedHourglass
from eglpp.pose.inference import evaluate
from eglpp.pose.train import TrainConfig, fit
from eglpp.practitioner.foreign import import_factory
from eglpp.scoring.contract import ModelContract
from eglpp.scoring.forward import forward_pool
from eglpp.stats import rank_agreement as agreement

#: The training loss that the gradient norms differentiate (one example at a time).
LOSS = heatmap_loss
METHODS = (
    ("auto", "all"),
    ("vmap", "all"),
    ("hooks", "all"),
    ("vmap", "conv_linear"),
    ("hooks", "conv_linear"),
    ("vmap", "last"),
)


def _loss(pred, target, weight):
    return heatmap_loss_per_example(pred, target, weight).sum()


def _status_kib(field: str) -> int:
    """A ``/proc/self/status`` field in KiB (-1 where there is none)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


class PeakMemory:
    """Peak memory of each row: CUDA's allocator peak, or the CPU process's resident peak
    (``VmHWM``) above the resident memory at the reset, in MiB (None where unmeasurable)."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.start = device, 0

    def reset(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            return
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # VmHWM := VmRSS (Linux >= 4.0)
            self.start = _status_kib("VmRSS")
        except OSError:
            self.start = -1

    def peak_mib(self) -> float | None:
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        hwm = _status_kib("VmHWM")
        return None if self.start < 0 or hwm < 0 else (hwm - self.start) / 1024


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rate(fn: Callable[[int], None], n_images: int, batch: int, device) -> float:
    """Images per second of ``fn(start)`` over ``n_images`` in batches, after one warm-up."""
    fn(0)
    _sync(device)
    t0 = time.perf_counter()
    for start in range(0, n_images, batch):
        fn(start)
    _sync(device)
    return n_images / (time.perf_counter() - t0)


def _try_rate(fn: Callable[[int], None], n_images: int, batch: int, device) -> float | None:
    """:func:`_rate`, or None when the device runs out of memory (the row is then reported)."""
    try:
        return _rate(fn, n_images, batch, device)
    except torch.OutOfMemoryError:
        if device.type == "cuda":
            torch.cuda.empty_cache()
        return None


def _naive(model, x, y, w) -> torch.Tensor:
    params = [p for p in model.parameters() if p.requires_grad]
    out = torch.zeros(y.shape[:2], device=x.device)
    for b in range(x.shape[0]):
        for k in range(y.shape[1]):
            loss = _loss(heatmaps_of(model(x[b : b + 1])), y[b, k][None], w[b, k][None])
            out[b, k] = sum(g.pow(2).sum() for g in torch.autograd.grad(loss, params))
    return out


def _k_copies(model, x, y, w) -> torch.Tensor:
    params = {n: p.detach() for n, p in model.named_parameters()}
    buffers = dict(model.named_buffers())

    def one(image, target, weight):
        def loss(p):
            out = heatmaps_of(functional_call(model, (p, buffers), (image[None],)))
            return _loss(out, target[None], weight[None])

        return sum(g.pow(2).sum() for g in grad(loss)(params).values())

    B, K = y.shape[:2]
    xs = x[:, None].expand(B, K, *x.shape[1:]).reshape(B * K, *x.shape[1:])  # K copies
    return vmap(one)(xs, y.reshape(B * K, *y.shape[2:]), w.reshape(B * K, -1)).reshape(B, K)


def _bound(model, x, K: int, device) -> float:
    """Images/s of 1 forward + K backward at batched training speed."""
    model.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    with torch.no_grad():
        t_f = 1.0 / _rate(lambda s: model(x), len(x), len(x), device)

    def fwd_bwd(_):
        torch.autograd.grad(heatmaps_of(model(x)).square().mean(), params)

    t_fb = 1.0 / _rate(fwd_bwd, len(x), len(x), device)
    return 1.0 / (t_f + K * max(t_fb - t_f, 0.0))


def _datasets(args, size: int, device):
    """(train, pool, labelled) rendered people: the kinematic prior, or with ``--poses`` the
    experiment's rendered LSP→LSPET data (train and labelled: LSP's training poses in the "lsp"
    look; pool: LSPET poses in the "lspet" look)."""
    n_pool = max(args.pool, args.rank_pool, args.bound_batch)
    if not args.poses:
        render = RenderConfig(size=size)
        return (
            lambda: SyntheticPoseDataset(args.train_images, render, seed=10, device=device),
            SyntheticPoseDataset(n_pool, render, seed=11, device=device),
            SyntheticPoseDataset(args.labelled, render, seed=12, device=device),
        )
    cfg = ExperimentConfig(
        dataset="lsp-lspet-rendered",
        poses=args.poses,
        input_size=size,
        n_pool=n_pool,
        n_test=1,
        initial=1,
        cycles=1,
        budget=1,
    )
    data = build_data(cfg, device=str(device))
    return (
        lambda: Subset(data.base, range(min(args.train_images, len(data.base)))),
        data.pool,
        Subset(data.base, range(min(args.labelled, len(data.base)))),
    )


def _model(args, train, device) -> tuple[StackedHourglass, int]:
    """The scored network and its input size: a checkpoint, or one trained here."""
    if args.checkpoint:
        model = load_model(args.checkpoint).to(device).eval()
        return model
    size, cfg = (256, HourglassConfig(2, 256, 14, 4)) if args.paper_size else (64, None)
    cfg = cfg or HourglassConfig(n_stacks=2, channels=args.channels, n_joints=14, depth=3)
    model = StackedHourglass(cfg).reset_parameters(torch.Generator().manual_seed(0)).to(device)
    if args.train_epochs:
        train = train()
        tcfg = TrainConfig(
            epochs=args.train_epochs, batch_size=16, lr=1e-3, optimizer="adam", schedule="cosine"
        )
        fit(model, train, tcfg, seed=0, device=device, progress=False)
    if args.save_model:
        save_checkpoint(args.save_model, model)
    return model.eval()


def _stack(dataset, device) -> dict[str, torch.Tensor]:
    items = [dataset[i] for i in range(len(dataset))]
    return {
        k: torch.stack([it[k] for it in items]).to(device) for k in ("image", "joints", "visible")
    }


def _foreign(args, device) -> ModelContract:
    """The ``--model`` network, random-initialised by its factory, in eval mode."""
    factory, _ = import_factory(args.model)
    model = factory().to(device).eval()
    return ModelContract(model, embedding=args.model_embedding)


def _embeddings(model, net: ModelContract | None, x: torch.Tensor) -> np.ndarray:
    if net is not None:
        return forward_pool(net, x, want=frozenset({"embeddings"}), amp=False).embeddings
    with torch.no_grad():
        z = torch.cat([model(x[i : i + 32]).embedding for i in range(0, len(x), 32)])
    return z.cpu().numpy()


def _data(args, device, net: ModelContract | None = None):
    size = args.input_size or (256 if args.paper_size else 64)
    train, pool, lab_set = _datasets(args, size, device)
    model = _model(args, train, device) if net is None else net.model
    n_pool = max(args.pool, args.rank_pool, args.bound_batch)
    lab = _stack(lab_set, device)
    x_pool = _stack(Subset(pool, range(n_pool)), device)["image"]
    with torch.no_grad():
        h = heatmaps_of(model(x_pool[:1])).shape[-1]
    stride = size // h
    joints = input_to_heatmap(lab["joints"], stride)
    y = gaussian_heatmaps(joints, lab["visible"], (h, h), 1.0).to(device)
    w = lab["visible"].float()
    zu, zl = _embeddings(model, net, x_pool), _embeddings(model, net, lab["image"])
    aff = tsne_affinities(zu, zl, AffinityConfig(k=args.k), device=device)
    nb = torch.as_tensor(aff.neighbours, device=device)
    rank_set = Subset(pool, range(min(args.rank_pool, n_pool)))
    quality = None
    if net is None:
        quality = evaluate(model, rank_set, device=device, amp=False)["mean"]
        print(f"model: PCK@0.2 {100 * quality:.1f} % on the {len(rank_set)} rank-agreement images")
    p = torch.as_tensor(aff.p, dtype=torch.float32, device=device)
    return model, x_pool, y[nb], w[nb], p, quality


def gradnorm_rows(args, device, net: ModelContract | None = None) -> tuple[list[dict], dict]:
    model, x, y, w, p, quality = _data(args, device, net)
    K, rows = y.shape[1], []
    peak = PeakMemory(device)
    chosen = plan_gradnorms(model, x[:1], "all", prediction=None)
    print(f"method auto chooses: {chosen.describe()}")
    peak.reset()

    def add(method, batch, rate, **extra):
        extra["peak_mem_mib"] = peak.peak_mib()
        rows.append({"method": method, "batch": batch, "images_per_s": rate, **extra})
        shown = "out of memory" if rate is None else f"{rate:9.2f} images/s"
        mem = "" if extra["peak_mem_mib"] is None else f"  peak {extra['peak_mem_mib']:8.0f} MiB"
        print(f"{method:<40} batch {batch:>3}  {shown}{mem}", flush=True)
        peak.reset()

    n = args.pool
    if not args.skip_naive:
        add(
            "naive",
            1,
            _try_rate(
                lambda s: _naive(model, x[s : s + 1], y[s : s + 1], w[s : s + 1]),
                min(n, 4),
                1,
                device,
            ),
        )
    b0 = args.batch_sizes[0]
    if not args.skip_k_copies:
        add(
            "k-copies",
            b0,
            _try_rate(
                lambda s: _k_copies(model, *(t[s : s + b0] for t in (x, y, w))), n, b0, device
            ),
        )
    for name, run in ({} if args.skip_peers else available_peers()).items():
        add(
            name,
            b0,
            _try_rate(
                lambda s, r=run: r(model, *(t[s : s + b0] for t in (x, y, w))), n, b0, device
            ),
        )
    gen = torch.Generator().manual_seed(0)
    for b in args.batch_sizes:
        for method, params in METHODS:
            if f"{method}:{params}" not in args.methods:
                continue
            cfg = GradNormConfig(
                params=params,
                method=method,
                max_grad_elements=args.max_grad_elements,
                max_memory=args.max_memory,
            )
            add(
                f"exact {method} {params}",
                b,
                _try_rate(
                    lambda s, c=cfg, b=b: per_example_gradnorms(
                        model, *(t[s : s + b] for t in (x, y, w)), config=c, loss_fn=LOSS
                    ),
                    n,
                    b,
                    device,
                ),
            )
        timed = [mth for mth in ("vmap", "hooks") if any(a.startswith(mth) for a in args.methods)]
        for (m, R), method in itertools.product(args.approx, timed):
            cfg = GradNormConfig(method=method, max_grad_elements=args.max_grad_elements)
            signs = torch.randint(0, 2, (len(x), R, K), generator=gen).to(device) * 2.0 - 1.0
            add(
                f"approx {m}+{R} {method}",
                b,
                _try_rate(
                    lambda s, b=b, c=cfg, e=signs, m=m: expected_gradnorms(
                        model,
                        *(t[s : s + b] for t in (x, y, w, p, e)),
                        n_exact=m,
                        config=c,
                        loss_fn=LOSS,
                    ),
                    n,
                    b,
                    device,
                ),
                products=min(m, K) + (m < K) * (1 + R),
            )
    bb = min(args.bound_batch, len(x))
    add("bound 1 fwd + K bwd", bb, _bound(model, x[:bb], K, device))
    rank = rank_agreement(model, x, y, w, p, args)
    return rows, {"model_pck": quality, "auto_chooses": chosen.describe(), **rank}


def rank_agreement(model, x, y, w, p, args) -> dict:
    n, b = args.rank_pool, args.batch_sizes[-1]

    def scores(fn):
        return torch.cat([fn(i, slice(i, i + b)) for i in range(0, n, b)]).double().cpu().numpy()

    def eglpp(params):
        cfg = GradNormConfig(params=params)
        return scores(
            lambda i, s: (
                p[s] * per_example_gradnorms(model, x[s], y[s], w[s], config=cfg, loss_fn=LOSS)
            ).sum(1)
        )

    exact = eglpp("all")
    out = {"n_images": n, "top": agreement(exact, exact)["top"]}
    candidates = {"conv_linear": eglpp("conv_linear"), "last": eglpp("last")}
    gen = torch.Generator().manual_seed(1)
    for m, R in args.rank_approx:
        signs = torch.randint(0, 2, (len(x), R, y.shape[1]), generator=gen).to(x.device) * 2.0 - 1
        candidates[f"approx {m}+{R}"] = scores(
            lambda i, s, e=signs, m=m: expected_gradnorms(
                model, x[s], y[s], w[s], p[s], e[s], n_exact=m, loss_fn=LOSS
            )
        )
    for name, approx in candidates.items():
        a = agreement(exact, approx)
        out[name] = {"spearman": a["spearman"], "top_overlap": a["top_overlap"]}
        print(
            f"rank agreement {name:<28} spearman {a['spearman']:.4f}  top-{a['top']} overlap "
            f"{a['top_overlap']:.2f}"
        )
    return out


def affinity_rows(args, device) -> list[dict]:
    from openTSNE.affinity import PerplexityBasedNN

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(50, 256)) * 3
    U, L = args.affinity_unlabelled, args.affinity_labelled
    zu = (centres[rng.integers(50, size=U)] + rng.normal(size=(U, 256))).astype(np.float32)
    zl = (centres[rng.integers(50, size=L)] + rng.normal(size=(L, 256))).astype(np.float32)
    rows = []

    def timed(name, fn):
        t0 = time.perf_counter()
        fn()
        rows.append({"method": name, "U": U, "L": L, "seconds": time.perf_counter() - t0})
        print(f"affinity {name:<40} U={U} L={L}  {rows[-1]['seconds']:7.2f} s", flush=True)

    cfg = AffinityConfig(perplexity=20, k=30, calibration="neighbours")
    timed(
        "eglpp neighbours (60 nn, exact top-k)", lambda: tsne_affinities(zu, zl, cfg, device=device)
    )
    if U * L <= args.affinity_all_max:
        cfg_all = AffinityConfig(perplexity=20, k=30, calibration="all")
        timed("eglpp all labelled", lambda: tsne_affinities(zu, zl, cfg_all, device=device))
    for method in ("exact", "annoy"):

        def run(method=method):
            nn_aff = PerplexityBasedNN(
                zl, perplexity=20, method=method, n_jobs=args.threads, random_state=0, verbose=False
            )
            nn_aff.to_new(zu, perplexity=20)

        timed(f"openTSNE {method} (index + to_new)", run)
    return rows


def _settings(text: str) -> list[tuple[int, int]]:
    """``"8+0,0+4"`` -> [(8, 0), (0, 4)]: (neighbours taken exactly, probes)."""
    return [tuple(int(v) for v in item.split("+")) for item in text.split(",")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--paper-size", action="store_true", help="2-stack 256-ch hourglass, 256 px")
    ap.add_argument("--channels", type=int, default=32, help="CPU model width (2 stacks, depth 3)")
    ap.add_argument("--k", type=int, default=30)
    ap.add_argument("--pool", type=int, default=8, help="images timed per row")
    ap.add_argument("--rank-pool", type=int, default=48, help="images for rank agreement")
    ap.add_argument("--labelled", type=int, default=128)
    ap.add_argument("--batch-sizes", type=lambda s: [int(v) for v in s.split(",")], default=[4, 8])
    ap.add_argument(
        "--approx",
        type=_settings,
        default=[(12, 0), (8, 0), (0, 4)],
        help="timed approximate settings m+R (m exact neighbours, R probes), comma-separated",
    )
    ap.add_argument("--bound-batch", type=int, default=16, help="training batch for the bound")
    ap.add_argument("--train-images", type=int, default=512)
    ap.add_argument("--train-epochs", type=int, default=3)
    ap.add_argument("--skip-naive", action="store_true")
    ap.add_argument("--skip-k-copies", action="store_true", help="no k-copies row")
    ap.add_argument("--skip-peers", action="store_true", help="no BackPACK/Opacus/torch.func rows")
    ap.add_argument("--checkpoint", default=None, help="score this trained model (eglpp .pt)")
    ap.add_argument("--input-size", type=int, default=None, help="input px (default 64 / 256)")
    ap.add_argument(
        "--poses", default=None, help="folder with lsp/ and lspet/ joints.mat: rendered LSP→LSPET"
    )
    ap.add_argument("--save-model", default=None, help="save the model trained here")
    ap.add_argument(
        "--model", default=None, help="also time PKG.MODULE:FACTORY (heatmaps (B, J, h, w))"
    )
    ap.add_argument("--model-embedding", default=None, help="--model: submodule of the embedding")
    ap.add_argument(
        "--rank-approx",
        type=_settings,
        default=_settings("0+0,0+2,0+4,0+8,0+16,4+0,4+2,6+0,8+0,8+2,12+0"),
        help="approximate settings m+R whose rank agreement with exact is measured",
    )
    ap.add_argument(
        "--max-grad-elements",
        type=int,
        default=None,
        help="gradient entries held at once (default: 2**27 on CPU, 1/4 of free GPU memory)",
    )
    ap.add_argument(
        "--max-memory",
        default=None,
        help="bytes (e.g. 16GiB) the gradient norms' chunks may take (GradNormConfig.max_memory)",
    )
    ap.add_argument(
        "--methods",
        type=lambda s: s.split(","),
        default=[f"{m}:{p}" for m, p in METHODS],
        help="exact rows, method:params, comma-separated (default: all)",
    )
    ap.add_argument("--affinity-unlabelled", type=int, default=20000)
    ap.add_argument("--affinity-labelled", type=int, default=5000)
    ap.add_argument("--affinity-all-max", type=int, default=10**8)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--skip-affinity", action="store_true")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    rows, rank = gradnorm_rows(args, device)
    foreign = None
    if args.model:
        print(f"--model {args.model}:")
        model_rows, model_rank = gradnorm_rows(args, device, _foreign(args, device))
        foreign = {"spec": args.model, "gradnorms": model_rows, "rank_agreement": model_rank}
    affinity = [] if args.skip_affinity else affinity_rows(args, device)
    result = {
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "args": {k: v for k, v in vars(args).items()},
        "gradnorms": rows,
        "rank_agreement": rank,
        "affinity": affinity,
        **({"model": foreign} if foreign else {}),
    }
    if args.out:
        atomic_write_json(args.out, result)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
