"""Camera pose maths shared by capture and render (pure NumPy).

Both ``envreel.capture`` (placing cameras, recording their poses) and ``envreel.render`` (drawing
markers into the global view) import this module, so it imports NumPy only.

Conventions:
    * **World** is Z-up, right-handed, in metres.
    * **Poses** are camera-to-world 4x4 float64 matrices ``[[R, t], [0, 0, 0, 1]]``: ``t`` is the
      camera position in the world and the columns of ``R`` are the camera's own x, y, z axes
      expressed in world coordinates.
    * **Camera conventions** say which camera axes point where (the names Isaac Lab uses):

      ========== ============ ========= ==============================================
      name       forward      up        camera axes
      ========== ============ ========= ==============================================
      ``opengl`` ``-Z``       ``+Y``    x right, y up, z backward (USD cameras)
      ``ros``    ``+Z``       ``-Y``    x right, y down, z forward (OpenCV)
      ``world``  ``+X``       ``+Z``    x forward, y left, z up
      ========== ============ ========= ==============================================

      The same physical camera has a different ``R`` in each convention; ``t`` is identical.
    * **Quaternions** are unit, Hamilton, in ``"xyzw"`` order (Isaac Lab 3.x, the default here) or
      ``"wxyz"`` order (Isaac Lab 2.x). :func:`rotation_to_quat` returns ``w >= 0``.
    * **Pixels** are continuous ``(u, v)`` coordinates, ``u`` to the right, ``v`` down, with the
      image covering ``[0, width] x [0, height]``: pixel ``(row j, column i)`` spans
      ``[i, i + 1) x [j, j + 1)`` and its centre is at ``(i + 0.5, j + 0.5)``; ``floor(u)`` is the
      column index. With this convention the principal point ``(width / 2, height / 2)`` of
      :func:`pinhole_intrinsics` (Isaac Sim's) is exactly the centre of the image.
    * **Intrinsics** are the 3x3 pinhole matrix ``[[fx, s, cx], [0, fy, cy], [0, 0, 1]]`` acting on
      ROS-convention camera coordinates: ``u = (fx * x + s * y) / z + cx``, ``v = fy * y / z + cy``.

Example:
    >>> import numpy as np
    >>> from envreel.schemas import geometry as geo
    >>> pose = geo.look_at_pose((4.0, -4.0, 3.0), (0.0, 0.0, 0.0))
    >>> K = geo.pinhole_intrinsics(
    ...     focal_length=18.147, horizontal_aperture=20.955, width=1280, height=720
    ... )
    >>> pixels, in_front = geo.project_points(np.zeros((1, 3)), pose, K)
    >>> pixels.round(6).tolist(), in_front.tolist()
    ([[640.0, 360.0]], [True])
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, cast

import numpy as np

__all__ = [
    "CONVENTIONS",
    "QUAT_ORDERS",
    "Framing",
    "auto_frame",
    "convert_convention",
    "grid_env_origins",
    "look_at_pose",
    "look_at_rotation",
    "pinhole_intrinsics",
    "pose_matrix",
    "project_points",
    "quat_pose_map",
    "quat_to_rotation",
    "rotation_to_quat",
]

Convention = Literal["opengl", "ros", "world"]
QuatOrder = Literal["xyzw", "wxyz"]

CONVENTIONS: tuple[str, ...] = ("opengl", "ros", "world")
"""Camera conventions understood by this module."""

QUAT_ORDERS: tuple[str, ...] = ("xyzw", "wxyz")
"""Quaternion component orders understood by this module."""

# R_convention = R_opengl @ _FROM_OPENGL[convention]; the matrices are proper rotations, so their
# transpose is their inverse. "ros" flips y and z; "world" maps x <- forward (-z_gl),
# y <- left (-x_gl), z <- up (+y_gl). Same matrices as isaaclab.utils.math's conversion.
_FROM_OPENGL: dict[str, np.ndarray] = {
    "opengl": np.eye(3),
    "ros": np.diag([1.0, -1.0, -1.0]),
    "world": np.array([[0.0, -1.0, 0.0], [0.0, 0.0, 1.0], [-1.0, 0.0, 0.0]]),
}

_ROTATION_ATOL = 1e-4  # float32 poses from a simulator are orthonormal to ~1e-7


# --------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _float_array(value: object, name: str, tail: tuple[int, ...]) -> np.ndarray:
    """Returns ``value`` as a finite float64 array whose shape ends with ``tail``."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be a numeric array of shape (..., {', '.join(map(str, tail))}), "
            f"got {_short(value)}"
        ) from None
    if array.ndim < len(tail) or array.shape[array.ndim - len(tail) :] != tail:
        shape = ", ".join(map(str, tail))
        raise ValueError(f"{name} must have shape (..., {shape}), got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite, got {_short(value)}")
    return array


