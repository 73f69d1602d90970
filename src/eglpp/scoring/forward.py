"""One pass of a contract's model over a data set: what the strategies and the outputs need.

:func:`forward_pool` runs the model in eval mode, in the data set's order, and keeps what is
asked: the embeddings, the heatmaps (the prediction read as (N, J, h, w): a (B, S, J, h, w)
prediction gives its last stack), the decoded joints (heatmaps by argmax with Newell's quarter
pixel, :func:`~eglpp.pose.heatmaps.decode_heatmaps`; a (B, J, 2) prediction as it is, input
px), the whole prediction, and an auxiliary module's predicted losses from the features. Items
are tensors, ``(input, ...)`` tuples or pose dicts (``"image"``, ``"index"``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from eglpp.pose.heatmaps import decode_heatmaps, heatmap_to_input
from eglpp.pose.inference import Predictions, amp_dtype, autocast
from eglpp.scoring.contract import ModelContract, input_of

__all__ = ["forward_pool", "heatmaps_of_prediction", "decode_prediction", "prediction_kind"]


def prediction_kind(shape: tuple[int, ...]) -> str:
    """``"heatmaps"`` for (B, J, h, w) or (B, S, J, h, w), ``"coordinates"`` for (B, J, 2),
    else ``"other"``."""
    if len(shape) in (4, 5):
        return "heatmaps"
    if len(shape) == 3 and shape[-1] == 2:
        return "coordinates"
    return "other"


def heatmaps_of_prediction(pred: Tensor, what: str = "multipeak") -> Tensor:
    """The (B, J, h, w) heatmaps of a heatmap prediction (a 5-D one's last stack)."""
    if pred.dim() == 5:
        return pred[:, -1]
    if pred.dim() == 4:
        return pred
    raise ValueError(
        f"{what} needs heatmap predictions (B, J, h, w) or (B, S, J, h, w); the model predicts "
        f"{tuple(pred.shape)}"
    )


def decode_prediction(pred: Tensor, input_width: int) -> tuple[Tensor, Tensor] | None:
    """(joints (B, J, 2) input px, confidences (B, J)) of a heatmap or coordinate prediction,
    None for any other; heatmaps are decoded at the stride ``input_width / w``."""
    kind = prediction_kind(tuple(pred.shape))
    if kind == "heatmaps":
        hm = heatmaps_of_prediction(pred).float()
        coords, maxvals = decode_heatmaps(hm)
        stride = input_width / hm.shape[-1]
        return heatmap_to_input(coords, int(stride) if stride.is_integer() else stride), maxvals
    if kind == "coordinates":
        return pred.float(), torch.ones(pred.shape[:2])
    return None


def _aux_predict(aux: nn.Module, features: tuple[Tensor, ...]) -> Tensor:
    out = aux.predict(features) if hasattr(aux, "predict") else aux(features, None)
    return out.float().reshape(-1)


@torch.no_grad()
def forward_pool(
    contract: ModelContract,
    dataset: Dataset,
    *,
    want: frozenset[str] = frozenset(),
    aux: nn.Module | None = None,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    amp: bool = True,
) -> Predictions:
    """The model's pass over ``dataset``; ``want`` names what to keep beside the decoded joints
    (None where the prediction is neither heatmaps nor coordinates): ``"embeddings"``,
    ``"heatmaps"``, ``"prediction"`` (the whole prediction, in ``Predictions.prediction``) and,
    with ``aux``, the predicted losses (``Predictions.aux``). ``amp`` has an effect on CUDA."""
    device = torch.device(device)
    contract.model.to(device).eval()
    if aux is not None:
        aux.to(device).eval()
    dtype = amp_dtype(device, amp)
    taps = frozenset({"embedding"} if "embeddings" in want else set())
    taps |= {"features"} if aux is not None else set()
    keys = ("joints", "maxvals", "index", "hm", "emb", "aux", "pred")
    keep: dict[str, list] = {k: [] for k in keys}
    done = 0
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        x = input_of(batch).to(device)
        with autocast(device, dtype):
            out = contract.outputs(x, taps)
            if aux is not None:
                keep["aux"].append(_aux_predict(aux, out["features"]).cpu())
        pred = out["prediction"].float()
        decoded = decode_prediction(pred, x.shape[-1])
        if decoded is not None:
            keep["joints"].append(decoded[0].cpu())
            keep["maxvals"].append(decoded[1].cpu())
        index = batch.get("index") if isinstance(batch, dict) else None
        keep["index"].append(torch.arange(done, done + len(x)) if index is None else index)
        done += len(x)
        if "heatmaps" in want:
            keep["hm"].append(heatmaps_of_prediction(pred).cpu())
        if "embeddings" in want:
            keep["emb"].append(out["embedding"].float().cpu())
        if "prediction" in want:
            keep["pred"].append(pred.cpu())
    if not done:
        raise ValueError("the data set is empty")

    def cat(key: str) -> np.ndarray | None:
        return torch.cat(keep[key]).numpy() if keep[key] else None

    return Predictions(
        joints=cat("joints"), maxvals=cat("maxvals"), indices=cat("index"), heatmaps=cat("hm"),
        embeddings=cat("emb"), aux=cat("aux"), prediction=cat("pred"),
    )  # fmt: skip
