"""The Isaac Lab adapter's configs, in Isaac Lab's ``*Cfg`` style: cameras and ``RecorderCfg``.

These are plain dataclasses (Isaac Lab's ``configclass`` is a dataclass too): they import
nothing from Isaac Lab, so they can be built, validated and turned into poses and intrinsics on
any machine. :func:`envreel.capture.isaaclab.add_env_camera` and
:func:`envreel.capture.isaaclab.add_global_camera` turn them into Isaac Lab ``CameraCfg``
entries of a scene config. :class:`RecorderCfg` says what ``RecordEnvs`` records; the options it
shares with the ``Recorder`` are declared once (``envreel.capture.options``,
``envreel.schemas.options``) and checked through those declarations.
"""

from __future__ import annotations

import keyword
import math
import numbers
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from envreel._checks import check_bool, check_choice, check_int, short
from envreel._options import adopt, check_one
from envreel.schemas.options import ClockOptions, PoseOptions, StoreOptions

from ..options import DEFAULT_MAX_QUEUE_BYTES, WindowOptions, WriterOptions

__all__ = ["EnvCameraCfg", "GlobalCameraCfg", "RecorderCfg", "ENV_RENDERERS", "GLOBAL_RENDERERS"]

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

ENV_RENDERERS = ("auto", "newton_warp", "isaac_rtx", "ovrtx")
"""Values of ``EnvCameraCfg.renderer``: Isaac Lab 3 camera renderers, or "auto"."""

GLOBAL_RENDERERS = ("auto", "newton_warp", "isaac_rtx")
"""Values of ``GlobalCameraCfg.renderer``."""


def _check_name(value: object, field: str) -> None:
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value) or keyword.iskeyword(value):
        raise ValueError(
            f"{field} must be a Python identifier that is also a valid USD prim name "
            f"(letters, digits, underscores, not starting with a digit), got {short(value)}"
        )


def _vec(value: object, field: str, size: int) -> tuple[float, ...]:
    if isinstance(value, str | bytes) or not hasattr(value, "__len__") or len(value) != size:
        raise ValueError(f"{field} must be a sequence of {size} numbers, got {short(value)}")
    out = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, numbers.Real):
            raise TypeError(f"{field} must contain numbers, got {short(value)}")
        if not math.isfinite(float(item)):
            raise ValueError(f"{field} must be finite, got {short(value)}")
        out.append(float(item))
    return tuple(out)


