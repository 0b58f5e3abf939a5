"""The first step of ``capture()``: check one call's inputs; nothing is written.

``Inputs`` holds a recorder's checkers (cached per input kind, see ``_frames``) and turns the
arguments of one ``capture()`` call into a ``CheckedStep``: every value validated and in the form
its copy needs (a host array, or a CUDA tensor). A call whose inputs are rejected leaves no trace.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _frames as fr

__all__ = ["CheckedStep", "Inputs", "STALE_DONE", "VALUE_NAMES"]

STALE_DONE = "done"
"""``capture(stale="done")``: the frame of every env done in the step is stale (a renderer
that renders before the resets), without an array of flags to copy."""

VALUE_NAMES = ("reward", "terminated", "truncated", "stale", "episode_step")
"""Per-env values of a step, in the order they are checked."""

_VALUE_KINDS = {
    "reward": "float",
    "terminated": "bool",
    "truncated": "bool",
    "stale": "bool",
    "episode_step": "int",
}


@dataclass(slots=True)
class CheckedStep:
    """One ``capture()`` call, checked: each input as (plan kind or is-CUDA, payload)."""

    step: int
    sim_time: float
    env: tuple[str, Any]
    glob: tuple[str, Any] | None = None
    values: dict[str, tuple[bool, Any]] = field(default_factory=dict)
    scalars: dict[str, tuple[bool, Any]] = field(default_factory=dict)
    env_pose: tuple[bool, Any] | None = None
    global_pose: tuple[bool, Any] | None = None
    stale_done: bool = False  # stale="done": the done flags say which frames are stale

    @property
    def flags(self) -> tuple[Any, Any]:
        """(terminated, truncated) as checked, each None when not given."""
        return self.values.get("terminated"), self.values.get("truncated")


class Inputs:
    """The checks of a recorder's ``capture()`` inputs.

    Args:
        num_envs: N.
        env_frame_shape: (height, width) of env frames, or None until the first capture.
        global_frame_shape: (height, width) of the global view, or None (none yet).
        value_range: (lo, hi) of float frames, or None.
        scalar_names: names allowed in ``scalars``.
        env_pose_per_frame: per-env poses come with each call.
        global_pose_per_frame: the global pose comes with each call.
        step_dt: seconds per step (the default ``sim_time``).
    """

    def __init__(
        self,
        num_envs: int,
        *,
        env_frame_shape: tuple[int, int] | None,
        global_frame_shape: tuple[int, int] | None,
        value_range: tuple[float, float] | None,
        scalar_names: tuple[str, ...],
        env_pose_per_frame: bool,
        global_pose_per_frame: bool,
        step_dt: float,
    ) -> None:
        self.num_envs = num_envs
        self.value_range = value_range
        self.scalar_names = scalar_names
        self.env_pose_per_frame = env_pose_per_frame
        self.global_pose_per_frame = global_pose_per_frame
        self.step_dt = step_dt
        self.fixed = False  # shapes fixed: the store exists
        self.last_step: int | None = None
        self.cuda = fr.CudaDevice()  # every CUDA input must be on the first one's device
        self.env = fr.ImageInput(
            "env_rgb",
            lead=(num_envs,),
            shape=env_frame_shape,
            value_range=value_range,
            cuda=self.cuda,
        )
        self.global_shape = global_frame_shape
        self.glob: fr.ImageInput | None = None
        if global_frame_shape is not None:
            self.glob = self._global_input(global_frame_shape)
        self.values = {
            name: fr.ValueInput(name, kind=kind, num_envs=num_envs, cuda=self.cuda)
            for name, kind in _VALUE_KINDS.items()
        }
        self.scalars = {
            s: fr.ValueInput(f"scalars[{s!r}]", kind="float", num_envs=num_envs, cuda=self.cuda)
            for s in scalar_names
        }

    def _global_input(self, shape: tuple[int, int] | None) -> fr.ImageInput:
        return fr.ImageInput(
            "global_rgb", lead=(), shape=shape, value_range=self.value_range, cuda=self.cuda
        )

    def fix_shapes(self, env_shape: tuple[int, int], global_shape: tuple[int, int] | None) -> None:
        """The store was created with these shapes: later calls must match them."""
        self.env.shape = env_shape
        if global_shape is None:
            self.glob = None  # left by an earlier, rejected first capture
        elif self.glob is not None:
            self.glob.shape = global_shape
        self.global_shape = global_shape
        self.fixed = True

    def check(
        self,
        env_rgb: Any,
        global_rgb: Any,
        step: Any,
        sim_time: Any,
        reward: Any,
        terminated: Any,
        truncated: Any,
        stale: Any,
        episode_step: Any,
        scalars: Any,
        env_camera_poses: Any,
        global_camera_pose: Any,
    ) -> CheckedStep:
        """A ``CheckedStep`` of one ``capture()`` call (arguments as ``capture()``'s)."""
        fresh = self.cuda.device is None  # no CUDA input accepted yet
        try:
            env = self.env.check(env_rgb)
            glob = (
                None if global_rgb is None and self.glob is None else self._check_global(global_rgb)
            )
            step = fr.check_step(step, self.last_step)
            sim_time = step * self.step_dt if sim_time is None else fr.check_sim_time(sim_time)
            stale_done = isinstance(stale, str)
            if stale_done:
                if stale != STALE_DONE:
                    raise ValueError(
                        f"stale must be an array of shape ({self.num_envs},) or {STALE_DONE!r} "
                        f"(the envs done in this step), got {stale!r}"
                    )
                stale = None
            values = {}
            for name, value in zip(
                VALUE_NAMES, (reward, terminated, truncated, stale, episode_step), strict=True
            ):
                if value is not None:
                    values[name] = self.values[name].check(value)
            return CheckedStep(
                step,
                sim_time,
                env,
                glob,
                values,
                self._check_scalars(scalars) if scalars else {},
                None
                if env_camera_poses is None and not self.env_pose_per_frame
                else self._check_env_pose(env_camera_poses),
                None
                if global_camera_pose is None and not self.global_pose_per_frame
                else self._check_global_pose(global_camera_pose),
                stale_done,
            )
        except BaseException:
            if fresh:  # a rejected call leaves no trace: nor the device its CUDA inputs named
                self._forget_cuda()
            raise

    def check_flags(self, step: Any, terminated: Any, truncated: Any) -> tuple[int, Any, Any]:
        """(step, terminated, truncated) of a call without frames."""
        step = fr.check_step(step, self.last_step)
        flags = tuple(
            None if value is None else self.values[name].check(value)
            for name, value in (("terminated", terminated), ("truncated", truncated))
        )
        return (step, *flags)

    def check_done_steps(self, steps: Any, done: Any) -> tuple[list[int], tuple[bool, Any]]:
        """(steps, (is_cuda, done)) of ``count_done``: increasing steps after the last one, and
        (len(steps), N) done flags, bool or integer."""
        checked: list[int] = []
        last = self.last_step
        if isinstance(steps, str | bytes) or not hasattr(steps, "__iter__"):
            raise TypeError(f"steps must be a sequence of step numbers, got {steps!r}")
        for step in steps:
            last = fr.check_step(step, last)
            checked.append(last)
        shape = (len(checked), self.num_envs)
        kinds, dtypes = fr.VALUE_KINDS["bool"]  # ValueInput's rule for done flags
        what = f"done must be {dtypes} of shape {shape} (steps × envs)"
        if fr.is_torch(done):
            done = fr.plain_tensor("done", done, f"{dtypes} of shape {shape}")
            if tuple(done.shape) != shape:
                raise ValueError(f"{what}, got {fr.describe(done)}")
            if done.dtype.is_complex or (done.dtype.is_floating_point and "f" not in kinds):
                raise TypeError(f"{what}, got {done.dtype}")
            if done.device.type == "cuda":
                self.cuda.check("done", done.device)
                return checked, (True, done)
            return checked, (False, done.numpy())
        fr.refuse_masked("done", done)
        arr = done if isinstance(done, np.ndarray) else np.asarray(done)
        if arr.shape != shape:
            raise ValueError(f"{what}, got shape {arr.shape}")
        if arr.dtype.kind not in kinds:
            raise TypeError(f"{what}, got {arr.dtype}")
        return checked, (False, arr)

    def _forget_cuda(self) -> None:
        """Unfix the CUDA device, and the inputs' records of CUDA tensors that passed (their
        fast paths compare no device with the recorder's)."""
        self.cuda.device = None
        inputs = [self.env, *self.values.values(), *self.scalars.values()]
        for inp in inputs + ([self.glob] if self.glob is not None else []):
            inp.forget_cuda()

    def _check_global(self, global_rgb: Any) -> tuple[str, Any] | None:
        if global_rgb is None:
            if self.glob is not None and (self.fixed or self.global_shape):
                raise ValueError(
                    "global_rgb is required on every capture: this run has a global view of "
                    f"{self.glob.shape or self.global_shape} (height, width)"
                )
            return None
        if self.glob is None:
            if self.fixed:
                raise ValueError(
                    "global_rgb was given, but this run has no global view (the first "
                    "capture had none and global_frame_shape was not set)"
                )
            self.glob = self._global_input(None)
        return self.glob.check(global_rgb)

    def _check_scalars(self, scalars: Any) -> dict[str, tuple[bool, Any]]:
        if not scalars:
            return {}
        if not hasattr(scalars, "items"):
            raise TypeError(f"scalars must be a dict of name -> (N,) values, got {scalars!r}")
        unknown = [k for k in scalars if k not in self.scalars]
        if unknown:
            raise ValueError(
                f"unknown scalar name(s) {unknown}; this recorder has scalar_names="
                f"{list(self.scalar_names)} (declare them in the constructor)"
            )
        return {k: self.scalars[k].check(v) for k, v in scalars.items() if v is not None}

    def _check_env_pose(self, poses: Any) -> tuple[bool, Any] | None:
        if poses is None and not self.env_pose_per_frame:
            return None
        if not self.env_pose_per_frame:
            raise ValueError(
                "env_camera_poses were given, but poses are static in this run: pass "
                "env_pose_per_frame=True to the Recorder, or static poses to its constructor"
            )
        if poses is None:
            raise ValueError("env_camera_poses (N, 4, 4) is required: env_pose_per_frame=True")
        return fr.check_pose("env_camera_poses", poses, (self.num_envs, 4, 4), self.cuda)

    def _check_global_pose(self, pose: Any) -> tuple[bool, Any] | None:
        if pose is None and not self.global_pose_per_frame:
            return None
        if not self.global_pose_per_frame:
            raise ValueError(
                "global_camera_pose was given, but it is static in this run: pass "
                "global_pose_per_frame=True to the Recorder, or a static pose to its "
                "constructor"
            )
        if pose is None:
            raise ValueError("global_camera_pose (4, 4) is required: global_pose_per_frame=True")
        return fr.check_pose("global_camera_pose", pose, (4, 4), self.cuda)
