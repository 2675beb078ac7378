"""Image preprocessing: named observation presets and the two model-side transforms.

Observation presets turn a raw camera frame (HWC uint8) into the 224x224 frame the model
was trained on:

* ``instructvla``: upstream LIBERO eval — JPEG round trip, Lanczos resize to 224, then a
  centered crop of 0.9 of the area resized back to 224 (TF ``crop_and_resize`` semantics).
* ``instructvla-nocrop``: the same without the center crop (checkpoints trained without aug).
* ``openpi``: openpi's ``resize_with_pad`` to 224 (keep aspect, zero padding, bilinear).

Model-side transforms: :func:`vlm_pixel_values` (images side by side, squashed to one
448 tile, mean = std = 0.5) and :func:`dino_pixel_values` (timm defaults: resize shorter side
to 224 / 0.875, center crop 224, ImageNet mean/std).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SIGLIP_MEAN = (0.5, 0.5, 0.5)
SIGLIP_STD = (0.5, 0.5, 0.5)


def as_uint8_image(image: np.ndarray) -> np.ndarray:
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[-1] != 3:
        raise ValueError(f"expected an HxWx3 image, got shape {array.shape}")
    if array.dtype != np.uint8:
        array = np.clip(array, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(array)


def jpeg_roundtrip(image: np.ndarray, quality: int = 95) -> np.ndarray:
    """Encode/decode as JPEG (training frames were JPEG-compressed in RLDS)."""
    buffer = io.BytesIO()
    Image.fromarray(as_uint8_image(image)).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def resize(image: np.ndarray, size: tuple[int, int], method: int = Image.Resampling.LANCZOS) -> np.ndarray:
    """Resize to ``(height, width)`` (aspect not kept)."""
    height, width = size
    return np.asarray(Image.fromarray(as_uint8_image(image)).resize((width, height), resample=method))


def crop_and_resize(image: np.ndarray, box: tuple[float, float, float, float], size: tuple[int, int]) -> np.ndarray:
    """``tf.image.crop_and_resize`` for one image and one normalized box ``(y1, x1, y2, x2)``, bilinear.

    Works on the image as float in [0, 1] and converts back like ``convert_image_dtype(saturate=True)``.
    """
    src = as_uint8_image(image).astype(np.float32) / 255.0
    height, width = src.shape[:2]
    out_h, out_w = size
    y1, x1, y2, x2 = box

    def coords(lo: float, hi: float, n_out: int, n_in: int) -> np.ndarray:
        if n_out > 1:
            return lo * (n_in - 1) + np.arange(n_out) * (hi - lo) * (n_in - 1) / (n_out - 1)
        return np.array([0.5 * (lo + hi) * (n_in - 1)])

    ys, xs = coords(y1, y2, out_h, height), coords(x1, x2, out_w, width)
    y0 = np.floor(ys).astype(int)
    x0 = np.floor(xs).astype(int)
    wy = (ys - y0)[:, None, None]
    wx = (xs - x0)[None, :, None]
    y0c, y1c = np.clip(y0, 0, height - 1), np.clip(y0 + 1, 0, height - 1)
    x0c, x1c = np.clip(x0, 0, width - 1), np.clip(x0 + 1, 0, width - 1)
    top = src[y0c][:, x0c] * (1 - wx) + src[y0c][:, x1c] * wx
    bottom = src[y1c][:, x0c] * (1 - wx) + src[y1c][:, x1c] * wx
    result = np.clip(top * (1 - wy) + bottom * wy, 0.0, 1.0)
    return np.minimum(np.floor(result * 255.5), 255).astype(np.uint8)


def center_crop_area(image: np.ndarray, area: float = 0.9) -> np.ndarray:
    """Central crop covering ``area`` of the image, resized back to the input size (upstream eval crop)."""
    side = math.sqrt(area)
    offset = (1.0 - side) / 2.0
    height, width = image.shape[:2]
    return crop_and_resize(image, (offset, offset, offset + side, offset + side), (height, width))


def resize_with_pad(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """openpi's ``resize_with_pad``: keep aspect ratio, bilinear resize, center zero padding."""
    image = as_uint8_image(image)
    cur_h, cur_w = image.shape[:2]
    if (cur_h, cur_w) == (height, width):
        return image
    ratio = max(cur_w / width, cur_h / height)
    new_h, new_w = int(cur_h / ratio), int(cur_w / ratio)
    resized = resize(image, (new_h, new_w), Image.Resampling.BILINEAR)
    out = np.zeros((height, width, 3), dtype=np.uint8)
    top, left = (height - new_h) // 2, (width - new_w) // 2
    out[top : top + new_h, left : left + new_w] = resized
    return out


@dataclass(frozen=True)
class ImagePreset:
    """A named observation transform (camera frame -> model frame)."""

    name: str
    transform: Callable[[np.ndarray], np.ndarray]
    description: str

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return self.transform(as_uint8_image(image))


def _instructvla(image: np.ndarray, crop: bool, size: int = 224) -> np.ndarray:
    image = resize(jpeg_roundtrip(image), (size, size), Image.Resampling.LANCZOS)
    return center_crop_area(image, 0.9) if crop else image


IMAGE_PRESETS: dict[str, ImagePreset] = {
    "instructvla": ImagePreset(
        "instructvla", lambda im: _instructvla(im, crop=True), "JPEG, Lanczos 224, center crop 0.9 area (upstream LIBERO)"
    ),
    "instructvla-nocrop": ImagePreset(
        "instructvla-nocrop", lambda im: _instructvla(im, crop=False), "JPEG, Lanczos 224, no crop"
    ),
    "openpi": ImagePreset("openpi", lambda im: resize_with_pad(im, 224, 224), "openpi resize_with_pad to 224"),
}


def get_preset(name: str) -> ImagePreset:
    if name not in IMAGE_PRESETS:
        raise ValueError(f"unknown image preset {name!r} (known: {', '.join(IMAGE_PRESETS)})")
    return IMAGE_PRESETS[name]


def _to_chw(image: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    array = image.astype(np.float32) / 255.0
    array = (array - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return np.ascontiguousarray(array.transpose(2, 0, 1))


def vlm_pixel_values(images: list[np.ndarray], image_size: int) -> np.ndarray:
    """One VLM tile ``(3, S, S)``: frames side by side, squashed to ``S x S`` (bicubic), SigLIP norm."""
    frames = [as_uint8_image(im) for im in images]
    if len({f.shape[0] for f in frames}) != 1:
        frames = [resize(f, (frames[0].shape[0], f.shape[1])) for f in frames]
    joined = np.concatenate(frames, axis=1) if len(frames) > 1 else frames[0]
    tile = resize(joined, (image_size, image_size), Image.Resampling.BICUBIC)
    return _to_chw(tile, SIGLIP_MEAN, SIGLIP_STD)


def dino_pixel_values(image: np.ndarray, image_size: int, crop_pct: float = 0.875) -> np.ndarray:
    """timm's default eval transform for the DINO tower: ``(3, S, S)`` float32."""
    pil = Image.fromarray(as_uint8_image(image))
    scale = math.floor(image_size / crop_pct)
    w, h = pil.size
    if w <= h:
        new_w, new_h = scale, int(scale * h / w)
    else:
        new_w, new_h = int(scale * w / h), scale
    pil = pil.resize((new_w, new_h), resample=Image.Resampling.BICUBIC)
    top = int(round((new_h - image_size) / 2.0))
    left = int(round((new_w - image_size) / 2.0))
    pil = pil.crop((left, top, left + image_size, top + image_size))
    return _to_chw(np.asarray(pil), IMAGENET_MEAN, IMAGENET_STD)
