"""envreel's own views of a running Isaac Lab 3 sim, rendered from its Newton model.

Isaac Lab 3 cameras have one instance per env and render every env whenever their data is read.
Two things need more than that: a global view (one camera that sees every env, which Isaac Lab
3 refuses) and recording a subset of a large run (16 of 4,096 envs) without rendering the other
4,080. Both are rendered here with Newton's ray tracer (``newton.sensors.SensorTiledCamera``,
the same one Isaac Lab's Newton Warp renderer uses) over a *view* of the sim's Newton model: a
shallow copy that shares every array but the shape-to-world table, so that

* a subset view puts the recorded envs' shapes into worlds 0..K-1 and leaves the other envs'
  shapes out of its BVH: the cost scales with K, not N;
* the global view puts every env's shapes into one world: one camera sees them all.

Body poses come from Isaac Lab's scene data provider, exactly as its Newton Warp renderer reads
them, so a subset view renders the same pixels as the env camera would (the real-Isaac-Lab test
checks it bit for bit). Rendering happens only when asked, i.e. on recorded steps.

Particles (cloth, MPM) are not drawn in these views; rigid shapes are.
"""

from __future__ import annotations

import contextlib
import copy
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from envreel.errors import SimulatorError
from envreel.schemas import geometry

__all__ = ["NewtonViews"]

_ENV_LABEL = re.compile(r"/envs/env_(\d+)(/|$)")
_CLEAR_COLOR = 0xFFEEEEEE  # Isaac Lab's Newton Warp default: 93% grey, like RTX's background


@dataclass
class _Settings:
    """Render settings, read from a Newton Warp renderer config when the env camera has one."""

    enable_textures: bool = True
    enable_shadows: bool = False
    enable_ambient_lighting: bool = True
    enable_backface_culling: bool = False
    tile_width: int = 8
    tile_height: int = 8
    create_default_light: bool = True
    kernel_block_dim: int = 64

    @classmethod
    def of(cls, renderer_cfg: Any) -> _Settings:
        if getattr(renderer_cfg, "renderer_type", None) != "newton_warp":
            return cls()
        return cls(
            enable_textures=bool(renderer_cfg.enable_textures),
            enable_shadows=bool(renderer_cfg.enable_shadows),
            enable_ambient_lighting=bool(renderer_cfg.enable_ambient_lighting),
            enable_backface_culling=bool(renderer_cfg.enable_backface_culling),
            tile_width=int(renderer_cfg.tile_rendering_width),
            tile_height=int(renderer_cfg.tile_rendering_height),
            create_default_light=bool(renderer_cfg.create_default_light),
            kernel_block_dim=int(renderer_cfg.kernel_block_dim),
        )


class _View:
    """One camera per world of a remapped model, and its output image."""

    def __init__(
        self,
        views: NewtonViews,
        model: Any,
        poses: np.ndarray,
        intrinsics: np.ndarray,
        shape: tuple[int, int],
        far: float,
    ) -> None:
        wp, newton = views.wp, views.newton
        self.wp = wp
        settings = views.settings
        cam = newton.sensors.SensorTiledCamera
        self.model = model
        self.far = float(far)
        self.sensor = cam(
            model,
            default_render_config=cam.RenderConfig(
                enable_textures=settings.enable_textures,
                enable_shadows=settings.enable_shadows,
                enable_ambient_lighting=settings.enable_ambient_lighting,
                enable_backface_culling=settings.enable_backface_culling,
                max_distance=self.far,
                render_order=cam.RenderOrder.TILED,
                tile_width=settings.tile_width,
                tile_height=settings.tile_height,
            ),
        )
        if settings.create_default_light:
            self.sensor.utils.create_default_light(enable_shadows=settings.enable_shadows)
        h, w = shape
        k = np.asarray(intrinsics, dtype=np.float64)
        self.rays = self.sensor.utils.compute_camera_rays_pinhole_opencv(
            w, h, float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2])
        )
        self.transforms = wp.empty((1, len(poses)), dtype=wp.transformf, device=model.device)
        self.set_poses(poses)
        self.color = wp.zeros((len(poses), 1, h, w), dtype=wp.uint32, device=model.device)
        self.clear = cam.ClearData(clear_color=_CLEAR_COLOR)
        self.block_dim = settings.kernel_block_dim
        self.shape = (len(poses), h, w, 4)

    def set_poses(self, poses: np.ndarray) -> None:
        """Camera-to-world poses (K, 4, 4), OpenGL convention (envreel's)."""
        wp = self.wp
        quats = geometry.rotation_to_quat(poses[:, :3, :3], order="xyzw")  # warp's order
        host = np.concatenate([poses[:, :3, 3], quats], axis=1).astype(np.float32)
        self.transforms.assign(wp.array(host[None], dtype=wp.transformf, device="cpu"))

    def render(self, state: Any) -> None:
        self.sensor.default_render_config.max_distance = self.far
        self.model.bvh_refit_shapes(state)
        self.sensor.update(
            state,
            self.transforms,
            self.rays,
            color_image=self.color,
            clear_data=self.clear,
            kernel_block_dim=self.block_dim,
        )


