"""What eglpp feeds a network: the input's height × width and the normalisation of its pixels.

An **input size** is an int S (a square S × S input, as every model before rectangular inputs
took) or a pair (H, W): mmpose's top-down models take 256 high × 192 wide. Written in files and
flags as ``S``, ``HxW`` or ``H,W``; :func:`input_hw` turns any of them into (H, W).

A **normalisation** maps the crop's RGB values in [0, 1] to what the network was trained on::

    x' = (scale · x − mean) / std        (per channel)

``unit`` (the default: RGB in [0, 1], nothing done), ``imagenet`` (torchvision's mean and std of
ImageNet on the [0, 1] scale, what most pretrained backbones expect) and ``none`` (raw 0–255
values, for networks that normalise inside themselves, e.g. mmpose's data preprocessor); or an
explicit ``MEAN/STD`` pair of three numbers each on the [0, 1] scale (``0.5,0.5,0.5/0.5,0.5,0.5``).

>>> input_hw(64), input_hw((256, 192)), parse_input_size("256x192"), parse_input_size("64")
((64, 64), (256, 192), (256, 192), 64)
>>> normalization("imagenet").record()["std"]
[0.229, 0.224, 0.225]
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Normalization",
    "NORMALIZATIONS",
    "input_hw",
    "parse_input_size",
    "size_text",
    "canonical_size",
    "normalization",
    "fit_aspect",
    "fed_text",
]

InputSize = int | tuple[int, int]


def input_hw(size: object, what: str = "input_size") -> tuple[int, int]:
    """(H, W) of an input size: an int S (square), a pair (H, W) or its text (see module)."""
    if isinstance(size, str):
        size = parse_input_size(size, what)
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        hw = (int(size), int(size))
    elif isinstance(size, (tuple, list)) and len(size) == 2:
        hw = tuple(size)
    else:
        raise ValueError(f"{what} must be an int S or a pair (H, W), got {size!r}")
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1
               for v in hw):  # fmt: skip
        raise ValueError(f"{what} must be positive integers (H, W), got {size!r}")
    return int(hw[0]), int(hw[1])


def parse_input_size(text: str, what: str = "--input-size") -> InputSize:
    """``"64"`` → 64 (square); ``"256x192"``, ``"256,192"`` or ``"256 192"`` → (256, 192)."""
    match = re.fullmatch(r"\s*(\d+)\s*(?:[x×, ]\s*(\d+))?\s*", str(text).lower())
    values = [int(v) for v in match.groups() if v is not None] if match else []
    if not values or min(values) < 1:
        raise ValueError(f"{what} {text!r}: expected S (square) or H×W, e.g. 256x192 (H x W)")
    if len(values) == 1 or values[0] == values[1]:
        return values[0]
    return values[0], values[1]


def canonical_size(size: object) -> InputSize:
    """An input size as files record it: S for a square, (H, W) otherwise."""
    H, W = input_hw(size)
    return H if H == W else (H, W)


def size_text(size: object) -> str:
    """``"64×64"`` or ``"256×192"`` (H×W) for messages."""
    H, W = input_hw(size)
    return f"{H}×{W}"


@dataclass(frozen=True)
class Normalization:
    """``x' = (scale · x − mean) / std`` per channel, x the crop's RGB in [0, 1]."""

    name: str
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    scale: float = 1.0  # 255 for "none": the raw 0–255 values

    def __post_init__(self) -> None:
        if len(self.mean) != 3 or len(self.std) != 3 or not all(s > 0 for s in self.std):
            raise ValueError(f"normalisation {self.name!r}: mean and std need 3 values, std > 0")

    @property
    def identity(self) -> bool:
        return self.scale == 1.0 and self.mean == (0.0,) * 3 and self.std == (1.0,) * 3

    def apply(self, image: np.ndarray) -> np.ndarray:
        """(3, H, W) float32 in [0, 1] → the network's input."""
        if self.identity:
            return image
        mean = np.asarray(self.mean, np.float32)[:, None, None]
        std = np.asarray(self.std, np.float32)[:, None, None]
        return ((np.float32(self.scale) * image - mean) / std).astype(np.float32)

    def record(self) -> dict:
        """What summary.json and train.json record (``normalization(record)`` reads it back)."""
        return {"name": self.name, "scale": self.scale, "mean": list(self.mean),
                "std": list(self.std)}  # fmt: skip


NORMALIZATIONS = {
    "unit": Normalization("unit"),
    "imagenet": Normalization("imagenet", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "none": Normalization("none", scale=255.0),
}


def normalization(spec: object = None, what: str = "--normalize") -> Normalization:
    """A :class:`Normalization` from a name, ``MEAN/STD`` text, a recorded dict, or None (unit)."""
    if spec is None:
        return NORMALIZATIONS["unit"]
    if isinstance(spec, Normalization):
        return spec
    if isinstance(spec, dict):
        try:
            mean, std = tuple(map(float, spec["mean"])), tuple(map(float, spec["std"]))
            return Normalization(str(spec["name"]), mean, std, float(spec.get("scale", 1.0)))
        except (KeyError, TypeError, ValueError) as err:
            why = f"a recorded normalisation needs name, mean, std ({err})"
            raise ValueError(f"{what}: {why}") from None
    text = str(spec).strip()
    if text in NORMALIZATIONS:
        return NORMALIZATIONS[text]
    mean, sep, std = text.partition("/")
    try:
        m, s = tuple(float(v) for v in mean.split(",")), tuple(float(v) for v in std.split(","))
        if sep and len(m) == 3 and len(s) == 3:
            return Normalization(text, m, s)  # type: ignore[arg-type]
    except ValueError:
        pass
    raise ValueError(
        f"{what} {text!r}: expected {'|'.join(NORMALIZATIONS)} or MEAN/STD as R,G,B/R,G,B "
        "on the [0, 1] scale (e.g. 0.5,0.5,0.5/0.25,0.25,0.25), with std > 0"
    )


def fit_aspect(extent: np.ndarray, size: object) -> tuple[float, float]:
    """The box (w, h) ⊇ ``extent`` (w, h) with the input's aspect W / H (mmpose's top-down
    convention: the shorter side grows, the centre stays).

    >>> fit_aspect(np.array([50.0, 150.0]), (256, 192))
    (112.5, 150.0)
    """
    H, W = input_hw(size)
    w, h = float(extent[0]), float(extent[1])
    if w * H > h * W:
        return w, w * H / W
    return h * W / H, h


def fed_text(size: object, normalize: object = None) -> str:
    """What eglpp feeds a network, in words: ``"H×W px RGB in [0, 1]"`` and its normalisation.

    >>> fed_text((256, 192), "imagenet")
    "256×192 (H×W) px RGB normalised by ImageNet's mean and std"
    """
    norm = normalization(normalize)
    how = {
        "unit": "in [0, 1]",
        "none": "in 0–255",
        "imagenet": "normalised by ImageNet's mean and std",
    }.get(norm.name, f"in [0, 1] as (x − {list(norm.mean)}) / {list(norm.std)}")
    return f"{size_text(size)} (H×W) px RGB {how}"
