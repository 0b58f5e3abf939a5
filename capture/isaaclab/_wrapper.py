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

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..recorder import Recorder, RecorderStats
from ._cfg import RecorderCfg
from ._ranks import Ranks, rank_url, read_ranks
from ._scene import _import_isaaclab
from ._sensors import (
    DEFAULT_GLOBAL_CAMERA,
    EnvCamera,
    GlobalPlan,
    far_clip,
    live_pose,
    live_poses,
    num_rerenders,
    read_env_camera,
    version_or_none,
)
from ._sources import (
    IdleSteps,
    Selection,
    StepBuffers,
    StepFrames,
    episode_steps,
)
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

__all__ = ["RecordEnvs", "RecorderCfg", "DEFAULT_GLOBAL_CAMERA"]

_BLOCK_CHOICES = (32, 16, 8, 4, 2, 1)


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
        self._idle: IdleSteps | None = None  # done flags of steps outside the windows
        self.url: str | Path | None = None

        u = env.unwrapped
        for attr in ("num_envs", "scene", "step_dt", "episode_length_buf", "common_step_counter"):
            if not hasattr(u, attr):
                raise TypeError(
                    "RecordEnvs wraps Isaac Lab envs (ManagerBasedRLEnv, DirectRLEnv): "
                    f"env.unwrapped ({type(u).__name__}) has no {attr!r}"
                )
        self._u = u
        ranks = read_ranks()
        self._rank_info = ranks
        if ranks.world_size > 1 and ranks.rank != 0 and not cfg.all_ranks:
            return  # this rank passes through
        url_here = rank_url(url, ranks.rank) if cfg.all_ranks and ranks.world_size > 1 else url
        self._setup(url_here, ranks)
        self.url = url_here

    # -- setup ---------------------------------------------------------------------------------

    def _setup(self, url: Any, ranks: Ranks) -> None:
        """Read the env once, plan how its frames are made and start the recorder."""
        cfg, u = self.recorder_cfg, self._u
        n = int(u.num_envs)
        if cfg.envs is not None and max(cfg.envs) >= n:
            raise ValueError(
                f"RecorderCfg.envs lists env {max(cfg.envs)}, but the env has {n} envs "
                f"(indices 0..{n - 1})"
            )
        select = Selection(cfg.envs, n)
        order, major = self._lab_conventions()
        env = read_env_camera(cfg.env_camera, u.scene, n, order, major)
        glob = GlobalPlan.make(cfg.global_camera, u.scene, env.origins, major, order)
        # Envreel renders the recorded envs itself where that renders fewer envs than the camera
        # would: a subset, a Newton Warp camera, static poses.
        newton_env = (
            select.env_ids is not None
            and major >= 3
            and env.renderer == "newton_warp"
            and env.poses is not None
            and env.intrinsics is not None
        )
        self._frames = _step_frames(env, glob, select, newton_env)
        self._bufs = StepBuffers()
        self._select = select
        self._env_camera, self._global_camera = env.camera, glob.camera
        self._order = order
        self._env_live = env.live
        self._global_live = glob.camera is not None and live_pose(glob.camera)
        rerenders = num_rerenders(u)
        # Which frames show the scene before the resets done inside step(): RTX renders in the
        # physics loop, before them, unless asked to re-render; Newton Warp and OVRTX render
        # when the data is read, after step() returned, and so do envreel's Newton views.
        self._stale_on_reset = not (
            newton_env or rerenders > 0 or (major >= 3 and env.renderer in _RENDERS_ON_READ)
        )
        source = self._source(env, glob, newton_env, rerenders, ranks)
        self._recorder = self._make_recorder(url, env, glob, select, source, ranks)
        self._idle = IdleSteps(self._recorder, select)

    def _source(
        self, env: EnvCamera, glob: GlobalPlan, newton_env: bool, rerenders: int, ranks: Ranks
    ) -> dict[str, Any]:
        """The store's ``source``: what produced the frames."""
        u = self._u
        renderer = env.renderer
        return {
            "simulator": "isaaclab",
            "isaaclab": version_or_none(),
            "renderer": "envreel_newton_views" if newton_env else renderer,
            "task": getattr(getattr(self.env, "spec", None), "id", None),
            "env_class": type(u).__name__,
            "env_camera": env.name,
            "env_camera_renderer": renderer,
            "global_camera": glob.name,
            "global_renderer": "envreel_newton_views" if glob.newton else glob.name and renderer,
            "num_rerenders_on_reset": rerenders,
            "lazy_sensor_update": getattr(
                getattr(u.scene, "cfg", None), "lazy_sensor_update", None
            ),
            "device": str(getattr(u, "device", "")),
            "local_rank": ranks.local_rank,
            "adapter": "envreel.capture.isaaclab.RecordEnvs",
        }

    def _make_recorder(
        self,
        url: Any,
        env: EnvCamera,
        glob: GlobalPlan,
        select: Selection,
        source: dict[str, Any],
        ranks: Ranks,
    ) -> Recorder:
        cfg = self.recorder_cfg
        k, env_k = select.count, env.intrinsics
        return Recorder(
            url,
            num_envs=k,
            env_ids=select.env_ids,
            fps=cfg.fps,
            step_dt=float(self._u.step_dt),
            env_frame_shape=env.shape,
            global_frame_shape=glob.shape,
            env_origins=select(env.origins),
            env_camera_poses=select(env.poses),
            env_intrinsics=select(env_k) if env_k is not None and env_k.ndim == 3 else env_k,
            global_camera_pose=glob.pose if not self._global_live else None,
            global_intrinsics=glob.intrinsics,
            source=source,
            metadata=dict(cfg.metadata),
            rank=ranks.rank,
            world_size=ranks.world_size,
            env_id_offset=ranks.rank * int(self._u.num_envs),
            quat_order=self._order,
            env_pose_per_frame=env.live,
            global_pose_per_frame=self._global_live,
            codec=cfg.codec,
            block_frames=self._block_frames(k, env.shape, glob.shape),
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
                stacklevel=5,
            )
        return block_frames

    # -- public --------------------------------------------------------------------------------

    @property
    def recorder(self) -> Recorder | None:
        """The :class:`envreel.capture.Recorder` of this rank, or None where nothing is recorded
        (ranks other than 0 without ``all_ranks``)."""
        self._flush_idle()
        return self._recorder

    @property
    def is_recording(self) -> bool:
        """Whether this process records (False on pass-through ranks and after ``close()``)."""
        return self._recorder is not None and not self._recorder.closed

    @property
    def stats(self) -> RecorderStats | None:
        """The recorder's counters (frames captured, dropped, written...), or None where this
        rank does not record."""
        self._flush_idle()
        return None if self._recorder is None else self._recorder.stats

    def start_clip(self) -> None:
        """Opens a new clip (manual clips, without ``video_length``); no-op where not recording."""
        if self._recorder is not None:
            self._hand_over()
            self._recorder.start_clip()

    def stop_clip(self) -> None:
        """Closes the open clip: nothing is recorded until ``start_clip()``; no-op where not
        recording."""
        if self._recorder is not None:
            self._hand_over()
            self._recorder.stop_clip()

    def stop_recording(self) -> None:
        """Flushes and closes the store; the env goes on stepping through this wrapper,
        unrecorded. Idempotent; ``close()`` calls it."""
        if self._recorder is None or self._recorder.closed:
            return
        try:
            self._hand_over()
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
                    episode_step=self._select.take(self._u.episode_length_buf),
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
        recorder = self._recorder
        if recorder is None or recorder.closed:
            return self.env.step(action)
        u, take = self._u, self._select.take
        rendered_step = None
        if self._stale_on_reset:
            # RTX renders after ``episode_length_buf += 1`` and before resets, so every frame
            # (a reset env's stale one too) shows episode step ``length before the step + 1``.
            rendered_step = episode_steps(take(u.episode_length_buf), 1, self._bufs)
        result = self.env.step(action)
        _, reward, terminated, truncated, _ = result
        step = int(u.common_step_counter)
        last = self._last_step
        if last is not None and step <= last:
            warnings.warn(
                f"envreel: env.unwrapped.common_step_counter went from {last} to "
                f"{step}; steps must increase, so this frame is not recorded",
                RuntimeWarning,
                stacklevel=2,
            )
            return result
        if not recorder.wants(step):
            # only the episode count goes on here: nothing renders, and the done flags are
            # kept on their device and counted a batch at a time (IdleSteps)
            self._drain()
            self._last_step = step
            self._idle.push(step, terminated, truncated)
            return result
        if rendered_step is None:  # rendered after resets: as now
            stale = None
            episode_step = episode_steps(take(u.episode_length_buf), 0, self._bufs)
        else:  # the frames of the envs reset in this step are stale
            stale, episode_step = "done", rendered_step
        self._capture(
            step,
            reward=take(reward),
            terminated=take(terminated),
            truncated=take(truncated),
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
        self._hand_over()
        frames = self._frames
        later = frames.start() if frames.background else None
        if self._env_live:
            values["env_camera_poses"] = self._select(live_poses(self._env_camera, self._order))
        if self._global_live:
            values["global_camera_pose"] = live_poses(self._global_camera, self._order)[0]
        self._last_step = step
        if later is not None:
            self._pending = (later, step, values)
        else:
            env_rgb, global_rgb = frames.read()
            self._recorder.capture(env_rgb, global_rgb, step=step, **values)

    def _hand_over(self) -> None:
        """Hands the recorder all it has not been given, in step order: the step in flight, and
        the done flags of the steps outside the windows (none while a step is in flight: the
        first of them drains it). Nothing to hand over, as on most recorded steps: one check."""
        idle = self._idle
        if self._pending is None and (idle is None or not idle.steps):
            return
        self._drain()
        self._flush_idle()

    def _flush_idle(self) -> None:
        """Counts the done flags of the steps outside the windows not counted yet."""
        if self._idle is not None and self._recorder is not None and not self._recorder.closed:
            self._idle.flush()

    def _drain(self) -> None:
        """Hands the step in flight, if any, to the recorder (steps stay in order)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            frames, step, values = pending
            env_rgb, global_rgb = frames()
            self._recorder.capture(env_rgb, global_rgb, step=step, **values)


def _step_frames(
    env: EnvCamera, glob: GlobalPlan, select: Selection, newton_env: bool
) -> StepFrames:
    """How each recorded step's frames are made: read from the cameras, or rendered by
    envreel's Newton views (an env subset of a Newton Warp camera, the Isaac Lab 3 global view)."""
    views = env_view = global_view = None
    if newton_env or glob.newton:
        views = NewtonViews(getattr(getattr(env.camera, "cfg", None), "renderer_cfg", None))
    if newton_env:
        ids = np.asarray(select.env_ids)
        env_k = env.intrinsics
        k0 = env_k[ids[0]] if env_k.ndim == 3 else env_k  # (3, 3) from the cfg: every env's
        env_view = views.env_view(ids, env.poses[ids], k0, env.shape, far_clip(env.camera))
    if glob.newton:
        global_view = views.global_view(glob.pose, glob.intrinsics, glob.shape, glob.far)
    return StepFrames(
        env_camera=env.camera,
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


def _auto_block_frames(frame_bytes: int, max_queue_bytes: int) -> int:
    for b in _BLOCK_CHOICES:
        if 3 * b * frame_bytes * 1.05 <= max_queue_bytes:
            return b
    return 1