class NewtonViews:
    """Subset and global views of a running Isaac Lab 3 sim, rendered from its Newton model.

    Args:
        renderer_cfg: the env camera's renderer config; a Newton Warp one gives its render
            settings (textures, shadows, light, tiles) so that views match the camera's pixels.
            Defaults to None (Isaac Lab's Newton Warp defaults).

    Raises:
        SimulatorError: the sim has no Newton model (PhysX physics and only RTX cameras).
        ImportError: Newton, Warp or Isaac Lab's Newton backend cannot be imported.
    """

    def __init__(self, renderer_cfg: Any = None) -> None:
        import importlib

        self.wp = importlib.import_module("warp")
        self.newton = importlib.import_module("newton")
        sim_utils = importlib.import_module("isaaclab.sim")
        sim = sim_utils.SimulationContext.instance()
        if sim is None:
            raise SimulatorError("no Isaac Lab SimulationContext: build the env first")
        try:
            backend_cfg = importlib.import_module("isaaclab_newton.physics").NewtonBackendCfg
            backend = sim.get_or_create_backend(
                backend_cfg(physics_cfg=sim.cfg.physics, device=sim.device)
            )
            model = backend.model
        except Exception as exc:  # noqa: BLE001 - any failure means: no Newton model here
            raise SimulatorError(
                "envreel renders the global view and env subsets of Isaac Lab 3 from the sim's "
                "Newton model, and this sim has none "
                f"(physics {type(sim.cfg.physics).__name__}: {type(exc).__name__}: {exc}); run "
                "with Newton physics (e.g. overrides=['physics=newton_mjwarp']) or a Newton Warp "
                "env camera (EnvCameraCfg(renderer='newton_warp'))"
            ) from exc
        if model is None or not model.shape_count:
            raise SimulatorError("the sim's Newton model has no shapes to render")
        self.model = model
        self.backend = backend
        self.device = model.device
        self.settings = _Settings.of(renderer_cfg)
        self._provider = sim.get_scene_data_provider()
        self._mapping = self._provider.create_mapping(list(model.body_label))
        self._state = model.state()
        self._shape_env = _shape_envs(model)
        self._format = importlib.import_module("isaaclab.scene_data").SceneDataFormat
        self._torch_stream = None
        if str(self.device).startswith("cuda"):
            import torch

            self._torch_stream = lambda: self.wp.stream_from_torch(
                torch.cuda.current_stream(torch.device(str(self.device)))
            )

    # -- views ---------------------------------------------------------------------------------

    def env_view(
        self,
        env_ids: np.ndarray,
        poses: np.ndarray,
        intrinsics: np.ndarray,
        shape: tuple[int, int],
        far: float,
    ) -> _View:
        """A view of envs ``env_ids`` (K,), camera k at ``poses[k]`` (K, 4, 4) seeing env k only."""
        worlds = {int(e): k for k, e in enumerate(env_ids)}
        return _View(self, self._remapped(worlds, len(env_ids)), poses, intrinsics, shape, far)

    def global_view(
        self, pose: np.ndarray, intrinsics: np.ndarray, shape: tuple[int, int], far: float
    ) -> _View:
        """One camera at ``pose`` (4, 4) seeing every env."""
        envs = np.unique(self._shape_env[self._shape_env >= 0])
        worlds = {int(e): 0 for e in envs}
        return _View(self, self._remapped(worlds, 1), pose[None], intrinsics, shape, far)

    def _remapped(self, world_of_env: dict[int, int], world_count: int) -> Any:
        """A shallow copy of the model whose shapes of env e are in world ``world_of_env[e]``;
        shapes of other envs are left out; global shapes (ground) stay global."""
        wp, model = self.wp, self.model
        env = self._shape_env
        flags = model.shape_flags.numpy().copy()
        worlds = model.shape_world.numpy().copy()
        for s in np.flatnonzero(env >= 0):
            w = world_of_env.get(int(env[s]))
            if w is None:
                flags[s], worlds[s] = 0, 0  # no flag: not in the BVH, never hit
            else:
                worlds[s] = w
        view = copy.copy(model)
        view.shape_world = wp.array(worlds, dtype=model.shape_world.dtype, device=self.device)
        view.shape_flags = wp.array(flags, dtype=model.shape_flags.dtype, device=self.device)
        view.world_count = int(world_count)
        view.particle_q = None  # particles keep their physics worlds: not drawn here
        view.bvh_build_shapes(self._state)
        return view

    # -- rendering -----------------------------------------------------------------------------

    @property
    def on_cpu(self) -> bool:
        """Whether the sim (and these views) run on the CPU."""
        return self._torch_stream is None

    def render(self, views: list[_View]) -> list[Any]:
        """Renders ``views`` from the sim's current body poses: ``draw(views, snapshot())``."""
        return self.draw(views, self.snapshot())

    def snapshot(self) -> Any:
        """Copies the sim's current body poses; one snapshot is valid until the next is taken.

        Cheap (one copy of ``body_count`` transforms); a :meth:`draw` from it may then run on
        another thread while the sim steps on.
        """
        poses = self._format.Transform()
        with self._stream():
            if self._provider.get_transforms(
                poses, mapping=self._mapping, count=self.model.body_count
            ):
                self.wp.copy(self._state.body_q, poses.transforms)
        return self._state

    def draw(self, views: list[_View], snapshot: Any) -> list[Any]:
        """Renders ``views`` from a :meth:`snapshot`.

        Returns:
            One (K, H, W, 4) uint8 image batch per view (RGBA, alpha 255), valid until the next
            draw: a NumPy view on the CPU, a torch tensor on CUDA (rendered on torch's current
            stream, so later torch work sees it).
        """
        with self._stream():
            out = []
            for view in views:
                view.render(snapshot)
                out.append(self._image(view))
            return out

    def _stream(self) -> Any:
        if self._torch_stream is None:
            return contextlib.nullcontext()
        return self.wp.ScopedStream(self._torch_stream(), sync_enter=False)

    def _image(self, view: _View) -> Any:
        if self._torch_stream is None:
            return view.color.numpy().view(np.uint8).reshape(view.shape)
        import torch

        return self.wp.to_torch(view.color).view(torch.uint8).view(view.shape)


def _shape_envs(model: Any) -> np.ndarray:
    """Env index of every shape (-1: global), from the shape labels' ``/envs/env_<i>/`` part
    where every env shape has one, else from the shape's Newton world."""
    worlds = model.shape_world.numpy().astype(np.int64)
    labels = list(getattr(model, "shape_label", None) or [])
    if len(labels) != len(worlds):
        return worlds
    envs = np.full(len(worlds), -1, np.int64)
    for i, label in enumerate(labels):
        match = _ENV_LABEL.search(str(label))
        if match:
            envs[i] = int(match.group(1))
    if np.any((envs < 0) != (worlds < 0)):
        return worlds  # labels that do not name an env for every env shape
    return envs