def _check_convention(convention: object, name: str = "convention") -> Convention:
    if convention not in CONVENTIONS:
        raise ValueError(f"{name} must be one of {CONVENTIONS}, got {convention!r}")
    return cast(Convention, convention)


def _check_order(order: object) -> QuatOrder:
    if order not in QUAT_ORDERS:
        raise ValueError(f"order must be one of {QUAT_ORDERS}, got {order!r}")
    return cast(QuatOrder, order)


def _positive(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a positive number, got {_short(value)}")
    number = float(value)
    if not math.isfinite(number) or number <= 0.0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return number


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive integer, got {_short(value)}")
    if int(value) <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _real(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {_short(value)}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return number


def _check_rotation(rotation: np.ndarray, name: str) -> None:
    gram = np.einsum("...ji,...jk->...ik", rotation, rotation)
    error = np.abs(gram - np.eye(3)).max(initial=0.0)
    det = np.linalg.det(rotation) if rotation.size else np.ones(1)
    if error > _ROTATION_ATOL or np.any(det <= 0.0):
        raise ValueError(
            f"{name} must be a proper rotation matrix (orthonormal columns, determinant +1), "
            f"got orthonormality error {error:.2g} and determinant(s) {_short(np.round(det, 6))}"
        )


def _normalize(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


# --------------------------------------------------------------------------------------------
# rotations
# --------------------------------------------------------------------------------------------


def look_at_rotation(
    eye: Sequence[float] | np.ndarray,
    target: Sequence[float] | np.ndarray,
    *,
    up: Sequence[float] | np.ndarray = (0.0, 0.0, 1.0),
    convention: Convention = "opengl",
) -> np.ndarray:
    """Camera-to-world rotation of a camera at ``eye`` looking at ``target``.

    The image is kept upright: the camera's right axis is horizontal (perpendicular to ``up``)
    and its up axis leans towards ``up``. When the view direction is parallel to ``up`` (a camera
    looking straight down or up), the world axis most perpendicular to the view is used as ``up``
    instead, preferring +Y, then +X, then +Z; a Z-up camera looking straight down therefore shows
    +Y at the top of the image.

    Args:
        eye: Camera position(s), shape (3,) or (..., 3), metres.
        target: Point(s) looked at, shape (3,) or (..., 3), broadcast against ``eye``.
        up: World up direction, shape (3,) or (..., 3); need not be unit length.
            Defaults to (0, 0, 1).
        convention: Camera convention of the result, one of ``"opengl"``, ``"ros"``,
            ``"world"``. Defaults to ``"opengl"``.

    Returns:
        Rotation(s), shape (..., 3, 3) float64, whose columns are the camera axes in world
        coordinates.

    Raises:
        ValueError: If ``eye`` equals ``target``, ``up`` is zero, a shape is wrong or the
            convention is unknown.

    Example:
        >>> look_at_rotation((1.0, 0.0, 0.0), (0.0, 0.0, 0.0), convention="world").round(6)
        array([[-1.,  0.,  0.],
               [ 0., -1.,  0.],
               [ 0.,  0.,  1.]])
    """
    convention = _check_convention(convention)
    eye_a = _float_array(eye, "eye", (3,))
    target_a = _float_array(target, "target", (3,))
    up_a = _float_array(up, "up", (3,))
    eye_a, target_a, up_a = np.broadcast_arrays(eye_a, target_a, up_a)

    view = target_a - eye_a
    view_len = np.linalg.norm(view, axis=-1)
    if np.any(view_len <= 1e-12):
        raise ValueError(
            f"eye and target must differ, got eye={_short(eye)} and target={_short(target)}"
        )
    up_len = np.linalg.norm(up_a, axis=-1)
    if np.any(up_len <= 1e-12):
        raise ValueError(f"up must be a non-zero vector, got {_short(up)}")
    forward = view / view_len[..., None]
    up_unit = up_a / up_len[..., None]

    right = np.cross(forward, up_unit)
    parallel = np.linalg.norm(right, axis=-1) < 1e-9
    if np.any(parallel):
        candidates = np.eye(3)[[1, 0, 2]]  # +Y, +X, +Z: first most-perpendicular one wins
        alignment = np.abs(forward[parallel] @ candidates.T)
        fallback = candidates[np.argmin(alignment, axis=-1)]
        right[parallel] = np.cross(forward[parallel], fallback)
    right = _normalize(right)
    cam_up = np.cross(right, forward)

    opengl = np.stack([right, cam_up, -forward], axis=-1)
    return opengl @ _FROM_OPENGL[convention]


def convert_convention(rotation: np.ndarray, src: Convention, dst: Convention) -> np.ndarray:
    """Re-expresses camera-to-world rotation(s) from one camera convention in another.

    Args:
        rotation: Camera-to-world rotation(s) in convention ``src``, shape (..., 3, 3).
        src: Convention of ``rotation``: ``"opengl"``, ``"ros"`` or ``"world"``.
        dst: Convention of the result: ``"opengl"``, ``"ros"`` or ``"world"``.

    Returns:
        Rotation(s) of the same camera(s) in convention ``dst``, shape (..., 3, 3) float64.

    Raises:
        ValueError: If a convention is unknown or ``rotation`` has the wrong shape.
    """
    src = _check_convention(src, "src")
    dst = _check_convention(dst, "dst")
    rotation_a = _float_array(rotation, "rotation", (3, 3))
    return rotation_a @ (_FROM_OPENGL[src].T @ _FROM_OPENGL[dst])


def rotation_to_quat(rotation: np.ndarray, *, order: QuatOrder = "xyzw") -> np.ndarray:
    """Unit quaternion(s) of rotation matrix(es).

    Uses the branch of Shepperd's method with the largest pivot, so it stays accurate near
    180 degrees. The sign is fixed so that ``w >= 0``.

    Args:
        rotation: Proper rotation matrix(es), shape (..., 3, 3).
        order: Component order of the result, ``"xyzw"`` (Isaac Lab 3.x) or ``"wxyz"``
            (Isaac Lab 2.x). Defaults to ``"xyzw"``.

    Returns:
        Quaternion(s), shape (..., 4) float64.

    Raises:
        ValueError: If ``rotation`` is not a rotation matrix (orthonormal within 1e-4,
            determinant +1) or ``order`` is unknown.
    """
    order = _check_order(order)
    m = _float_array(rotation, "rotation", (3, 3))
    _check_rotation(m, "rotation")
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]

    # 4w^2, 4x^2, 4y^2, 4z^2; the largest gives the best-conditioned branch.
    pivots = np.stack(
        [
            1.0 + m00 + m11 + m22,
            1.0 + m00 - m11 - m22,
            1.0 - m00 + m11 - m22,
            1.0 - m00 - m11 + m22,
        ],
        axis=-1,
    )
    # Each branch as (w, x, y, z) scaled by 4 * (its pivot component).
    branches = np.stack(
        [
            np.stack([pivots[..., 0], m21 - m12, m02 - m20, m10 - m01], axis=-1),
            np.stack([m21 - m12, pivots[..., 1], m01 + m10, m02 + m20], axis=-1),
            np.stack([m02 - m20, m01 + m10, pivots[..., 2], m12 + m21], axis=-1),
            np.stack([m10 - m01, m02 + m20, m12 + m21, pivots[..., 3]], axis=-1),
        ],
        axis=-2,
    )
    best = np.argmax(pivots, axis=-1)
    wxyz = np.take_along_axis(branches, best[..., None, None], axis=-2)[..., 0, :]
    wxyz = _normalize(wxyz)
    wxyz = np.where(wxyz[..., :1] < 0.0, -wxyz, wxyz)
    if order == "wxyz":
        return wxyz
    return wxyz[..., [1, 2, 3, 0]]


def quat_to_rotation(
    quat: Sequence[float] | np.ndarray, *, order: QuatOrder = "xyzw"
) -> np.ndarray:
    """Rotation matrix(es) of quaternion(s); the input need not be normalised.

    Args:
        quat: Quaternion(s), shape (..., 4), in component order ``order``.
        order: ``"xyzw"`` (Isaac Lab 3.x) or ``"wxyz"`` (Isaac Lab 2.x). Defaults to ``"xyzw"``.

    Returns:
        Rotation matrix(es), shape (..., 3, 3) float64.

    Raises:
        ValueError: If a quaternion has zero length, the shape is wrong or ``order`` is unknown.
    """
    order = _check_order(order)
    q = _float_array(quat, "quat", (4,))
    norm = np.linalg.norm(q, axis=-1, keepdims=True)
    if np.any(norm <= 1e-12):
        raise ValueError(f"quat must have non-zero length, got {_short(quat)}")
    q = q / norm
    if order == "xyzw":
        x, y, z, w = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    else:
        w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    rows = [
        [1.0 - 2.0 * (y * y + z * z), 2.0 * (x * y - z * w), 2.0 * (x * z + y * w)],
        [2.0 * (x * y + z * w), 1.0 - 2.0 * (x * x + z * z), 2.0 * (y * z - x * w)],
        [2.0 * (x * z - y * w), 2.0 * (y * z + x * w), 1.0 - 2.0 * (x * x + y * y)],
    ]
    return np.stack([np.stack(row, axis=-1) for row in rows], axis=-2)


# --------------------------------------------------------------------------------------------
# poses and intrinsics
# --------------------------------------------------------------------------------------------


def pose_matrix(
    position: Sequence[float] | np.ndarray, rotation: Sequence[Sequence[float]] | np.ndarray
) -> np.ndarray:
    """Camera-to-world matrix(es) from a position and a rotation.

    Args:
        position: Camera position(s) in the world, shape (3,) or (..., 3), metres.
        rotation: Camera-to-world rotation(s), shape (3, 3) or (..., 3, 3); broadcast against
            ``position``.

    Returns:
        Pose matrix(es) ``[[R, t], [0, 0, 0, 1]]``, shape (..., 4, 4) float64.

    Raises:
        ValueError: If a shape is wrong or ``rotation`` is not a rotation matrix.
    """
    position_a = _float_array(position, "position", (3,))
    rotation_a = _float_array(rotation, "rotation", (3, 3))
    _check_rotation(rotation_a, "rotation")
    batch = np.broadcast_shapes(position_a.shape[:-1], rotation_a.shape[:-2])
    pose = np.zeros((*batch, 4, 4))
    pose[..., :3, :3] = rotation_a
    pose[..., :3, 3] = position_a
    pose[..., 3, 3] = 1.0
    return pose


def look_at_pose(
    eye: Sequence[float] | np.ndarray,
    target: Sequence[float] | np.ndarray,
    *,
    up: Sequence[float] | np.ndarray = (0.0, 0.0, 1.0),
    convention: Convention = "opengl",
) -> np.ndarray:
    """Camera-to-world matrix of a camera at ``eye`` looking at ``target``.

    Args:
        eye: Camera position(s), shape (3,) or (..., 3), metres.
        target: Point(s) looked at, shape (3,) or (..., 3).
        up: World up direction. Defaults to (0, 0, 1).
        convention: Camera convention of the rotation block. Defaults to ``"opengl"``.

    Returns:
        Pose matrix(es), shape (..., 4, 4) float64. See :func:`look_at_rotation`.
    """
    rotation = look_at_rotation(eye, target, up=up, convention=convention)
    return pose_matrix(np.broadcast_to(np.asarray(eye, np.float64), rotation.shape[:-1]), rotation)


def pinhole_intrinsics(
    *,
    focal_length: float,
    horizontal_aperture: float,
    width: int,
    height: int,
    vertical_aperture: float | None = None,
) -> np.ndarray:
    """Pinhole intrinsic matrix with Isaac Sim / USD camera semantics.

    ``fx = focal_length / horizontal_aperture * width``, ``fy = focal_length /
    vertical_aperture * height``, ``cx = width / 2``, ``cy = height / 2`` (the image centre in
    this module's pixel convention), no skew. Focal length and apertures only matter through
    their ratio, so any common unit works (USD uses tenths of a scene unit, i.e. mm for metres).

    Args:
        focal_length: Focal length, > 0.
        horizontal_aperture: Sensor width, > 0, same unit as ``focal_length``.
        width: Image width in pixels, > 0.
        height: Image height in pixels, > 0.
        vertical_aperture: Sensor height, > 0. Defaults to None, meaning
            ``horizontal_aperture * height / width`` (square pixels), as Isaac Lab does.

    Returns:
        Intrinsic matrix, shape (3, 3) float64.

    Raises:
        ValueError: If a value is not positive.
        TypeError: If ``width`` or ``height`` is not an integer.

    Example:
        >>> pinhole_intrinsics(focal_length=24.0, horizontal_aperture=20.955, width=480,
        ...                    height=360).round(3).tolist()
        [[549.749, 0.0, 240.0], [0.0, 549.749, 180.0], [0.0, 0.0, 1.0]]
    """
    focal = _positive(focal_length, "focal_length")
    h_ap = _positive(horizontal_aperture, "horizontal_aperture")
    width_px = _positive_int(width, "width")
    height_px = _positive_int(height, "height")
    if vertical_aperture is None:
        v_ap = h_ap * height_px / width_px
    else:
        v_ap = _positive(vertical_aperture, "vertical_aperture")
    return np.array(
        [
            [focal / h_ap * width_px, 0.0, width_px / 2.0],
            [0.0, focal / v_ap * height_px, height_px / 2.0],
            [0.0, 0.0, 1.0],
        ]
    )


def _check_intrinsics(intrinsics: object) -> np.ndarray:
    K = _float_array(intrinsics, "intrinsics", (3, 3))
    if K.shape != (3, 3):
        raise ValueError(f"intrinsics must have shape (3, 3), got shape {K.shape}")
    if K[0, 0] <= 0.0 or K[1, 1] <= 0.0 or not np.allclose(K[2], (0.0, 0.0, 1.0)) or K[1, 0]:
        raise ValueError(
            "intrinsics must be [[fx, s, cx], [0, fy, cy], [0, 0, 1]] with fx, fy > 0, "
            f"got {_short(K.tolist())}"
        )
    return K


def project_points(
    points_world: Sequence[Sequence[float]] | np.ndarray,
    camera_to_world: np.ndarray,
    intrinsics: np.ndarray,
    *,
    convention: Convention = "opengl",
) -> tuple[np.ndarray, np.ndarray]:
    """Projects world points into a pinhole camera's image.

    Pixel coordinates follow the module convention: continuous ``(u, v)``, ``u`` right, ``v``
    down, the image covering ``[0, width] x [0, height]`` (pixel centres at integer + 0.5).
    A point is inside the image when ``in_front`` and ``0 <= u <= width`` and
    ``0 <= v <= height``. No clipping planes are applied.

    Args:
        points_world: World points, shape (M, 3) (or (..., 3)), metres.
        camera_to_world: Camera pose, shape (4, 4), in camera convention ``convention``.
        intrinsics: Pinhole matrix, shape (3, 3), e.g. from :func:`pinhole_intrinsics`.
        convention: Camera convention of ``camera_to_world``. Defaults to ``"opengl"``.

    Returns:
        ``(pixels, in_front)``: pixels shape (M, 2) float64 as ``(u, v)``, NaN for points not in
        front of the camera; in_front shape (M,) bool, True where the point's depth along the
        viewing direction is > 0.

    Raises:
        ValueError: If a shape is wrong, the pose is not rigid or the convention is unknown.
    """
    convention = _check_convention(convention)
    points = _float_array(points_world, "points_world", (3,))
    pose = _float_array(camera_to_world, "camera_to_world", (4, 4))
    if pose.shape != (4, 4):
        raise ValueError(f"camera_to_world must have shape (4, 4), got shape {pose.shape}")
    if not np.allclose(pose[3], (0.0, 0.0, 0.0, 1.0)):
        raise ValueError(
            f"camera_to_world must have last row (0, 0, 0, 1), got {_short(pose[3].tolist())}"
        )
    _check_rotation(pose[:3, :3], "camera_to_world[:3, :3]")
    K = _check_intrinsics(intrinsics)

    rotation_ros = pose[:3, :3] @ (_FROM_OPENGL[convention].T @ _FROM_OPENGL["ros"])
    camera = (points - pose[:3, 3]) @ rotation_ros  # world -> camera: R^T (p - t), row-wise
    depth = camera[..., 2]
    in_front = depth > 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        x = camera[..., 0] / depth
        y = camera[..., 1] / depth
    u = K[0, 0] * x + K[0, 1] * y + K[0, 2]
    v = K[1, 1] * y + K[1, 2]
    pixels = np.stack([u, v], axis=-1)
    pixels[~in_front] = np.nan
    return pixels, in_front


# --------------------------------------------------------------------------------------------
# auto-framing
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Framing:
    """Result of :func:`auto_frame`: where a global camera goes and why.

    Attributes:
        eye: Camera position, shape (3,) float64, metres (read-only array).
        target: Point looked at (the centroid of the origins), shape (3,) float64 (read-only).
        span: Side of the square footprint framed, metres: the larger of the x and y extents
            of the origins plus twice the margin, at least ``min_span``.
        distance: Distance from ``eye`` to ``target``, metres.
    """

    eye: np.ndarray
    target: np.ndarray
    span: float
    distance: float


def auto_frame(
    origins: Sequence[Sequence[float]] | np.ndarray,
    *,
    margin: float = 1.5,
    min_span: float = 1.0,
    distance_scale: float = 1.6,
    azimuth_deg: float = -45.0,
    elevation_deg: float = 35.0,
    intrinsics: np.ndarray | None = None,
    image_shape: tuple[int, int] | None = None,
) -> Framing:
    """Places a bird's-eye camera that frames all env origins (the seed visualizer's maths).

    ``span = max(x extent, y extent of origins) + 2 * margin`` (at least ``min_span``),
    ``distance = distance_scale * span``, and the camera sits at that distance from the centroid
    of the origins, at ``azimuth_deg`` around +Z measured from +X and ``elevation_deg`` above the
    horizontal plane, looking at the centroid. 9 envs on a 3x3 grid with 4 m spacing give
    span 11 m and distance 17.6 m.

    That formula alone does not guarantee that everything is in view: with a 16:9 image and
    60 degrees of horizontal field of view the near corner of the framed square falls below the
    bottom edge, so the nearest envs of large square grids are cut off. Passing ``intrinsics``
    and ``image_shape`` moves the camera back along the same viewing ray (never closer) until
    every origin, and the four points ``margin`` away from it along +-x and +-y combined, lies
    inside the image.

    Args:
        origins: Env origins, shape (N, 3), N >= 1, metres, world frame.
        margin: Free space around the outermost origins, metres, >= 0. Defaults to 1.5.
        min_span: Smallest span, metres, > 0 (for a single env). Defaults to 1.0.
        distance_scale: Camera distance as a multiple of the span, > 0. Defaults to 1.6.
        azimuth_deg: Direction from the centroid to the camera around +Z, degrees from +X.
            Defaults to -45.0.
        elevation_deg: Angle of the camera above the horizontal plane through the centroid,
            degrees in [-90, 90]. Defaults to 35.0.
        intrinsics: Pinhole matrix of the camera, shape (3, 3), zero skew. Defaults to None
            (no fit: the seed's distance is used as is).
        image_shape: ``(height, width)`` of that camera's image in pixels; required with
            ``intrinsics``. Defaults to None.

    Returns:
        The :class:`Framing`: eye, target, span and distance.

    Raises:
        ValueError: If ``origins`` is empty or not (N, 3), a parameter is out of range, or only
            one of ``intrinsics`` and ``image_shape`` is given.

    Example:
        >>> xs = np.array([-4.0, 0.0, 4.0])
        >>> grid = np.array([(x, y, 0.0) for x in xs for y in xs])
        >>> framing = auto_frame(grid)
        >>> float(framing.span), round(float(framing.distance), 6)
        (11.0, 17.6)
    """
    points = _float_array(origins, "origins", (3,))
    if points.ndim != 2 or points.shape[0] == 0:
        raise ValueError(f"origins must have shape (N, 3) with N >= 1, got shape {points.shape}")
    margin_m = _real(margin, "margin")
    if margin_m < 0.0:
        raise ValueError(f"margin must be >= 0 metres, got {margin!r}")
    min_span_m = _positive(min_span, "min_span")
    scale = _positive(distance_scale, "distance_scale")
    azimuth = math.radians(_real(azimuth_deg, "azimuth_deg"))
    elevation_value = _real(elevation_deg, "elevation_deg")
    if not -90.0 <= elevation_value <= 90.0:
        raise ValueError(f"elevation_deg must be in [-90, 90], got {elevation_deg!r}")
    elevation = math.radians(elevation_value)
    if (intrinsics is None) != (image_shape is None):
        raise ValueError(
            "intrinsics and image_shape must be given together (to fit the view) or not at all, "
            f"got intrinsics={'None' if intrinsics is None else 'an array'} and "
            f"image_shape={image_shape!r}"
        )

    extent = points[:, :2].max(axis=0) - points[:, :2].min(axis=0)
    span = max(float(extent.max()) + 2.0 * margin_m, min_span_m)
    distance = scale * span
    target = points.mean(axis=0)
    back = np.array(
        [
            math.cos(elevation) * math.cos(azimuth),
            math.cos(elevation) * math.sin(azimuth),
            math.sin(elevation),
        ]
    )

    if intrinsics is not None:
        distance = max(
            distance,
            _fit_distance(points, margin_m, target, back, intrinsics, image_shape),
        )

    eye = target + distance * back
    eye.setflags(write=False)
    target.setflags(write=False)
    return Framing(eye=eye, target=target, span=span, distance=float(distance))


def _fit_distance(
    points: np.ndarray,
    margin: float,
    target: np.ndarray,
    back: np.ndarray,
    intrinsics: object,
    image_shape: object,
) -> float:
    """Smallest camera distance along ``back`` that keeps the margin points inside the image."""
    K = _check_intrinsics(intrinsics)
    if K[0, 1] != 0.0:
        raise ValueError(f"intrinsics must have zero skew to fit the view, got s={K[0, 1]}")
    if not (isinstance(image_shape, tuple | list) and len(image_shape) == 2):
        raise ValueError(f"image_shape must be (height, width), got {image_shape!r}")
    height = _positive_int(image_shape[0], "image_shape[0] (height)")
    width = _positive_int(image_shape[1], "image_shape[1] (width)")
    fx, cx, fy, cy = K[0, 0], K[0, 2], K[1, 1], K[1, 2]
    if not (0.0 < cx < width and 0.0 < cy < height):
        raise ValueError(
            f"the principal point ({cx}, {cy}) must lie inside the image of (height, width) "
            f"{(height, width)}"
        )
    offsets = [(0.0, 0.0)]
    if margin > 0.0:
        offsets += [(dx, dy) for dx in (-margin, margin) for dy in (-margin, margin)]
    candidates = (points[:, None, :] + np.array([(dx, dy, 0.0) for dx, dy in offsets])).reshape(
        -1, 3
    )
    # Camera axes do not depend on the distance along ``back``; only the depth does:
    # depth = distance - rel . back, and u, v are inside when depth is large enough.
    rotation = look_at_rotation(target + back, target, convention="ros")
    rel = candidates - target
    x = rel @ rotation[:, 0]
    y = rel @ rotation[:, 1]
    along = rel @ back
    needed = np.maximum.reduce(
        [
            np.where(x > 0.0, fx * x / (width - cx), fx * -x / cx),
            np.where(y > 0.0, fy * y / (height - cy), fy * -y / cy),
            np.full_like(x, 1e-6),
        ]
    )
    return float(np.max(along + needed))


def quat_pose_map(order: QuatOrder = "xyzw") -> np.ndarray:
    """A (20, 16) linear map that turns quaternions and positions into pose matrices.

    Row vector ``f = [q ⊗ q (16: q[a] * q[b] at 4a + b), position (3), 1]`` of a unit quaternion
    ``q`` (in ``order``) and a position gives ``f @ quat_pose_map(order)``, the flattened 4x4
    ``pose_matrix(position, quat_to_rotation(q))``: each rotation entry is a quadratic form of
    ``q``. Batched, that is one matrix product on any array library (a GPU tensor stays on its
    device, with no per-element indexing).

    Args:
        order: quaternion component order, "xyzw" or "wxyz". Defaults to "xyzw".

    Returns:
        (20, 16) float64 array.

    Example:
        >>> q, p = np.array([0.0, 0.0, 0.0, 1.0]), np.array([1.0, 2.0, 3.0])
        >>> f = np.concatenate([np.outer(q, q).ravel(), p, [1.0]])
        >>> (f @ quat_pose_map("xyzw")).reshape(4, 4)[:3, 3]
        array([1., 2., 3.])
    """
    x, y, z, w = (0, 1, 2, 3) if _check_order(order) == "xyzw" else (1, 2, 3, 0)
    m = np.zeros((20, 16))
    entries = {
        (0, 0): [(1, w, w), (1, x, x), (-1, y, y), (-1, z, z)],
        (0, 1): [(2, x, y), (-2, z, w)],
        (0, 2): [(2, x, z), (2, y, w)],
        (1, 0): [(2, x, y), (2, z, w)],
        (1, 1): [(1, w, w), (-1, x, x), (1, y, y), (-1, z, z)],
        (1, 2): [(2, y, z), (-2, x, w)],
        (2, 0): [(2, x, z), (-2, y, w)],
        (2, 1): [(2, y, z), (2, x, w)],
        (2, 2): [(1, w, w), (-1, x, x), (-1, y, y), (1, z, z)],
    }
    for (row, col), terms in entries.items():
        for coef, a, b in terms:
            m[4 * a + b, 4 * row + col] += coef
    m[16, 3], m[17, 7], m[18, 11], m[19, 15] = 1.0, 1.0, 1.0, 1.0
    return m


def grid_env_origins(num_envs: int, env_spacing: float) -> np.ndarray:
    """Env origins as Isaac Lab lays them out on a grid, before the env exists.

    The one grid layout of envreel: the Isaac Lab adapter frames its global camera on it and
    ``envreel demo`` lays its envs out on it. Reproduces Isaac Lab 3.x's grid
    (``isaaclab.cloner.grid_transforms``, which matches the plane ``TerrainImporter``):
    ``num_rows = ceil(N / sqrt(N))``, ``num_cols = ceil(N /
    num_rows)``, env ``i`` at row ``i // num_cols`` and column ``i % num_cols``, centred on the
    world origin, rows along -x and columns along +y, z = 0. Isaac Lab 2.x's cloner orders envs
    differently, and a generated terrain places envs on its sub-terrains, so use the live
    ``env.unwrapped.scene.env_origins`` whenever the env exists; auto-framing only needs the
    extent and centroid, which a regular grid shares across these layouts.

    Args:
        num_envs: Number of envs N, > 0.
        env_spacing: Distance between neighbouring env origins, metres, >= 0.

    Returns:
        Origins, shape (N, 3) float64, metres.

    Raises:
        ValueError: If ``num_envs`` is not a positive integer or ``env_spacing`` is negative.

    Example:
        >>> grid_env_origins(4, 2.0).tolist()
        [[1.0, -1.0, 0.0], [1.0, 1.0, 0.0], [-1.0, -1.0, 0.0], [-1.0, 1.0, 0.0]]
    """
    n = _positive_int(num_envs, "num_envs")
    if (
        isinstance(env_spacing, bool)
        or not isinstance(env_spacing, numbers.Real)
        or not math.isfinite(float(env_spacing))
        or float(env_spacing) < 0.0
    ):
        raise ValueError(f"env_spacing must be a finite number >= 0 metres, got {env_spacing!r}")
    spacing = float(env_spacing)
    num_rows = math.ceil(n / math.sqrt(n))
    num_cols = math.ceil(n / num_rows)
    index = np.arange(n)
    row, col = index // num_cols, index % num_cols
    origins = np.zeros((n, 3))
    origins[:, 0] = -(row - (num_rows - 1) / 2.0) * spacing
    origins[:, 1] = (col - (num_cols - 1) / 2.0) * spacing
    return origins + 0.0  # no negative zeros
