"""Rotation helpers shared by the scripted oracles (LIBERO: xyzw quaternions, SimplerEnv: wxyz)."""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np


def quat_to_mat(q: Iterable[float], order: str = "xyzw") -> np.ndarray:
    """Rotation matrix of a (not necessarily normalised) quaternion given in ``order``."""
    values = [float(v) for v in q]
    if order == "wxyz":
        values = values[1:] + values[:1]
    elif order != "xyzw":
        raise ValueError(f"quaternion order must be xyzw or wxyz, not {order!r}")
    x, y, z, w = values
    n = math.sqrt(x * x + y * y + z * z + w * w) or 1.0
    x, y, z, w = x / n, y / n, z / n, w / n
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def rotvec(R: np.ndarray, zero_below: float = 1e-6) -> np.ndarray:
    """Axis * angle of a rotation matrix (zero for angles below ``zero_below`` radians)."""
    cos = max(-1.0, min(1.0, (float(np.trace(R)) - 1.0) / 2.0))
    angle = math.acos(cos)
    if angle < zero_below:
        return np.zeros(3)
    if angle > math.pi - 1e-4:  # axis from the symmetric part
        axis = np.sqrt(np.maximum((np.diag(R) + 1.0) / 2.0, 0.0))
        axis *= np.sign([R[2, 1] - R[1, 2] or 1.0, R[0, 2] - R[2, 0] or 1.0, R[1, 0] - R[0, 1] or 1.0])
        return axis / (np.linalg.norm(axis) or 1.0) * angle
    axis = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]]) / (2 * math.sin(angle))
    return axis * angle
