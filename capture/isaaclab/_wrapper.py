"""``RecordEnvs``: a gymnasium wrapper that records an Isaac Lab env's cameras into a run store.

After every ``step()`` (and the ``reset()`` that starts the run) the wrapper hands the per-env
camera's ``rgb`` output, the optional global camera's, and the step's rewards, done flags and
episode steps to a :class:`envreel.capture.Recorder`, which copies them (one batched copy per
input, asynchronous for CUDA tensors) and writes compressed blocks on a background thread. The
static facts a renderer needs (env origins, camera poses and intrinsics, fps, Isaac Lab version
and renderer, rank) are read from the env once, when the wrapper is made.

What it reads, through any wrapper depth (``env.unwrapped``, called ``U`` below):

* frames: ``U.scene.sensors[<camera>].data.output["rgb"]``, (N, H, W, 3) uint8 on the sim
  device; a ``ProxyArray`` in Isaac Lab 3.0 (``.torch`` is used, zero-copy), a tensor in 2.x.
  It is a strided view of ``rgba`` that the next render overwrites; before ``step()`` returns,
  the recorder has copied it (host tensors) or queued a copy that later GPU work waits for (CUDA);
* per step: the returned reward, terminated and truncated (N,), ``U.common_step_counter`` (the
  stored step) and ``U.episode_length_buf`` (the stored episode step);
* once: ``U.scene.env_origins``, ``U.step_dt``, the cameras' ``intrinsic_matrices``,
  ``pos_w``/``quat_w_opengl`` (every step when the camera's ``update_latest_camera_pose`` is on),
  ``U.cfg.num_rerenders_on_reset``.

Episodes and stale frames: Isaac Lab resets finished envs inside ``step()``. When the frame
shows the state after those resets depends on the renderer. Isaac Lab 3's Newton Warp and OVRTX
cameras (and envreel's own Newton views: the 3.x global view, env subsets) render when their data
is read, after ``step()`` returned: a reset env's frame shows the new episode's first state
(episode step 0). RTX (Isaac Lab 2.x, or 3.x with Isaac Sim) renders inside ``step()``, before
the resets: unless ``num_rerenders_on_reset > 0`` the frame of a reset env still shows the last
state of the finished episode; it is stored with ``stale=True``, the finished episode's index and
its last episode step (``episode_length_buf`` before the step + 1), and the new episode shows
from the next frame.

Outside the recording windows (``RecorderCfg.video_length``...) no camera is read, so Newton Warp
and OVRTX cameras and envreel's views render nothing; only the done flags are counted.

The frame of ``reset()``: recorded by default (``RecorderCfg.record_reset``) as frame 0 of every
env's episode 0, at ``U.common_step_counter`` (0 for a new env), so each episode is recorded from
its first observation and the stored episode steps equal ``episode_length_buf`` throughout. It
follows the same rule: RTX renders in ``reset()`` only when ``num_rerenders_on_reset > 0``, so
without re-renders the frame is marked stale (it may show the scene before the reset, or
nothing); renderers that render on read show the reset state. Isaac Lab envs are
reset once; a later ``reset()`` whose step counter did not advance is passed through unrecorded.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from envreel.schemas import CODECS, geometry

from .._windows import Windows
from ..recorder import DEFAULT_MAX_QUEUE_BYTES, Recorder, RecorderStats
from ._cfg import EnvCameraCfg, GlobalCameraCfg, _check_name
from ._scene import (
    EXPECTED_FRAMING,
    _as_numpy,
    _import_isaaclab,
    _installed_isaaclab_version,
    _resolve_global,
    camera_intrinsics,
    env_camera_poses,
    global_camera_pose,
    global_view_of,
)
from ._sources import Selection, StepFrames, done_flags, sensor_rgb, tensor
from ._views import NewtonViews

_RENDERS_ON_READ = ("newton_warp", "ovrtx")
"""Isaac Lab 3 renderers that render a camera when its data is read, i.e. after ``step()``
returned and the envs it reset were reset."""


class _PlainWrapper:
    """The part of ``gymnasium.Wrapper`` that Isaac Lab's RL wrappers use, where gymnasium is
    missing (it comes with Isaac Lab, so only outside it)."""

    env: Any

    @property
    def unwrapped(self) -> Any:
        return self.env.unwrapped

    @property
    def observation_space(self) -> Any:
        return self.env.observation_space

    @property
    def action_space(self) -> Any:
        return self.env.action_space

    @property
    def metadata(self) -> Any:
        return self.env.metadata

    @property
    def render_mode(self) -> Any:
        return self.env.render_mode

    @property
    def spec(self) -> Any:
        return getattr(self.env, "spec", None)

    def render(self) -> Any:
        return self.env.render()


try:
    import gymnasium as _gym

    _WrapperBase: type = _gym.Wrapper
except ImportError:
    _gym = None
    _WrapperBase = _PlainWrapper

__all__ = ["RecordEnvs", "RecorderCfg"]

DEFAULT_GLOBAL_CAMERA = GlobalCameraCfg.name
"""Name of the scene camera recorded as the global view when ``RecorderCfg.global_camera`` is
None (the default name of :func:`envreel.capture.isaaclab.add_global_camera`)."""

_BLOCK_CHOICES = (32, 16, 8, 4, 2, 1)
_POSE_ATOL_M = 1e-3  # float32 sim positions of envs kilometres apart differ by < 1e-4 m
_ROTATION_ATOL = 1e-3
_RANK_SUFFIX = "_rank{rank}"


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# ---------------------------------------------------------------------------------------------
# config
# ---------------------------------------------------------------------------------------------


@dataclass
class RecorderCfg:
    """What :class:`RecordEnvs` records, when, and how the store is written.

    Example:
        >>> cfg = RecorderCfg(video_length=200, video_interval=2000)
        >>> cfg.env_camera, cfg.record_reset
        ('envreel_cam', True)
    """

    env_camera: EnvCameraCfg | str = EnvCameraCfg.name
    """The per-env camera to record: the name of a camera in ``env.unwrapped.scene.sensors``,
    or the :class:`EnvCameraCfg` returned by ``add_env_camera`` (its name finds the camera and its
    offsets give exact float64 poses, checked against the sensor's own). A name alone takes the
    poses from the sensor's ``pos_w`` and ``quat_w_opengl``. Defaults to "envreel_cam"."""

    global_camera: GlobalCameraCfg | str | None = None
    """The global (bird's-eye) camera: a scene camera name, or the :class:`GlobalCameraCfg`
    returned by ``add_global_camera``. None records the camera named "envreel_global" if the
    scene has one, and no global view otherwise. Defaults to None."""

    envs: Sequence[int] | None = None
    """The envs to record, by index (e.g. ``range(16)`` of 4,096), in store order; None records
    all. With a Newton Warp env camera only these envs are rendered (envreel renders them from
    the Newton model, pixel for pixel what the camera would show); with RTX the camera renders
    every env and these are kept. The store records their ids. Defaults to None."""

    video_length: int | None = None
    """Steps per recording window; None records every step (one clip). Outside the windows no
    camera is read, so nothing is rendered. Defaults to None."""

    video_interval: int | None = None
    """Steps from the start of one window to the next (at least ``video_length``); None with
    ``video_length`` records one window. Defaults to None."""

    step_offset: int = 0
    """First step (``common_step_counter``) that may be recorded; windows start here.
    Defaults to 0."""

    frame_stride: int = 1
    """Record every ``frame_stride``-th step inside a window. Defaults to 1."""

    record_reset: bool = True
    """Record the frame of ``reset()`` (the first observation) as episode step 0 of every env.
    Defaults to True."""

    all_ranks: bool = False
    """Under torchrun (``WORLD_SIZE`` > 1): record every rank, rank r into its own store named
    ``<stem>_rank<r><suffix>`` beside ``url`` (``runs/a.zarr`` -> ``runs/a_rank1.zarr``); False
    records rank 0 only, into ``url``, and the other ranks pass through untouched.
    Defaults to False."""

    fps: float | None = None
    """Playback frames per second; None uses ``round(1 / env.unwrapped.step_dt)``.
    Defaults to None."""

    quat_order: str | None = None
    """Quaternion order of the camera sensors' ``quat_w_*`` ("xyzw" for Isaac Lab 3.x, "wxyz"
    for 2.x); None asks the installed Isaac Lab. Defaults to None."""

    block_frames: int | None = None
    """Frames per store block (unit of compression and commit); None picks the largest of 32,
    16, 8, 4, 2, 1 for which three blocks fit in ``max_queue_bytes``. Defaults to None."""

    max_queue_bytes: int = DEFAULT_MAX_QUEUE_BYTES
    """Host memory for frames waiting to be written (page-locked for CUDA frames), bytes;
    512 MiB by default. Defaults to 536870912."""

    codec: str = "zstd"
    """Compressor: "zstd", "blosc-lz4", "gzip" or "none". Defaults to "zstd"."""

    on_full: str = "block"
    """When the writer falls behind: "block" waits (back-pressure on the training loop),
    "drop" drops the frame and counts it in the store. Defaults to "block"."""

    on_error: str = "warn"
    """When writing fails: "warn" warns once, counts the error and keeps training; "raise"
    raises at the next step or at ``close()``. Defaults to "warn"."""

    overwrite: bool = False
    """Replace an existing store at the URL. Defaults to False."""

    metadata: dict = field(default_factory=dict)
    """Free-form JSON metadata stored with the run (e.g. the experiment name). Defaults to {}."""

    on_clip: Callable[[Any], Any] | None = None
    """Called with a ``ClipEvent`` each time a recording window's clip is committed, off the
    training thread (e.g. ``envreel.render.loggers.TensorBoardClips(writer)`` to log it as a
    video). Defaults to None."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Checks every field.

        Raises:
            TypeError: If a field has the wrong type (the message names it).
            ValueError: If a field has a bad value.
        """
        if isinstance(self.env_camera, str):
            _check_name(self.env_camera, "RecorderCfg.env_camera")
        elif isinstance(self.env_camera, EnvCameraCfg):
            self.env_camera.validate()
        else:
            raise TypeError(
                "RecorderCfg.env_camera must be a scene camera name or an EnvCameraCfg, got "
                f"{_short(self.env_camera)}"
            )
        if isinstance(self.global_camera, str):
            _check_name(self.global_camera, "RecorderCfg.global_camera")
        elif isinstance(self.global_camera, GlobalCameraCfg):
            self.global_camera.validate()
        elif self.global_camera is not None:
            raise TypeError(
                "RecorderCfg.global_camera must be None, a scene camera name or a "
                f"GlobalCameraCfg, got {_short(self.global_camera)}"
            )
        if _camera_name(self.global_camera) == _camera_name(self.env_camera):
            raise ValueError(
                "RecorderCfg.env_camera and global_camera name the same camera "
                f"{_camera_name(self.env_camera)!r}"
            )
        self.envs = _check_envs(self.envs)
        try:
            Windows(
                video_length=self.video_length,
                video_interval=self.video_interval,
                step_offset=self.step_offset,
                frame_stride=self.frame_stride,
            )
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"RecorderCfg: {exc}") from None
        for name in ("record_reset", "all_ranks", "overwrite"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(
                    f"RecorderCfg.{name} must be True or False, got {_short(getattr(self, name))}"
                )
        if self.fps is not None and (
            isinstance(self.fps, bool)
            or not isinstance(self.fps, numbers.Real)
            or not math.isfinite(self.fps)
            or self.fps <= 0
        ):
            raise ValueError(f"RecorderCfg.fps must be None or a positive number, got {self.fps!r}")
        if self.quat_order not in (None, *geometry.QUAT_ORDERS):
            raise ValueError(
                f"RecorderCfg.quat_order must be None, 'xyzw' or 'wxyz', got {self.quat_order!r}"
            )
        if self.block_frames is not None and (
            isinstance(self.block_frames, bool)
            or not isinstance(self.block_frames, numbers.Integral)
            or self.block_frames < 1
        ):
            raise ValueError(
                "RecorderCfg.block_frames must be None or a positive int, got "
                f"{self.block_frames!r}"
            )
        if (
            isinstance(self.max_queue_bytes, bool)
            or not isinstance(self.max_queue_bytes, numbers.Integral)
            or self.max_queue_bytes <= 0
        ):
            raise ValueError(
                "RecorderCfg.max_queue_bytes must be a positive int (bytes), got "
                f"{self.max_queue_bytes!r}"
            )
        for name, allowed in (
            ("codec", CODECS),
            ("on_full", ("block", "drop")),
            ("on_error", ("warn", "raise")),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"RecorderCfg.{name} must be one of {allowed}, got {getattr(self, name)!r}"
                )
        if self.on_clip is not None and not callable(self.on_clip):
            raise TypeError(
                f"RecorderCfg.on_clip must be callable or None, got {_short(self.on_clip)}"
            )
        if not isinstance(self.metadata, dict):
            raise TypeError(
                f"RecorderCfg.metadata must be a dict of JSON values, got {_short(self.metadata)}"
            )


def _check_envs(envs: Any) -> tuple[int, ...] | None:
    """``RecorderCfg.envs`` as a tuple of distinct env indices >= 0 (or None)."""
    if envs is None:
        return None
    if hasattr(envs, "tolist") and not isinstance(envs, str):
        envs = envs.tolist()  # numpy arrays, torch tensors
    if isinstance(envs, str | bytes) or not hasattr(envs, "__iter__"):
        raise TypeError(
            f"RecorderCfg.envs must be None or a sequence of env indices, got {_short(envs)}"
        )
    ids = list(envs)
    bad = [v for v in ids if isinstance(v, bool) or not isinstance(v, numbers.Integral)]
    if bad:
        raise TypeError(f"RecorderCfg.envs must hold ints, got {_short(bad[0])} in it")
    ids = [int(v) for v in ids]
    if not ids:
        raise ValueError("RecorderCfg.envs is empty; pass None to record every env")
    if min(ids) < 0:
        raise ValueError(f"RecorderCfg.envs must be env indices >= 0, got {min(ids)}")
    if len(set(ids)) != len(ids):
        dup = sorted({v for v in ids if ids.count(v) > 1})
        raise ValueError(f"RecorderCfg.envs lists env(s) {dup[:10]} more than once")
    return tuple(ids)


def _camera_name(camera: EnvCameraCfg | GlobalCameraCfg | str | None) -> str | None:
    if camera is None or isinstance(camera, str):
        return camera
    return camera.name


# ---------------------------------------------------------------------------------------------
# torchrun
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Ranks:
    rank: int
    world_size: int
    local_rank: int


def _env_int(name: str, default: int, environ: Any) -> int:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(
            f"environment variable {name}={raw!r} must be an integer (torchrun sets it)"
        ) from None
    if value < 0:
        raise ValueError(f"environment variable {name}={raw!r} must be >= 0")
    return value


def _ranks(environ: Any = None) -> _Ranks:
    """This process's place in a torchrun job, from ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``."""
    environ = os.environ if environ is None else environ
    world_size = _env_int("WORLD_SIZE", 1, environ)
    rank = _env_int("RANK", 0, environ)
    local_rank = _env_int("LOCAL_RANK", 0, environ)
    if world_size < 1:
        raise ValueError(f"environment variable WORLD_SIZE={world_size} must be >= 1")
    if rank >= world_size:
        raise ValueError(f"environment variable RANK={rank} must be below WORLD_SIZE={world_size}")
    return _Ranks(rank, world_size, local_rank)


def _rank_url(url: str | os.PathLike, rank: int) -> str | Path:
    """``url`` with ``_rank<r>`` inserted before the suffix of its last component."""
    suffix = _RANK_SUFFIX.format(rank=rank)
    if isinstance(url, os.PathLike):
        path = Path(url)
        return path.with_name(path.stem + suffix + path.suffix)
    if not isinstance(url, str):
        raise TypeError(
            "recording every rank (RecorderCfg.all_ranks) needs a path or URL to derive one "
            f"store per rank from, got {type(url).__name__}"
        )
    head, sep, query = url.partition("?")
    scheme, _, path = head.rpartition("://")
    match = re.fullmatch(r"(.*/)?([^/]+?)(\.[^./]+)?", path.rstrip("/"))
    if match is None:
        raise ValueError(f"cannot derive a per-rank store name from url {url!r}")
    prefix, stem, ext = match.group(1) or "", match.group(2), match.group(3) or ""
    scheme = scheme + "://" if scheme else ""
    return scheme + prefix + stem + suffix + ext + sep + query


# ---------------------------------------------------------------------------------------------
# reading the env
# ---------------------------------------------------------------------------------------------


def _cameras_in(scene: Any) -> dict[str, Any]:
    sensors = getattr(scene, "sensors", None) or {}
    return {
        name: sensor
        for name, sensor in sensors.items()
        if hasattr(getattr(getattr(sensor, "data", None), "output", None), "keys")
    }


def _find_camera(scene: Any, name: str, what: str) -> Any:
    cameras = _cameras_in(scene)
    if name not in cameras:
        raise ValueError(
            f"the scene has no camera {name!r} for the {what} (cameras: {sorted(cameras)}); add "
            "it to the scene config before gym.make (add_env_camera / add_global_camera) and run "
            "with --enable_cameras"
        )
    camera = cameras[name]
    if "rgb" not in camera.data.output:
        raise ValueError(
            f"camera {name!r} has no 'rgb' output (outputs: {sorted(camera.data.output)}); add "
            "'rgb' to its data_types"
        )
    return camera


def _image_shape(camera: Any, name: str, count: int | None) -> tuple[int, int]:
    rgb = sensor_rgb(camera)
    shape = tuple(int(d) for d in rgb.shape)
    if len(shape) != 4 or shape[-1] not in (3, 4):
        raise ValueError(
            f"camera {name!r} rgb output must be (num_instances, height, width, 3), got {shape}"
        )
    if count is not None and shape[0] != count:
        raise ValueError(
            f"camera {name!r} has {shape[0]} instances, but the env has {count} envs: the "
            "per-env camera must live under {ENV_REGEX_NS}/ (one per env)"
        )
    if count is None and shape[0] != 1:
        raise ValueError(
            f"camera {name!r} has {shape[0]} instances; the global camera must be a single "
            "camera outside the env namespace (e.g. /World/envreel_global)"
        )
    return shape[1], shape[2]


def _live_pose(camera: Any) -> bool:
    return bool(getattr(getattr(camera, "cfg", None), "update_latest_camera_pose", False))


def _sensor_poses(camera: Any, order: str) -> np.ndarray | None:
    """(K, 4, 4) float64 camera-to-world from ``pos_w`` and ``quat_w_opengl``, or None."""
    data = camera.data
    pos, quat = getattr(data, "pos_w", None), getattr(data, "quat_w_opengl", None)
    if pos is None or quat is None:
        return None
    pos = _as_numpy(tensor(pos), "pos_w")
    quat = _as_numpy(tensor(quat), "quat_w_opengl")
    if pos.ndim != 2 or pos.shape[1] != 3 or quat.shape != (pos.shape[0], 4):
        return None
    if not np.all(np.linalg.norm(quat, axis=-1) > 1e-6):
        return None  # not initialised yet
    return geometry.pose_matrix(pos, geometry.quat_to_rotation(quat, order=order))


_POSE_MAPS: dict[tuple[str, str], Any] = {}


def _pose_map(order: str) -> np.ndarray:
    """(20, 16) linear map from ``[q_a q_b (16, unit q), position (3), 1]`` to a flattened 4x4
    camera-to-world matrix: rotation entries are quadratic forms of the quaternion."""
    x, y, z, w = (0, 1, 2, 3) if order == "xyzw" else (1, 2, 3, 0)
    m = np.zeros((20, 16))

    def put(row: int, col: int, terms: list[tuple[float, int, int]]) -> None:
        for coef, a, b in terms:
            m[4 * a + b, 4 * row + col] += coef

    put(0, 0, [(1, w, w), (1, x, x), (-1, y, y), (-1, z, z)])
    put(0, 1, [(2, x, y), (-2, z, w)])
    put(0, 2, [(2, x, z), (2, y, w)])
    put(1, 0, [(2, x, y), (2, z, w)])
    put(1, 1, [(1, w, w), (-1, x, x), (1, y, y), (-1, z, z)])
    put(1, 2, [(2, y, z), (-2, x, w)])
    put(2, 0, [(2, x, z), (-2, y, w)])
    put(2, 1, [(2, y, z), (2, x, w)])
    put(2, 2, [(1, w, w), (-1, x, x), (-1, y, y), (1, z, z)])
    m[16, 3], m[17, 7], m[18, 11], m[19, 15] = 1.0, 1.0, 1.0, 1.0
    return m


def _live_poses(camera: Any, order: str) -> Any:
    """(K, 4, 4) camera-to-world float64 on the sensor's device, from ``pos_w`` and
    ``quat_w_opengl``: eight small kernels (one matrix product), no host sync (no index
    tensors, which would be copied from the host)."""
    pos = tensor(camera.data.pos_w)
    quat = tensor(camera.data.quat_w_opengl)
    if isinstance(pos, np.ndarray):
        return geometry.pose_matrix(pos, geometry.quat_to_rotation(quat, order=order))
    import torch

    key = (order, str(pos.device))
    pose_map = _POSE_MAPS.get(key)
    if pose_map is None:
        pose_map = _POSE_MAPS[key] = torch.as_tensor(
            _pose_map(order), dtype=torch.float64, device=pos.device
        )
    q = quat.double()
    q = q / q.norm(dim=1, keepdim=True)
    qq = (q[:, :, None] * q[:, None, :]).flatten(1)
    features = torch.cat([qq, pos.double(), torch.ones_like(q[:, :1])], dim=1)
    return (features @ pose_map).view(-1, 4, 4)


def _intrinsics(camera: Any, cfg: EnvCameraCfg | GlobalCameraCfg | None) -> np.ndarray | None:
    k = getattr(camera.data, "intrinsic_matrices", None)
    if k is not None:
        k = _as_numpy(tensor(k), "intrinsic_matrices")
        if k.ndim == 3 and k.shape[1:] == (3, 3) and np.all(np.isfinite(k)) and k[:, 0, 0].all():
            return k
    return None if cfg is None else camera_intrinsics(cfg)


def _poses_agree(a: np.ndarray, b: np.ndarray) -> tuple[bool, float, float]:
    dt = float(np.max(np.abs(a[..., :3, 3] - b[..., :3, 3])))
    dr = float(np.max(np.abs(a[..., :3, :3] - b[..., :3, :3])))
    scale = float(np.max(np.abs(b[..., :3, 3]), initial=1.0))
    return dt <= _POSE_ATOL_M * max(1.0, scale / 1000.0) and dr <= _ROTATION_ATOL, dt, dr


def _checked_poses(from_cfg: np.ndarray, camera: Any, order: str, name: str) -> np.ndarray:
    """Config poses, unless the sensor reports the camera elsewhere (then the sensor's)."""
    sensed = _sensor_poses(camera, order)
    if sensed is None or sensed.shape != from_cfg.shape:
        return from_cfg
    ok, dt, dr = _poses_agree(from_cfg, sensed)
    if ok:
        return from_cfg
    warnings.warn(
        f"envreel: camera {name!r} is not where its config puts it (up to {dt:.3g} m and "
        f"{dr:.3g} in rotation apart, e.g. env origins placed by a terrain generator); "
        "recording the sensor's own pos_w / quat_w_opengl poses instead",
        RuntimeWarning,
        stacklevel=4,
    )
    return sensed


def _renderer(camera: Any, major: int) -> str | None:
    cfg = getattr(camera, "cfg", None)
    renderer_cfg = getattr(cfg, "renderer_cfg", None)
    if renderer_cfg is not None:
        kind = getattr(renderer_cfg, "renderer_type", None)
        return str(kind) if kind else type(renderer_cfg).__name__
    kind = getattr(cfg, "renderer_type", None)
    if kind:
        return str(kind)
    return "isaac_rtx" if major < 3 else "default"


def _num_rerenders(unwrapped: Any) -> int:
    cfg = getattr(unwrapped, "cfg", None)
    n = getattr(cfg, "num_rerenders_on_reset", None)
    if n is None:  # Isaac Lab < 2.1: a bool
        n = 1 if getattr(cfg, "rerender_on_reset", False) else 0
    return int(n)


def _far(camera: Any) -> float:
    """Far clipping distance of a camera sensor's spawn config, metres (Newton's ray length)."""
    clipping = getattr(getattr(getattr(camera, "cfg", None), "spawn", None), "clipping_range", None)
    return float(clipping[1]) if clipping is not None else 1.0e6


def _version_or_none() -> str | None:
    try:
        return _installed_isaaclab_version()
    except ImportError:
        return None


def _global_views_in(scene: Any) -> dict[str, GlobalCameraCfg]:
    """Global views added by ``add_global_camera`` on Isaac Lab 3: name -> config."""
    entries = getattr(getattr(scene, "cfg", None), "__dict__", {})
    views = {}
    for name, entry in entries.items():
        view = global_view_of(entry)
        if view is not None:
            views[name] = view
    return views


@dataclass(frozen=True)
class _GlobalPlan:
    """How the global view is made: not at all, by a scene camera (Isaac Lab 2.x) or by
    envreel's Newton global view (Isaac Lab 3)."""

    name: str | None = None
    camera: Any = None
    newton: bool = False
    pose: np.ndarray | None = None
    intrinsics: np.ndarray | None = None
    shape: tuple[int, int] | None = None
    far: float = 1.0e6

    @classmethod
    def make(
        cls,
        wanted: GlobalCameraCfg | str | None,
        scene: Any,
        origins: np.ndarray,
        major: int,
        order: str,
    ) -> _GlobalPlan:
        carried = _global_views_in(scene)
        sensors = _cameras_in(scene)
        if wanted is None:
            if DEFAULT_GLOBAL_CAMERA in carried:
                wanted = carried[DEFAULT_GLOBAL_CAMERA]
            elif DEFAULT_GLOBAL_CAMERA in sensors:
                wanted = DEFAULT_GLOBAL_CAMERA
            else:
                return cls()
        if isinstance(wanted, str) and wanted in carried:
            wanted = carried[wanted]
        if isinstance(wanted, GlobalCameraCfg) and major >= 3:
            if wanted.renderer == "isaac_rtx":
                raise ValueError(
                    "GlobalCameraCfg.renderer='isaac_rtx' needs Isaac Lab 2.x: Isaac Lab 3 has no "
                    "single camera outside the env namespace; use renderer='newton_warp'"
                )
            if getattr(wanted, EXPECTED_FRAMING, None) == (wanted.eye, wanted.lookat):
                # add_global_camera's return value, framed on the origins expected then
                wanted = dataclasses.replace(wanted, eye=None, lookat=None)
            resolved = _resolve_global(wanted, origins)  # framed on the live env origins
            return cls(
                name=wanted.name,
                newton=True,
                pose=geometry.look_at_pose(resolved.eye, resolved.lookat, convention="opengl"),
                intrinsics=camera_intrinsics(resolved),
                shape=(resolved.height, resolved.width),
                far=float(resolved.clipping_range[1]),
            )
        name = _camera_name(wanted)
        cfg = wanted if isinstance(wanted, GlobalCameraCfg) else None
        camera = _find_camera(scene, name, "global view")
        shape = _image_shape(camera, name, None)
        pose = None
        if not _live_pose(camera):
            if cfg is not None:
                pose = global_camera_pose(cfg, env_origins=origins)[None]
                pose = _checked_poses(pose, camera, order, name)[0]
            else:
                sensed = _sensor_poses(camera, order)
                pose = None if sensed is None else sensed[0]
        k = _intrinsics(camera, cfg)
        return cls(
            name=name,
            camera=camera,
            pose=pose,
            intrinsics=None if k is None else k.reshape(-1, 3, 3)[0],
            shape=shape,
        )


def _auto_block_frames(frame_bytes: int, max_queue_bytes: int) -> int:
    for b in _BLOCK_CHOICES:
        if 3 * b * frame_bytes * 1.05 <= max_queue_bytes:
            return b
    return 1


# ---------------------------------------------------------------------------------------------
# the wrapper
# ---------------------------------------------------------------------------------------------


class RecordEnvs(_WrapperBase):  # type: ignore[misc, valid-type]
    """Records what every env of an Isaac Lab env sees into an envreel run store.

    Wrap the env right after ``gym.make`` (before the RL library's wrapper); the cameras must
    have been added to the scene config before the env was built. Each ``step()`` starts one
    batched copy of the frames and values and returns; compression and disk I/O happen on a
    background thread. ``close()`` (or ``env.close()`` of any outer wrapper) flushes the store.

    Under torchrun (``WORLD_SIZE`` > 1) rank 0 records into ``url`` and other ranks pass
    through, unless ``cfg.all_ranks``; the store records the rank, the world size and the global
    id of local env 0 (``rank * num_envs``).

    Args:
        env: An Isaac Lab env (``ManagerBasedRLEnv`` or ``DirectRLEnv``), possibly wrapped.
        url: Where the store goes: a local path or an fsspec URL (``s3://``, ``memory://``...).
        cfg: What to record and how. Defaults to None, meaning ``RecorderCfg()``.

    Attributes:
        recorder_cfg: The :class:`RecorderCfg` in use.
        url: The store this process writes (``url``, or its per-rank name with
            ``all_ranks``), or None where this rank does not record.

    Raises:
        ValueError: If a camera is missing or has the wrong number of instances, a torchrun
            variable is malformed, or a setting is out of range (the message names it).
        TypeError: If ``env`` is not an Isaac Lab-like env or ``cfg`` not a RecorderCfg.
        FileExistsError: If a store exists at ``url`` and ``cfg.overwrite`` is False.
        ImportError: If the quaternion order is needed but Isaac Lab cannot be imported and
            ``cfg.quat_order`` is None.

    Example:
        >>> env_cfg = parse_env_cfg("Isaac-Cartpole-v0", num_envs=64)  # doctest: +SKIP
        >>> add_env_camera(env_cfg.scene)  # doctest: +SKIP
        >>> env = gym.make("Isaac-Cartpole-v0", cfg=env_cfg)  # doctest: +SKIP
        >>> env = RecordEnvs(env, "runs/cartpole.zarr")  # doctest: +SKIP
    """

    def __init__(self, env: Any, url: str | os.PathLike, cfg: RecorderCfg | None = None) -> None:
        if _gym is not None and isinstance(env, _gym.Env):
            super().__init__(env)
        else:  # a duck-typed env (tests, or no gymnasium): the attributes gym.Wrapper sets
            self.env = env
            self._action_space = self._observation_space = None
            self._metadata = self._cached_spec = None
        cfg = RecorderCfg() if cfg is None else cfg
        if not isinstance(cfg, RecorderCfg):
            raise TypeError(f"cfg must be a RecorderCfg, got {type(cfg).__name__}")
        cfg.validate()
        self.recorder_cfg = cfg
        self._recorder: Recorder | None = None
        self._last_step: int | None = None
        self._pending: tuple | None = None  # a step whose frames render in the background
        self.url: str | Path | None = None

        u = env.unwrapped
        for attr in ("num_envs", "scene", "step_dt", "episode_length_buf", "common_step_counter"):
            if not hasattr(u, attr):
                raise TypeError(
                    "RecordEnvs wraps Isaac Lab envs (ManagerBasedRLEnv, DirectRLEnv): "
                    f"env.unwrapped ({type(u).__name__}) has no {attr!r}"
                )
        self._u = u
        ranks = _ranks()
        self._rank_info = ranks
        if ranks.world_size > 1 and ranks.rank != 0 and not cfg.all_ranks:
            return  # this rank passes through
        url_here = _rank_url(url, ranks.rank) if cfg.all_ranks and ranks.world_size > 1 else url
        self._setup(url_here, ranks)
        self.url = url_here

    # -- setup ---------------------------------------------------------------------------------

    def _setup(self, url: Any, ranks: _Ranks) -> None:
        cfg, u = self.recorder_cfg, self._u
        n = int(u.num_envs)
        scene = u.scene
        if cfg.envs is not None and max(cfg.envs) >= n:
            raise ValueError(
                f"RecorderCfg.envs lists env {max(cfg.envs)}, but the env has {n} envs "
                f"(indices 0..{n - 1})"
            )
        select = Selection(cfg.envs, n)
        env_cfg = cfg.env_camera if isinstance(cfg.env_camera, EnvCameraCfg) else None
        env_name = _camera_name(cfg.env_camera)
        camera = _find_camera(scene, env_name, "per-env view")
        env_shape = _image_shape(camera, env_name, n)
        order, major = self._lab_conventions()
        origins = _as_numpy(tensor(scene.env_origins), "env.unwrapped.scene.env_origins")
        if origins.shape != (n, 3):
            raise ValueError(
                f"env.unwrapped.scene.env_origins must have shape ({n}, 3), got {origins.shape}"
            )
        renderer = _renderer(camera, major)
        live = _live_pose(camera) or bool(env_cfg and env_cfg.update_latest_camera_pose)
        env_poses = None
        if not live:
            if env_cfg is not None:
                env_poses = _checked_poses(
                    env_camera_poses(origins, env_cfg), camera, order, env_name
                )
            else:
                env_poses = _sensor_poses(camera, order)
        env_k = _intrinsics(camera, env_cfg)
        glob = _GlobalPlan.make(cfg.global_camera, scene, origins, major, order)

        # Envreel renders the recorded envs itself where that renders fewer envs than the camera
        # would: a subset, a Newton Warp camera, static poses.
        newton_env = (
            select.env_ids is not None
            and major >= 3
            and renderer == "newton_warp"
            and env_poses is not None
            and env_k is not None
        )
        views = env_view = global_view = None
        if newton_env or glob.newton:
            views = NewtonViews(getattr(getattr(camera, "cfg", None), "renderer_cfg", None))
        if newton_env:
            ids = np.asarray(select.env_ids)
            k0 = env_k[ids[0]] if env_k.ndim == 3 else env_k  # (3, 3) from the cfg: every env's
            env_view = views.env_view(ids, env_poses[ids], k0, env_shape, _far(camera))
        if glob.newton:
            global_view = views.global_view(glob.pose, glob.intrinsics, glob.shape, glob.far)
        self._frames = StepFrames(
            env_camera=camera,
            select=select,
            views=views,
            env_view=env_view,
            global_camera=glob.camera,
            global_view=global_view,
            # a subset's values are gathered copies (Selection), so a frame in flight keeps them
            background=views is not None
            and views.on_cpu
            and select.env_ids is not None
            and os.environ.get("ENVREEL_RENDER_THREAD", "1") != "0",
        )
        self._select = select
        self._env_camera, self._global_camera = camera, glob.camera
        self._order = order
        self._env_live = live
        self._global_live = glob.camera is not None and _live_pose(glob.camera)
        rerenders = _num_rerenders(u)
        # Which frames show the scene before the resets done inside step(): RTX renders in the
        # physics loop, before them, unless asked to re-render; Newton Warp and OVRTX render
        # when the data is read, after step() returned, and so do envreel's Newton views.
        self._stale_on_reset = not (
            newton_env or rerenders > 0 or (major >= 3 and renderer in _RENDERS_ON_READ)
        )
        source = {
            "simulator": "isaaclab",
            "isaaclab": _version_or_none(),
            "renderer": "envreel_newton_views" if newton_env else renderer,
            "task": getattr(getattr(self.env, "spec", None), "id", None),
            "env_class": type(u).__name__,
            "env_camera": env_name,
            "env_camera_renderer": renderer,
            "global_camera": glob.name,
            "global_renderer": "envreel_newton_views" if glob.newton else glob.name and renderer,
            "num_rerenders_on_reset": rerenders,
            "lazy_sensor_update": getattr(getattr(scene, "cfg", None), "lazy_sensor_update", None),
            "device": str(getattr(u, "device", "")),
            "local_rank": ranks.local_rank,
            "adapter": "envreel.capture.isaaclab.RecordEnvs",
        }
        k = select.count
        self._recorder = Recorder(
            url,
            num_envs=k,
            env_ids=select.env_ids,
            fps=cfg.fps,
            step_dt=float(u.step_dt),
            env_frame_shape=env_shape,
            global_frame_shape=glob.shape,
            env_origins=select(origins),
            env_camera_poses=select(env_poses),
            env_intrinsics=select(env_k) if env_k is not None and env_k.ndim == 3 else env_k,
            global_camera_pose=glob.pose if not self._global_live else None,
            global_intrinsics=glob.intrinsics,
            source=source,
            metadata=dict(cfg.metadata),
            rank=ranks.rank,
            world_size=ranks.world_size,
            env_id_offset=ranks.rank * n,
            quat_order=order,
            env_pose_per_frame=live,
            global_pose_per_frame=self._global_live,
            codec=cfg.codec,
            block_frames=self._block_frames(k, env_shape, glob.shape),
            max_queue_bytes=int(cfg.max_queue_bytes),
            on_full=cfg.on_full,
            on_error=cfg.on_error,
            autoreset="same_step",
            video_length=cfg.video_length,
            video_interval=cfg.video_interval,
            step_offset=cfg.step_offset,
            frame_stride=cfg.frame_stride,
            overwrite=cfg.overwrite,
            on_clip=cfg.on_clip,
        )

    def _lab_conventions(self) -> tuple[str, int]:
        """(quaternion order of the camera sensors, Isaac Lab major version)."""
        cfg = self.recorder_cfg
        if cfg.quat_order is not None:
            return cfg.quat_order, 3 if cfg.quat_order == "xyzw" else 2
        try:
            lab = _import_isaaclab()
        except ImportError as exc:
            raise ImportError(
                f"{exc}\nRecordEnvs asks Isaac Lab for the order of its camera quaternions; "
                "without it, set RecorderCfg(quat_order='xyzw') (3.x) or 'wxyz' (2.x)"
            ) from exc
        return lab.quat_order, lab.major

    def _block_frames(
        self, k: int, env_shape: tuple[int, int], global_shape: tuple[int, int] | None
    ) -> int:
        cfg = self.recorder_cfg
        if cfg.block_frames is not None:
            return int(cfg.block_frames)
        h, w = env_shape
        frame_bytes = k * h * w * 3 + (global_shape[0] * global_shape[1] * 3 if global_shape else 0)
        block_frames = _auto_block_frames(frame_bytes, cfg.max_queue_bytes)
        if block_frames < 8:
            warnings.warn(
                f"envreel: one step of {k} envs × {h}×{w} frames is {frame_bytes / 1e6:.1f} "
                f"MB, so max_queue_bytes={cfg.max_queue_bytes} fits blocks of only "
                f"{block_frames} frame(s), which compress worse: raise "
                "RecorderCfg.max_queue_bytes, record fewer envs or lower the camera resolution",
                RuntimeWarning,
                stacklevel=4,
            )
        return block_frames

    # -- public --------------------------------------------------------------------------------

    @property
    def recorder(self) -> Recorder | None:
        """The :class:`envreel.capture.Recorder` of this rank, or None where nothing is recorded
        (ranks other than 0 without ``all_ranks``)."""
        return self._recorder

    @property
    def is_recording(self) -> bool:
        """Whether this process records (False on pass-through ranks and after ``close()``)."""
        return self._recorder is not None and not self._recorder.closed

    @property
    def stats(self) -> RecorderStats | None:
        """The recorder's counters (frames captured, dropped, written...), or None where this
        rank does not record."""
        return None if self._recorder is None else self._recorder.stats

    def start_clip(self) -> None:
        """Opens a new clip (manual clips, without ``video_length``); no-op where not recording."""
        if self._recorder is not None:
            self._drain()
            self._recorder.start_clip()

    def stop_clip(self) -> None:
        """Closes the open clip: nothing is recorded until ``start_clip()``; no-op where not
        recording."""
        if self._recorder is not None:
            self._drain()
            self._recorder.stop_clip()

    def stop_recording(self) -> None:
        """Flushes and closes the store; the env goes on stepping through this wrapper,
        unrecorded. Idempotent; ``close()`` calls it."""
        if self._recorder is None or self._recorder.closed:
            return
        try:
            self._drain()
        finally:
            self._frames.close()
            self._recorder.close()

    def reset(self, *, seed: int | None = None, options: dict | None = None, **kwargs: Any):
        """Resets the env and records its first frame (see the module doc).

        Returns:
            What the wrapped env's ``reset()`` returns: ``(obs, extras)``.
        """
        result = self.env.reset(seed=seed, options=options, **kwargs)
        if self.is_recording and self.recorder_cfg.record_reset:
            step = int(self._u.common_step_counter)
            if (self._last_step is None or step > self._last_step) and self._recorder.wants(step):
                n = self._select.count
                self._capture(
                    step,
                    stale=np.ones(n, bool) if self._stale_on_reset else None,
                    episode_step=self._select(tensor(self._u.episode_length_buf)),
                )
        return result

    def step(self, action: Any):
        """Steps the env and records the frame it rendered.

        Outside the recording windows no camera is read (nothing renders); only the done flags
        are counted, for the episode indices.

        Args:
            action: Actions, (N, action_dim) on the env's device.

        Returns:
            What the wrapped env's ``step()`` returns: ``(obs, reward, terminated, truncated,
            extras)``, unchanged.
        """
        if not self.is_recording:
            return self.env.step(action)
        u, select = self._u, self._select
        rendered_step = None
        if self._stale_on_reset:
            # RTX renders after ``episode_length_buf += 1`` and before resets, so every frame
            # (a reset env's stale one too) shows episode step ``length before the step + 1``.
            rendered_step = select(tensor(u.episode_length_buf)) + 1
        result = self.env.step(action)
        _, reward, terminated, truncated, _ = result
        step = int(u.common_step_counter)
        if self._last_step is not None and step <= self._last_step:
            warnings.warn(
                f"envreel: env.unwrapped.common_step_counter went from {self._last_step} to "
                f"{step}; steps must increase, so this frame is not recorded",
                RuntimeWarning,
                stacklevel=2,
            )
            return result
        if not self._recorder.wants(step):
            # only the episode count goes on here: one flag per env, and nothing renders
            done = done_flags(terminated, truncated, select)
            self._drain()
            self._last_step = step
            self._recorder.capture(None, step=step, terminated=done)
            return result
        terminated, truncated = select(tensor(terminated)), select(tensor(truncated))
        stale = None
        episode_step = select(tensor(u.episode_length_buf))  # rendered after resets: as now
        if rendered_step is not None:
            stale = terminated | truncated
            episode_step = rendered_step
        self._capture(
            step,
            reward=select(tensor(reward)),
            terminated=terminated,
            truncated=truncated,
            stale=stale,
            episode_step=episode_step,
        )
        return result

    def close(self) -> None:
        """Flushes and closes the store, then closes the wrapped env. Idempotent."""
        try:
            self.stop_recording()
        finally:
            self.env.close()

    # -- internals -----------------------------------------------------------------------------

    def _capture(self, step: int, **values: Any) -> None:
        """Records this step: now, or (background rendering) at the next recorder call."""
        self._drain()
        frames = self._frames.start()
        if self._env_live:
            values["env_camera_poses"] = self._select(_live_poses(self._env_camera, self._order))
        if self._global_live:
            values["global_camera_pose"] = _live_poses(self._global_camera, self._order)[0]
        self._last_step = step
        self._pending = (frames, step, values)
        if not self._frames.background:
            self._drain()

    def _drain(self) -> None:
        """Hands the step in flight, if any, to the recorder (steps stay in order)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            frames, step, values = pending
            env_rgb, global_rgb = frames()
            self._recorder.capture(env_rgb, global_rgb, step=step, **values)