def _positive(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{field} must be a positive number, got {short(value)}")
    if not math.isfinite(float(value)) or float(value) <= 0.0:
        raise ValueError(f"{field} must be a positive finite number, got {value!r}")
    return float(value)


def _non_negative(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{field} must be a number >= 0, got {short(value)}")
    if not math.isfinite(float(value)) or float(value) < 0.0:
        raise ValueError(f"{field} must be a finite number >= 0, got {value!r}")
    return float(value)


def _clipping(value: object, field: str) -> tuple[float, float]:
    near, far = _vec(value, field, 2)
    if not 0.0 < near < far:
        raise ValueError(f"{field} must be (near, far) with 0 < near < far metres, got {value!r}")
    return near, far


def _real(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{field} must be a number, got {short(value)}")
    if not math.isfinite(float(value)):
        raise ValueError(f"{field} must be finite, got {value!r}")
    return float(value)


@dataclass
class EnvCameraCfg:
    """A camera in every env, anchored to the env origin (the per-env view).

    The pose is fixed relative to the env origin: the camera sits at ``origin + eye_offset`` and
    looks at ``origin + lookat_offset`` with the world's +Z up. The defaults are those of Isaac Lab
    Arena's synchronized visualizer.

    Example:
        >>> cfg = EnvCameraCfg(width=160, height=120)
        >>> cfg.name, cfg.eye_offset
        ('envreel_cam', (0.9, 0.0, 1.0))
    """

    name: str = "envreel_cam"
    """Scene entry name and prim name; the camera lives at ``{ENV_REGEX_NS}/<name>`` and is
    ``env.unwrapped.scene.sensors[<name>]``. Defaults to "envreel_cam"."""

    eye_offset: tuple[float, float, float] = (0.9, 0.0, 1.0)
    """Camera position relative to the env origin (x, y, z), metres. Defaults to
    (0.9, 0.0, 1.0)."""

    lookat_offset: tuple[float, float, float] = (0.0, 0.0, 0.1)
    """Point looked at, relative to the env origin (x, y, z), metres. Defaults to
    (0.0, 0.0, 0.1)."""

    width: int = 480
    """Image width in pixels. Defaults to 480."""

    height: int = 360
    """Image height in pixels. Defaults to 360."""

    focal_length: float = 24.0
    """Focal length in USD lens units (tenths of a scene unit: mm for metres); only its ratio to
    the aperture matters. Defaults to 24.0."""

    horizontal_aperture: float = 20.955
    """Horizontal aperture (sensor width) in the same unit as ``focal_length``; the vertical
    aperture follows from the aspect ratio (square pixels). Defaults to 20.955."""

    clipping_range: tuple[float, float] = (0.01, 100.0)
    """Near and far clipping distances, metres. Defaults to (0.01, 100.0)."""

    update_period: float = 0.0
    """Seconds between camera updates; 0 renders every env step. Defaults to 0.0."""

    update_latest_camera_pose: bool = False
    """Whether Isaac Lab refreshes ``pos_w``/``quat_w_*`` every step (slower; only needed when
    the camera moves). Defaults to False."""

    renderer: str = "auto"
    """Isaac Lab 3 camera renderer: "newton_warp" (Newton Warp ray tracer, kit-less, CPU or
    GPU), "isaac_rtx" (RTX, needs Isaac Sim), "ovrtx" (RTX without Kit), or "auto": "isaac_rtx"
    where Isaac Sim is installed, else "newton_warp". Isaac Lab 2.x cameras always use RTX
    ("auto" or "isaac_rtx"). Defaults to "auto"."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Checks every field and normalises sequences to tuples of floats.

        Raises:
            ValueError: If a field has a bad value (the message names it).
            TypeError: If a field has the wrong type.
        """
        _check_name(self.name, "EnvCameraCfg.name")
        self.eye_offset = _vec(self.eye_offset, "EnvCameraCfg.eye_offset", 3)  # type: ignore[assignment]
        self.lookat_offset = _vec(self.lookat_offset, "EnvCameraCfg.lookat_offset", 3)  # type: ignore[assignment]
        if self.eye_offset == self.lookat_offset:
            raise ValueError(
                f"EnvCameraCfg.eye_offset and lookat_offset must differ, both are {self.eye_offset}"
            )
        self.width = check_int(self.width, "EnvCameraCfg.width", minimum=1, unit="pixels")
        self.height = check_int(self.height, "EnvCameraCfg.height", minimum=1, unit="pixels")
        self.focal_length = _positive(self.focal_length, "EnvCameraCfg.focal_length")
        self.horizontal_aperture = _positive(
            self.horizontal_aperture, "EnvCameraCfg.horizontal_aperture"
        )
        self.clipping_range = _clipping(self.clipping_range, "EnvCameraCfg.clipping_range")
        self.update_period = _non_negative(self.update_period, "EnvCameraCfg.update_period")
        self.update_latest_camera_pose = check_bool(
            self.update_latest_camera_pose, "EnvCameraCfg.update_latest_camera_pose"
        )
        self.renderer = check_choice(self.renderer, "EnvCameraCfg.renderer", ENV_RENDERERS)


@dataclass
class GlobalCameraCfg:
    """One bird's-eye camera over all envs (the global view).

    Isaac Lab 3 refuses a single camera outside the env namespace (its cameras must have one
    instance per env), so there envreel renders the global view itself: one Newton Warp ray
    tracer over every env of the sim's Newton model, after each recorded step, from the same
    state as the env cameras (``renderer="newton_warp"``). On Isaac Lab 2.x it is a scene camera
    at ``/World/<name>`` rendered by RTX (``renderer="isaac_rtx"``).

    Either give ``eye`` and ``lookat`` (world frame), or leave both None to auto-frame the env
    origins: ``span = max(x extent, y extent of the origins) + 2 * margin`` (at least
    ``min_span``), the camera at ``distance_scale * span`` from the centroid of the origins, at
    ``azimuth_deg`` and ``elevation_deg`` (see :func:`envreel.schemas.geometry.auto_frame`).
    With ``fit_to_image`` the camera then backs off along the same ray until every origin and
    its margin is inside the image. The other defaults are those of Isaac Lab Arena's
    synchronized visualizer (1280x720, about 60 degrees of horizontal field of view).

    Example:
        >>> GlobalCameraCfg(eye=(20.0, -20.0, 15.0), lookat=(0.0, 0.0, 0.0)).eye
        (20.0, -20.0, 15.0)
    """

    name: str = "envreel_global"
    """Scene entry name (and, on Isaac Lab 2.x, the camera prim ``/World/<name>``). Defaults to
    "envreel_global"."""

    eye: tuple[float, float, float] | None = None
    """Camera position in the world (x, y, z), metres, or None to auto-frame. Defaults to None."""

    lookat: tuple[float, float, float] | None = None
    """Point looked at in the world (x, y, z), metres, or None to auto-frame. Defaults to None."""

    margin: float = 1.5
    """Auto-framing: free space around the outermost env origins, metres. Defaults to 1.5."""

    min_span: float = 1.0
    """Auto-framing: smallest framed span, metres (matters for a single env). Defaults to 1.0."""

    distance_scale: float = 1.6
    """Auto-framing: camera distance from the centroid as a multiple of the span. Defaults to
    1.6."""

    azimuth_deg: float = -45.0
    """Auto-framing: direction from the centroid to the camera around +Z, degrees from +X.
    Defaults to -45.0."""

    elevation_deg: float = 35.0
    """Auto-framing: camera angle above the horizontal plane, degrees in [-90, 90]. Defaults to
    35.0."""

    lookat_height: float = 0.0
    """Auto-framing: height above the env origins of what the envs show, metres; the camera
    looks at and fits the origins raised by it (e.g. 2.0 for Isaac Lab's cart-pole, whose rail
    is 2 m up). Defaults to 0.0."""

    fit_to_image: bool = True
    """Auto-framing: move the camera back (never closer) until every env origin, and its margin
    along x and y, projects inside the image; the seed's formula alone cuts off the nearest envs
    of large grids. Defaults to True."""

    width: int = 1280
    """Image width in pixels. Defaults to 1280."""

    height: int = 720
    """Image height in pixels. Defaults to 720."""

    focal_length: float = 18.147
    """Focal length in USD lens units; 18.147 with a 20.955 aperture gives about 60 degrees of
    horizontal field of view. Defaults to 18.147."""

    horizontal_aperture: float = 20.955
    """Horizontal aperture in the same unit as ``focal_length``. Defaults to 20.955."""

    clipping_range: tuple[float, float] = (0.01, 1.0e6)
    """Near and far clipping distances, metres (Isaac Lab's default; the global camera can be
    hundreds of metres away from thousands of envs). Defaults to (0.01, 1.0e6)."""

    update_period: float = 0.0
    """Seconds between camera updates; 0 renders every env step (Isaac Lab 2.x scene camera
    only; envreel's Newton view renders every recorded step). Defaults to 0.0."""

    renderer: str = "auto"
    """"newton_warp": envreel renders the view from the sim's Newton model (Isaac Lab 3;
    needs Newton physics or a Newton Warp camera); "isaac_rtx": an RTX scene camera (Isaac Lab
    2.x only); "auto": the first on Isaac Lab 3, the second on 2.x. Defaults to "auto"."""

    def __post_init__(self) -> None:
        self.validate()

    @property
    def auto_framed(self) -> bool:
        """True when the pose comes from the env origins (``eye`` and ``lookat`` are None)."""
        return self.eye is None

    def validate(self) -> None:
        """Checks every field and normalises sequences to tuples of floats.

        Raises:
            ValueError: If a field has a bad value, or only one of ``eye``/``lookat`` is given.
            TypeError: If a field has the wrong type.
        """
        _check_name(self.name, "GlobalCameraCfg.name")
        if (self.eye is None) != (self.lookat is None):
            raise ValueError(
                "GlobalCameraCfg.eye and lookat must both be given (explicit view) or both be "
                f"None (auto-framed), got eye={self.eye!r} and lookat={self.lookat!r}"
            )
        if self.eye is not None:
            self.eye = _vec(self.eye, "GlobalCameraCfg.eye", 3)  # type: ignore[assignment]
            self.lookat = _vec(self.lookat, "GlobalCameraCfg.lookat", 3)  # type: ignore[assignment]
            if self.eye == self.lookat:
                raise ValueError(f"GlobalCameraCfg.eye and lookat must differ, both are {self.eye}")
        self.margin = _non_negative(self.margin, "GlobalCameraCfg.margin")
        self.min_span = _positive(self.min_span, "GlobalCameraCfg.min_span")
        self.distance_scale = _positive(self.distance_scale, "GlobalCameraCfg.distance_scale")
        self.azimuth_deg = _real(self.azimuth_deg, "GlobalCameraCfg.azimuth_deg")
        self.elevation_deg = _real(self.elevation_deg, "GlobalCameraCfg.elevation_deg")
        if not -90.0 <= self.elevation_deg <= 90.0:
            raise ValueError(
                f"GlobalCameraCfg.elevation_deg must be in [-90, 90], got {self.elevation_deg!r}"
            )
        self.lookat_height = _real(self.lookat_height, "GlobalCameraCfg.lookat_height")
        self.fit_to_image = check_bool(self.fit_to_image, "GlobalCameraCfg.fit_to_image")
        self.width = check_int(self.width, "GlobalCameraCfg.width", minimum=1, unit="pixels")
        self.height = check_int(self.height, "GlobalCameraCfg.height", minimum=1, unit="pixels")
        self.focal_length = _positive(self.focal_length, "GlobalCameraCfg.focal_length")
        self.horizontal_aperture = _positive(
            self.horizontal_aperture, "GlobalCameraCfg.horizontal_aperture"
        )
        self.clipping_range = _clipping(self.clipping_range, "GlobalCameraCfg.clipping_range")
        self.update_period = _non_negative(self.update_period, "GlobalCameraCfg.update_period")
        self.renderer = check_choice(self.renderer, "GlobalCameraCfg.renderer", GLOBAL_RENDERERS)


_PREFIX = "RecorderCfg."


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
        """Checks every field: the recording, writer and store options through their one
        declaration (``envreel.capture.options``, ``envreel.schemas.options``), the rest here.

        Raises:
            TypeError: If a field has the wrong type (the message names it).
            ValueError: If a field has a bad value.
        """
        _check_camera(self.env_camera, EnvCameraCfg, "RecorderCfg.env_camera")
        _check_camera(self.global_camera, GlobalCameraCfg, "RecorderCfg.global_camera")
        if camera_name(self.global_camera) == camera_name(self.env_camera):
            raise ValueError(
                "RecorderCfg.env_camera and global_camera name the same camera "
                f"{camera_name(self.env_camera)!r}"
            )
        self.envs = _check_envs(self.envs)
        for group in (WindowOptions, WriterOptions, ClockOptions):
            adopt(self, group, prefix=_PREFIX)
        adopt(self, StoreOptions, prefix=_PREFIX, skip=("block_frames",))
        # None here means "decide later": the block size from the frames, the quaternion order
        # from the installed Isaac Lab
        for group, name in ((StoreOptions, "block_frames"), (PoseOptions, "quat_order")):
            value = check_one(group, name, getattr(self, name), _PREFIX + name, optional=True)
            setattr(self, name, value)
        for name in ("record_reset", "all_ranks"):
            check_bool(getattr(self, name), _PREFIX + name)
        if self.on_clip is not None and not callable(self.on_clip):
            raise TypeError(
                f"RecorderCfg.on_clip must be callable or None, got {short(self.on_clip)}"
            )
        if not isinstance(self.metadata, dict):
            raise TypeError(
                f"RecorderCfg.metadata must be a dict of JSON values, got {short(self.metadata)}"
            )


def _check_camera(camera: Any, cfg_type: type, label: str) -> None:
    """A camera field: a scene camera name or a camera config (None too for the global one)."""
    if isinstance(camera, str):
        _check_name(camera, label)
    elif isinstance(camera, cfg_type):
        camera.validate()
    elif cfg_type is EnvCameraCfg:
        raise TypeError(
            f"{label} must be a scene camera name or an EnvCameraCfg, got {short(camera)}"
        )
    elif camera is not None:
        raise TypeError(
            f"{label} must be None, a scene camera name or a GlobalCameraCfg, got {short(camera)}"
        )


def _check_envs(envs: Any) -> tuple[int, ...] | None:
    """``RecorderCfg.envs`` as a tuple of distinct env indices >= 0 (or None)."""
    if envs is None:
        return None
    if hasattr(envs, "tolist") and not isinstance(envs, str):
        envs = envs.tolist()  # numpy arrays, torch tensors
    if isinstance(envs, str | bytes) or not hasattr(envs, "__iter__"):
        raise TypeError(
            f"RecorderCfg.envs must be None or a sequence of env indices, got {short(envs)}"
        )
    ids = list(envs)
    bad = [v for v in ids if isinstance(v, bool) or not isinstance(v, numbers.Integral)]
    if bad:
        raise TypeError(f"RecorderCfg.envs must hold ints, got {short(bad[0])} in it")
    ids = [int(v) for v in ids]
    if not ids:
        raise ValueError("RecorderCfg.envs is empty; pass None to record every env")
    if min(ids) < 0:
        raise ValueError(f"RecorderCfg.envs must be env indices >= 0, got {min(ids)}")
    if len(set(ids)) != len(ids):
        dup = sorted({v for v in ids if ids.count(v) > 1})
        raise ValueError(f"RecorderCfg.envs lists env(s) {dup[:10]} more than once")
    return tuple(ids)


def camera_name(camera: EnvCameraCfg | GlobalCameraCfg | str | None) -> str | None:
    if camera is None or isinstance(camera, str):
        return camera
    return camera.name
