"""Demo physics source: many cart-pole worlds simulated on CPU with NVIDIA Newton.

:class:`DemoSim` steps ``num_envs`` independent cart-poles (one Newton *world* each), laid out
on a grid of env origins, and renders every step:

* one raytraced RGB view per env (Newton's ``SensorCamera``, or ``SensorTiledCamera`` before
  Newton 1.8; view ``i`` renders world ``i`` plus the shared ground plane), and
* one global RGB view that sees all envs at once.

A camera view only ever sees its own world, so the global view is rendered from a
second, render-only Newton model that holds every env in a single world; each frame the
physics model's body poses are copied into it (both models add the same bodies in the same
order, so ``body_q`` is copied verbatim).

The scene, in each env's local frame (world Z up, env origin on the ground):

* a white disc on the ground at the env origin (a projection landmark),
* two dark posts holding a rail at height 1 m along X,
* a cart (a different colour per env) sliding on the rail, driven by a force,
* a yellow pole hinged at the cart's front face, with a red ball at its tip.

Each env runs a noisy balancing controller: ``u = skill * u_lqr + (1 - skill) * noise``, with
``skill`` drawn per episode, so some envs fall over quickly (terminated) and others balance
until ``episode_length`` (truncated). Finished envs are reset inside :meth:`DemoSim.step`, at
different times per env, as Isaac Lab does.

Compilation: Warp compiles its kernels to native code the first time they are used (measured
47 s on the 2-core dev machine, budget ~1-1.5 min on a busy one), then loads them from its
kernel cache (~/.cache/warp, ~3 s). The constructor and the first :meth:`DemoSim.step` trigger
that compilation; call :meth:`DemoSim.warmup` to do it up front, e.g. after printing "compiling
Warp kernels (first run only, ~1-1.5 min)". Warp prints one "Module ... (compiled)" line per
module it compiles.

Speed (2 CPU cores, warm cache, 16 envs at 128x128 plus the 640x360 global view): ~145-160 ms
of CPU per step; the global view renders on a second thread (Warp's CPU kernels are called
through ctypes, which releases the GIL), so a step takes ~80-95 ms of wall time when both cores
are free: 15.5-19 s for 200 steps. Physics is ~7 ms of that, the rest is ray tracing.

Determinism: on CPU every Warp kernel runs serially, the two render threads only read the
shared state and write separate images, and all randomness comes from one
``numpy.random.Generator`` seeded with ``seed``, so two sims with the same arguments produce
bit-identical frames, rewards and resets (checked over 200 steps at the default settings).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from envreel.schemas.geometry import (
    grid_env_origins,
    look_at_pose,
    pinhole_intrinsics,
    project_points,
)

__all__ = ["DemoSim"]

_INSTALL_HINT = "pip install 'envreel[demo]'"

# --- scene geometry (metres, env-local frame, Z up) -------------------------------------------
_RAIL_Z = 1.0  # rail and cart centre height
_RAIL_HALF = 1.0  # rail half length; with the default 2.5 m spacing neighbours keep a 0.5 m gap
_RAIL_Y = 0.16  # rail sits behind the cart (away from the env camera) so it stays visible
_CART_HALF = (0.18, 0.12, 0.08)
_PIVOT_Y = -0.17  # pole hinge on the cart's front face, so the cart never hides the pole
_POLE_LEN = 0.7
_POLE_RADIUS = 0.04  # thick enough to span ~3 px in a 128 px env view
_TIP_RADIUS = 0.08
_CART_LIMIT = 0.85  # prismatic joint limit [m]

# --- episode logic ------------------------------------------------------------------------------
_MAX_ANGLE = 0.7  # |pole angle| [rad] past which the episode terminates (~40 deg, clearly tilted)
_MAX_CART_X = 0.8  # |cart x| [m] past which the episode terminates (before the joint limit)
_FORCE_MAX = 40.0  # actuator force limit [N]
# A soft LQR (low costs, pricey force) lets the pole sway visibly instead of snapping upright.
_LQR_Q = (1.0, 5.0, 0.2, 0.5)  # state cost on (x, theta, x_dot, theta_dot)
_LQR_R = 0.02  # force cost

# --- timing -----------------------------------------------------------------------------------
_PHYSICS_DT = 1.0 / 240.0
_SUBSTEPS = 8  # env step = 1/30 s: a recording at 30 fps plays back in real time

# --- cameras ------------------------------------------------------------------------------------
_ENV_EYE = (0.0, -2.5, 1.35)  # env-local camera position, in front of the rail (-Y side)
_ENV_TARGET = (0.0, 0.0, 0.85)
_ENV_VFOV_DEG = 50.0
_GLOBAL_VFOV_DEG = 30.0  # narrow-ish: less keystone on the outer envs
_GLOBAL_ELEVATION_DEG = 38.0  # how far above the horizon the global camera looks down from
_GLOBAL_MARGIN = 0.04  # fraction of the image kept free around the fitted grid
# Shadow rays cost ~75% more CPU per view. Env views are mostly sky, so their shadows are cheap
# and help read the cart height; the global view is mostly ground, where shadows would push a
# 16-env step well past the ~0.1 s budget on 2 cores.
_ENV_SHADOWS = True
_GLOBAL_SHADOWS = False

# --- colours (linear-ish RGB in [0, 1]) ---------------------------------------------------------
_CART_COLORS = (
    (0.10, 0.35, 0.95),  # blue
    (0.10, 0.70, 0.25),  # green
    (0.60, 0.20, 0.85),  # purple
    (0.00, 0.65, 0.70),  # teal
    (0.90, 0.25, 0.65),  # pink
    (0.95, 0.45, 0.05),  # orange
    (0.35, 0.35, 0.40),  # slate
    (0.55, 0.80, 0.10),  # lime
)
_POLE_COLOR = (1.0, 0.80, 0.10)
_TIP_COLOR = (0.90, 0.05, 0.10)
_FRAME_COLOR = (0.18, 0.18, 0.20)
_MARKER_COLOR = (1.0, 1.0, 1.0)
_GROUND_COLOR = (0.45, 0.55, 0.45)
_SKY_RGB8 = (150, 190, 235)


def _import_newton() -> tuple[Any, Any]:
    """Imports Warp and Newton lazily, so envreel itself never needs them.

    Returns:
        The ``warp`` module and the ``newton`` module.

    Raises:
        ImportError: If Newton or Warp is not installed.
    """
    try:
        import newton
        import newton.sensors
        import warp as wp
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            f"envreel's demo simulation needs NVIDIA Newton and Warp; install them with: "
            f"{_INSTALL_HINT}"
        ) from exc
    return wp, newton


class _Views:
    """One pinhole camera per world of a Newton model, rendered to RGB.

    Newton 1.8 has ``newton.sensors.SensorCamera`` (views laid out ``(view, H, W)``); 1.6 and
    1.7 (Isaac Lab 3.0 pins 1.6.1) have ``SensorTiledCamera`` (``(world, camera, H, W)``, rays
    and transforms per camera): the same ray tracer, the same pixels, other array layouts.

    Args:
        wp, newton: the modules.
        model: the model; view i renders world i (and the global shapes).
        poses: (V, 4, 4) camera-to-world, OpenGL convention; V = the model's world count.
        intrinsics: (3, 3) pinhole matrix shared by the views.
        shape: (height, width).
        clear_color: background, packed RGBA with R in the low byte.
        shadows: shadow rays for the default light.
    """

    def __init__(
        self,
        wp: Any,
        newton: Any,
        model: Any,
        *,
        poses: np.ndarray,
        intrinsics: np.ndarray,
        shape: tuple[int, int],
        clear_color: int,
        shadows: bool,
    ) -> None:
        h, w = shape
        fx, fy, cx, cy = (
            float(v)
            for v in (intrinsics[0, 0], intrinsics[1, 1], intrinsics[0, 2], intrinsics[1, 2])
        )
        device = model.device
        tfs = [_to_transform(wp, pose) for pose in poses]
        sensors = newton.sensors
        self._new = hasattr(sensors, "SensorCamera")
        if self._new:
            cam = sensors.SensorCamera
            self.camera = cam(model, default_clear_data=cam.ClearData(clear_color=clear_color))
            self.camera.create_default_light(enable_shadows=shadows)
            self.rays = cam.compute_camera_rays_pinhole_opencv(w, h, fx, fy, cx, cy, device=device)
            self.transforms = wp.array(tfs, dtype=wp.transformf, device=device)
            self.color = self.camera.allocate_image_color(len(tfs), w, h)
            self._clear = None
        else:
            cam = sensors.SensorTiledCamera
            self.camera = cam(model)
            self.camera.default_render_config.enable_shadows = shadows  # before the light: 1.4+
            self.camera.utils.create_default_light(enable_shadows=shadows)
            self.rays = self.camera.utils.compute_camera_rays_pinhole_opencv(w, h, fx, fy, cx, cy)
            self.transforms = wp.array([tfs], dtype=wp.transformf, device=device)
            self.color = wp.zeros((len(tfs), 1, h, w), dtype=wp.uint32, device=device)
            self._clear = cam.ClearData(clear_color=clear_color)
        self.camera.default_render_config.enable_shadows = shadows
        self._shape = (len(tfs), h, w)

    def render(self, state: Any) -> np.ndarray:
        """(V, H, W, 3) uint8, a fresh array, from ``state`` (BVHs refitted by the caller)."""
        kwargs = {} if self._new else {"clear_data": self._clear}
        self.camera.update(state, self.transforms, self.rays, color_image=self.color, **kwargs)
        return _rgba_to_rgb(self.color.numpy().reshape(self._shape))


def _to_transform(wp: Any, pose: np.ndarray) -> Any:
    """A (4, 4) camera-to-world matrix as a ``wp.transformf``."""
    rot = wp.mat33(*[float(v) for v in pose[:3, :3].reshape(-1)])
    return wp.transformf(wp.vec3f(*[float(v) for v in pose[:3, 3]]), wp.quat_from_matrix(rot))


def _intrinsics(height: int, width: int, vfov_deg: float) -> np.ndarray:
    """Pinhole K for square pixels from a vertical field of view [deg], centred principal point
    (the apertures given in pixels, so the focal length is in pixels too)."""
    focal = 0.5 * height / math.tan(math.radians(vfov_deg) / 2.0)
    return pinhole_intrinsics(
        focal_length=focal,
        horizontal_aperture=width,
        vertical_aperture=height,
        width=width,
        height=height,
    )


def _fit_global_camera(
    origins: np.ndarray, height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Places one camera so the whole env grid fits in its image.

    The camera looks along +Y, tilted down by ``_GLOBAL_ELEVATION_DEG``. For a given aim point
    (the grid's bounding-box centre, slid along Y) its distance is the smallest (bisection) at
    which all box corners land inside the image with a small margin; the aim point is then slid
    (bisection again) until the free space above and below the grid is equal, because with a
    tilted camera the near row otherwise hugs the bottom edge and the top stays empty.

    Args:
        origins: (N, 3) env origins [m].
        height: Image height [px].
        width: Image width [px].

    Returns:
        (4, 4) float64 camera-to-world pose and (3, 3) float64 K.
    """
    K = _intrinsics(height, width, _GLOBAL_VFOV_DEG)
    reach_x = _RAIL_HALF + 0.1
    lo = origins.min(axis=0).astype(np.float64) + (-reach_x, -0.35, 0.0)
    hi = origins.max(axis=0).astype(np.float64) + (reach_x, 0.35, _RAIL_Z + _POLE_LEN + 0.1)
    corners = np.array(
        [[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]
    )
    centre = 0.5 * (lo + hi)
    elev = math.radians(_GLOBAL_ELEVATION_DEG)
    direction = np.array([0.0, -math.cos(elev), math.sin(elev)])
    mu, mv = _GLOBAL_MARGIN * width, _GLOBAL_MARGIN * height

    def fitted(shift: float) -> tuple[np.ndarray, float]:
        """Closest pose aimed at centre + shift * Y showing every corner, and top - bottom gap."""
        target = centre + np.array([0.0, shift, 0.0])

        def fits(dist: float) -> bool:
            uv, in_front = project_points(
                corners, look_at_pose(target + dist * direction, target), K
            )
            return bool(
                np.all(in_front)
                and np.all((uv[:, 0] >= mu) & (uv[:, 0] <= width - mu))
                and np.all((uv[:, 1] >= mv) & (uv[:, 1] <= height - mv))
            )

        near, far = 0.0, 10.0
        while not fits(far):
            far *= 2.0
        for _ in range(40):
            mid = 0.5 * (near + far)
            near, far = (near, mid) if fits(mid) else (mid, far)
        pose = look_at_pose(target + far * direction, target)
        uv, _ = project_points(corners, pose, K)
        return pose, float(uv[:, 1].min() - (height - uv[:, 1].max()))

    span = float(hi[1] - lo[1])
    a, b = -0.5 * span, 0.5 * span
    gap_a, gap_b = fitted(a)[1], fitted(b)[1]
    if gap_a * gap_b > 0:  # no balanced aim inside the grid; keep the plain centre
        return fitted(0.0)[0], K
    for _ in range(30):
        mid = 0.5 * (a + b)
        gap_mid = fitted(mid)[1]
        if gap_mid * gap_a > 0:
            a, gap_a = mid, gap_mid
        else:
            b = mid
    return fitted(0.5 * (a + b))[0], K


def _expm(M: np.ndarray) -> np.ndarray:
    """Matrix exponential by scaling and squaring with a Taylor series (numpy only).

    Args:
        M: (n, n) float64 matrix.

    Returns:
        (n, n) float64 ``exp(M)``.
    """
    norm = np.linalg.norm(M, ord=np.inf)
    squarings = max(0, int(math.ceil(math.log2(norm))) + 1) if norm > 0.5 else 0
    A = M / (2.0**squarings)
    result = np.eye(M.shape[0])
    term = np.eye(M.shape[0])
    for k in range(1, 20):
        term = term @ A / k
        result = result + term
    for _ in range(squarings):
        result = result @ result
    return result


def _lqr_gain(
    cart_mass: float, pole_mass: float, com: float, inertia: float, dt: float
) -> np.ndarray:
    """Discrete LQR gain for the cart-pole linearised about upright, force held for ``dt``.

    State ``s = (x, theta, x_dot, theta_dot)``; ``theta > 0`` leans the pole towards +X.
    Linearised dynamics: ``(M + m) x'' + m l theta'' = F`` and
    ``m l x'' + (I + m l^2) theta'' = m g l theta``.

    Args:
        cart_mass: Cart mass M [kg].
        pole_mass: Pole (rod + tip ball) mass m [kg].
        com: Hinge-to-pole-centre-of-mass distance l [m].
        inertia: Pole inertia about its centre of mass, around the hinge axis [kg m^2].
        dt: Control period [s].

    Returns:
        (4,) float64 gain K, so that ``F = -K @ s``.
    """
    g = 9.81
    mass = np.array(
        [[cart_mass + pole_mass, pole_mass * com], [pole_mass * com, inertia + pole_mass * com**2]]
    )
    minv = np.linalg.inv(mass)
    A = np.zeros((4, 4))
    A[0, 2] = A[1, 3] = 1.0
    A[2:, 1] = minv @ np.array([0.0, pole_mass * g * com])
    B = np.zeros((4, 1))
    B[2:, 0] = minv @ np.array([1.0, 0.0])
    # Zero-order-hold discretisation: exp([[A, B], [0, 0]] dt) = [[Ad, Bd], [0, I]].
    aug = np.zeros((5, 5))
    aug[:4, :4] = A
    aug[:4, 4:] = B
    ex = _expm(aug * dt)
    Ad, Bd = ex[:4, :4], ex[:4, 4:]
    Q = np.diag(_LQR_Q)
    R = np.array([[_LQR_R]])
    P = Q.copy()
    for _ in range(2000):  # Riccati fixed-point iteration; converges in a few hundred steps
        BtP = Bd.T @ P
        gain = np.linalg.solve(R + BtP @ Bd, BtP @ Ad)
        P_next = Q + Ad.T @ P @ (Ad - Bd @ gain)
        if np.max(np.abs(P_next - P)) < 1e-10 * max(1.0, np.max(np.abs(P))):
            P = P_next
            break
        P = P_next
    BtP = Bd.T @ P
    return np.linalg.solve(R + BtP @ Bd, BtP @ Ad)[0]


def _rgba_to_rgb(packed: np.ndarray) -> np.ndarray:
    """Unpacks SensorCamera colour output (uint32 with R in the low byte) into RGB bytes.

    Args:
        packed: (..., H, W) uint32.

    Returns:
        (..., H, W, 3) uint8, a fresh contiguous array (alpha dropped).
    """
    rgba = np.ascontiguousarray(packed).view(np.uint8).reshape(*packed.shape, 4)
    return np.ascontiguousarray(rgba[..., :3])


class DemoSim:
    """Several worlds (envs) on a grid, each with a cart-pole that visibly moves.

    Every env is one Newton world holding a cart-pole (cart on a rail, hinged pole with a red
    tip). The envs are simulated together by ``SolverFeatherstone`` and diverge because each
    starts from a different random state and runs a differently noisy controller.

    Camera conventions: poses are camera-to-world in the OpenGL convention (the camera looks
    along its -Z axis, +Y is up in the image, +X right), the world is Z-up. A world point ``p``
    projects to pixel ``u = cx + fx * x / (-z)``, ``v = cy - fy * y / (-z)`` with
    ``(x, y, z) = R^T (p - t)``; pixel ``(row i, column j)`` covers ``[j, j + 1) x [i, i + 1)``
    in those coordinates.

    How the poses and intrinsics were verified against the renders (newton 1.8.0): with 16 envs
    at 128x128 and the 640x360 global view, after 25 steps, each env origin (the centre of the
    white ground disc) and each pole-tip ball centre was projected with the reported pose and K
    using the formula above, and the ``SensorCamera`` shape-index image rendered alongside was
    read at that pixel. In all 16 env views both points hit their own disc / tip-ball shape and
    the RGB pixel there was white / red; in the global view all 16 tips and 15 of 16 discs hit
    their own shape (the 16th disc is hidden behind another env's tip ball, a true occlusion).
    tests/integration/test_demo_sim.py repeats the tip-is-red check on every run.

    Attributes:
        num_envs: Number of envs N.
        step_dt: Seconds of simulated time per env step (physics dt x substeps).
        env_origins: (N, 3) float32 world position of each env's origin, on a grid in the XY plane.
        env_camera_poses: (N, 4, 4) float64 camera-to-world pose of each env camera.
        env_intrinsics: (N, 3, 3) float64 pinhole K of each env camera [px].
        global_camera_pose: (4, 4) float64 camera-to-world pose of the camera that sees all envs.
        global_intrinsics: (3, 3) float64 pinhole K of the global camera [px].
    """

    def __init__(
        self,
        num_envs: int = 16,
        *,
        height: int = 128,
        width: int = 128,
        global_height: int = 360,
        global_width: int = 640,
        spacing: float = 2.5,
        episode_length: int = 80,
        seed: int = 0,
        device: str = "cpu",
    ):
        """Builds the worlds, the solver and both cameras.

        The first construction in a fresh environment compiles Warp kernels (see the module
        docstring and :meth:`warmup`).

        Args:
            num_envs: Number of envs N (>= 1).
            height: Env image height H [px].
            width: Env image width W [px].
            global_height: Global image height Hg [px].
            global_width: Global image width Wg [px].
            spacing: Distance between neighbouring env origins [m]. Below ~2.3 m neighbouring
                rails overlap in the global view (each env view shows only its own env).
            episode_length: Env steps after which an episode is truncated (>= 1).
            seed: Seed for initial states, controller noise and resets.
            device: Warp device, e.g. ``"cpu"`` or ``"cuda:0"``.

        Raises:
            ImportError: If Newton / Warp are not installed.
            ValueError: If a size or count argument is not positive.
        """
        for name, value in (
            ("num_envs", num_envs),
            ("height", height),
            ("width", width),
            ("global_height", global_height),
            ("global_width", global_width),
            ("episode_length", episode_length),
        ):
            if int(value) < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if not spacing > 0:
            raise ValueError(f"spacing must be > 0, got {spacing}")

        wp, newton = _import_newton()
        self._wp = wp
        self._newton = newton

        self.num_envs = int(num_envs)
        self.step_dt = _PHYSICS_DT * _SUBSTEPS
        self._height, self._width = int(height), int(width)
        self._global_hw = (int(global_height), int(global_width))
        self._episode_length = int(episode_length)
        self._device = device
        self._rng = np.random.default_rng(seed)
        self._step_count = 0

        N = self.num_envs
        self.env_origins = grid_env_origins(N, float(spacing)).astype(np.float32)

        # Physics model: one world per env, so each env view renders only its own env.
        self._model = self._build_model(per_env_worlds=True)
        # Render-only model: every env in a single world, for the one camera that sees them all.
        self._global_model = self._build_model(per_env_worlds=False)
        # _render_global copies body_q verbatim, so both models must hold the same bodies.
        assert self._global_model.body_count == self._model.body_count

        self._solver = newton.solvers.SolverFeatherstone(self._model)
        self._state_0 = self._model.state()
        self._state_1 = self._model.state()
        self._control = self._model.control()
        self._global_state = self._global_model.state()
        # The controller reads joint_q / joint_qd as (N, 2) = (slider, hinge) per env.
        assert self._model.joint_coord_count == self._model.joint_dof_count == 2 * N

        self._lqr = self._compute_lqr()

        # Per-env episode bookkeeping (numpy; N is small and the controller runs on the host).
        self._episode_step = np.zeros(N, dtype=np.int64)
        self._skill = np.zeros(N, dtype=np.float64)
        self._noise = np.zeros(N, dtype=np.float64)
        self._reset_envs(np.ones(N, dtype=bool))

        # Cameras.
        H, W = self._height, self._width
        Hg, Wg = self._global_hw
        local_eye = np.asarray(_ENV_EYE, dtype=np.float64)
        local_target = np.asarray(_ENV_TARGET, dtype=np.float64)
        origins64 = self.env_origins.astype(np.float64)
        self.env_camera_poses = np.stack(
            [look_at_pose(o + local_eye, o + local_target) for o in origins64]
        )
        self.env_intrinsics = np.repeat(_intrinsics(H, W, _ENV_VFOV_DEG)[None], N, axis=0)
        self.global_camera_pose, self.global_intrinsics = _fit_global_camera(
            self.env_origins, Hg, Wg
        )

        # Alpha is dropped anyway; keeping it 0 keeps the packed value below 2**31, which spares
        # a clang int32-overflow warning when the render kernel is compiled.
        clear = _SKY_RGB8[0] | (_SKY_RGB8[1] << 8) | (_SKY_RGB8[2] << 16)
        self._env_views = _Views(
            wp,
            newton,
            self._model,
            poses=self.env_camera_poses,
            intrinsics=self.env_intrinsics[0],
            shape=(H, W),
            clear_color=clear,
            shadows=_ENV_SHADOWS,
        )
        self._global_views = _Views(
            wp,
            newton,
            self._global_model,
            poses=self.global_camera_pose[None],
            intrinsics=self.global_intrinsics,
            shape=(Hg, Wg),
            clear_color=clear,
            shadows=_GLOBAL_SHADOWS,
        )
        # The global view renders on a second thread while the main thread renders the env views:
        # Warp's CPU kernels are called through ctypes, which releases the GIL, so on 2 cores the
        # two renders overlap. The first frame is rendered serially so the two threads never
        # compile/load the same Warp module at the same time.
        self._pool: ThreadPoolExecutor | None = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="envreel-demo-global"
        )
        self._rendered_once = False
        self._closed = False

    # ------------------------------------------------------------------------------------------
    # construction helpers

    def _build_model(self, *, per_env_worlds: bool) -> Any:
        """Builds the Newton model: N cart-poles at their origins plus a global ground plane.

        Args:
            per_env_worlds: True: one world per env (physics and env views). False: all envs in
                one world (the global view); bodies are added in the same order either way.

        Returns:
            A finalized ``newton.Model``.
        """
        wp, newton = self._wp, self._newton
        builder = newton.ModelBuilder()
        frame_cfg = newton.ModelBuilder.ShapeConfig(density=0.0)
        cart_cfg = newton.ModelBuilder.ShapeConfig(density=250.0)
        pole_cfg = newton.ModelBuilder.ShapeConfig(density=300.0)
        identity = wp.quat_identity()

        if not per_env_worlds:
            builder.begin_world(label="all_envs")
        for i, origin in enumerate(self.env_origins.astype(float)):
            ox, oy, oz = origin
            if per_env_worlds:
                builder.begin_world(label=f"env_{i}")
            # Static frame: shapes on body -1 belong to the current world, so the env views
            # see only their own frame.
            builder.add_shape_cylinder(
                -1,
                xform=wp.transform(wp.vec3(ox, oy, oz + 0.01), identity),
                radius=0.15,
                half_height=0.01,
                cfg=frame_cfg,
                color=_MARKER_COLOR,
                label=f"env_{i}/origin_marker",
            )
            builder.add_shape_box(
                -1,
                xform=wp.transform(wp.vec3(ox, oy + _RAIL_Y, oz + _RAIL_Z), identity),
                hx=_RAIL_HALF,
                hy=0.025,
                hz=0.025,
                cfg=frame_cfg,
                color=_FRAME_COLOR,
                label=f"env_{i}/rail",
            )
            for side in (-1.0, 1.0):
                builder.add_shape_box(
                    -1,
                    xform=wp.transform(
                        wp.vec3(ox + side * _RAIL_HALF, oy + _RAIL_Y, oz + 0.5 * _RAIL_Z), identity
                    ),
                    hx=0.04,
                    hy=0.04,
                    hz=0.5 * _RAIL_Z,
                    cfg=frame_cfg,
                    color=_FRAME_COLOR,
                    label=f"env_{i}/post_{'left' if side < 0 else 'right'}",
                )
            cart = builder.add_link(
                xform=wp.transform(wp.vec3(ox, oy, oz + _RAIL_Z), identity), label=f"env_{i}/cart"
            )
            builder.add_shape_box(
                cart,
                hx=_CART_HALF[0],
                hy=_CART_HALF[1],
                hz=_CART_HALF[2],
                cfg=cart_cfg,
                color=_CART_COLORS[i % len(_CART_COLORS)],
                label=f"env_{i}/cart",
            )
            pole = builder.add_link(
                xform=wp.transform(wp.vec3(ox, oy + _PIVOT_Y, oz + _RAIL_Z), identity),
                label=f"env_{i}/pole",
            )
            builder.add_shape_capsule(
                pole,
                xform=wp.transform(wp.vec3(0.0, 0.0, 0.5 * _POLE_LEN), identity),
                radius=_POLE_RADIUS,
                half_height=0.5 * _POLE_LEN,
                cfg=pole_cfg,
                color=_POLE_COLOR,
                label=f"env_{i}/pole",
            )
            builder.add_shape_sphere(
                pole,
                xform=wp.transform(wp.vec3(0.0, 0.0, _POLE_LEN), identity),
                radius=_TIP_RADIUS,
                cfg=pole_cfg,
                color=_TIP_COLOR,
                label=f"env_{i}/tip",
            )
            slider = builder.add_joint_prismatic(
                -1,
                cart,
                parent_xform=wp.transform(wp.vec3(ox, oy, oz + _RAIL_Z), identity),
                axis=(1.0, 0.0, 0.0),
                limit_lower=-_CART_LIMIT,
                limit_upper=_CART_LIMIT,
                label=f"env_{i}/slider",
            )
            hinge = builder.add_joint_revolute(
                cart,
                pole,
                parent_xform=wp.transform(wp.vec3(0.0, _PIVOT_Y, 0.0), identity),
                axis=(0.0, 1.0, 0.0),
                label=f"env_{i}/hinge",
            )
            builder.add_articulation([slider, hinge], label=f"env_{i}")
            if per_env_worlds:
                builder.end_world()
        if not per_env_worlds:
            builder.end_world()
        builder.add_ground_plane(color=_GROUND_COLOR)
        return builder.finalize(device=self._device)

    def _compute_lqr(self) -> np.ndarray:
        """Derives the balancing gain from env 0's masses and inertia (all envs are identical)."""
        mass = self._model.body_mass.numpy()
        com = self._model.body_com.numpy()
        inertia = self._model.body_inertia.numpy()
        # Body 0 is env 0's cart, body 1 its pole; the hinge axis is the pole body's Y axis.
        return _lqr_gain(
            cart_mass=float(mass[0]),
            pole_mass=float(mass[1]),
            com=float(com[1][2]),
            inertia=float(inertia[1][1, 1]),
            dt=self.step_dt,
        )

    def _joint_state(self) -> tuple[np.ndarray, np.ndarray]:
        """Returns (N, 2) joint positions ``(x, theta)`` and velocities of the current state."""
        q = self._state_0.joint_q.numpy().reshape(self.num_envs, 2).astype(np.float64)
        qd = self._state_0.joint_qd.numpy().reshape(self.num_envs, 2).astype(np.float64)
        return q, qd

    def _reset_envs(self, mask: np.ndarray) -> None:
        """Starts a new episode in the masked envs: random state, new controller skill.

        Args:
            mask: (N,) bool, envs to reset.
        """
        idx = np.flatnonzero(mask)
        if idx.size == 0:
            return
        n = idx.size
        q = self._state_0.joint_q.numpy().reshape(self.num_envs, 2).copy()
        qd = self._state_0.joint_qd.numpy().reshape(self.num_envs, 2).copy()
        q[idx, 0] = self._rng.uniform(-0.4, 0.4, n)
        q[idx, 1] = self._rng.uniform(-0.25, 0.25, n)
        qd[idx, 0] = self._rng.uniform(-0.3, 0.3, n)
        qd[idx, 1] = self._rng.uniform(-0.6, 0.6, n)
        # Low skill loses the pole within ~0.5-2 s, high skill mostly lasts the episode: with the
        # defaults a 16-env, 200-step run has ~35 terminations (after 14-75 steps) and ~18
        # timeouts, so the per-env episode logic has something to show.
        self._skill[idx] = self._rng.uniform(0.25, 1.0, n)
        self._noise[idx] = 0.0
        self._episode_step[idx] = 0
        wp = self._wp
        self._state_0.joint_q.assign(q.reshape(-1).astype(np.float32))
        self._state_0.joint_qd.assign(qd.reshape(-1).astype(np.float32))
        # Body poses follow from the joint coordinates; only the reset articulations change.
        self._newton.eval_fk(
            self._model,
            self._state_0.joint_q,
            self._state_0.joint_qd,
            self._state_0,
            mask=wp.array(mask.astype(bool), dtype=wp.bool, device=self._device),
        )

    def _actions(self, q: np.ndarray, qd: np.ndarray) -> np.ndarray:
        """Noisy LQR force per env.

        Args:
            q: (N, 2) joint positions ``(x, theta)``.
            qd: (N, 2) joint velocities.

        Returns:
            (N,) float32 cart force [N].
        """
        s = np.concatenate([q, qd], axis=1)  # (x, theta, x_dot, theta_dot)
        u_lqr = -(s @ self._lqr)
        # Low-pass filtered noise reads as visible shoves rather than per-frame jitter.
        white = self._rng.uniform(-_FORCE_MAX, _FORCE_MAX, self.num_envs)
        self._noise = 0.85 * self._noise + 0.15 * white
        u = self._skill * u_lqr + (1.0 - self._skill) * 3.0 * self._noise
        return np.clip(u, -_FORCE_MAX, _FORCE_MAX).astype(np.float32)

    # ------------------------------------------------------------------------------------------
    # public API

    @classmethod
    def warmup(cls, device: str = "cpu") -> float:
        """Compiles (or loads from Warp's cache) every kernel the demo uses.

        Builds a 2-env sim with tiny images and steps it. The kernels depend only on the kind of
        scene and render settings, not on the number of envs or image sizes, so later sims of any
        size start without compiling. Takes ~45-90 s on 2 CPU cores the first time, ~3 s once
        cached.

        Args:
            device: Warp device to compile for.

        Returns:
            Seconds it took.
        """
        import time

        start = time.perf_counter()
        sim = cls(2, height=8, width=8, global_height=8, global_width=8, device=device)
        try:
            sim.step()
            sim.step()
        finally:
            sim.close()
        return time.perf_counter() - start

    def tip_positions(self) -> np.ndarray:
        """World positions of the pole-tip balls (the red spheres), for checking projections.

        Returns:
            (N, 3) float64 [m], for the state shown by the last :meth:`step` (or the initial
            state before the first step).

        Raises:
            RuntimeError: If the sim was closed.
        """
        if self._closed:
            raise RuntimeError("DemoSim is closed")
        body_q = self._state_0.body_q.numpy().astype(np.float64)  # (2N, 7): p, quat xyzw
        pole = body_q[1::2]
        x, y, z, w = pole[:, 3], pole[:, 4], pole[:, 5], pole[:, 6]
        # Third column of the rotation matrix = the pole body's local +Z axis in the world.
        axis_z = np.stack([2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)], 1)
        return pole[:, :3] + _POLE_LEN * axis_z

    def step(self) -> dict[str, Any]:
        """Advances every env by one env step, resets finished envs, and renders.

        Envs that terminate or reach ``episode_length`` are reset inside this call; the returned
        images show the state after those resets (the first frame of the new episode), while
        ``reward``/``terminated``/``truncated`` describe the step that just ended.

        Returns:
            dict with
                ``"env_rgb"``: (N, H, W, 3) uint8, one view per env;
                ``"global_rgb"``: (Hg, Wg, 3) uint8, all envs;
                ``"reward"``: (N,) float32, ``cos(theta) - 0.1 x^2`` after the step;
                ``"terminated"``: (N,) bool, pole past 0.7 rad or cart past 0.8 m;
                ``"truncated"``: (N,) bool, episode reached ``episode_length`` steps without
                terminating;
                ``"step"``: int, env steps completed since construction (1 after the first call);
                ``"sim_time"``: float, ``step * step_dt`` [s].

        Raises:
            RuntimeError: If the sim was closed.
        """
        if self._closed:
            raise RuntimeError("DemoSim is closed")
        q, qd = self._joint_state()
        forces = np.zeros((self.num_envs, 2), dtype=np.float32)
        forces[:, 0] = self._actions(q, qd)  # only the slider is actuated
        self._control.joint_f.assign(forces.reshape(-1))

        for _ in range(_SUBSTEPS):
            self._state_0.clear_forces()
            self._solver.step(self._state_0, self._state_1, self._control, None, _PHYSICS_DT)
            self._state_0, self._state_1 = self._state_1, self._state_0

        q, _ = self._joint_state()
        self._episode_step += 1
        self._step_count += 1
        x, theta = q[:, 0], q[:, 1]
        reward = (np.cos(theta) - 0.1 * x * x).astype(np.float32)
        terminated = (np.abs(theta) > _MAX_ANGLE) | (np.abs(x) > _MAX_CART_X)
        terminated |= ~np.isfinite(theta) | ~np.isfinite(x)
        truncated = (self._episode_step >= self._episode_length) & ~terminated
        self._reset_envs(terminated | truncated)

        env_rgb, global_rgb = self._render()
        return {
            "env_rgb": env_rgb,
            "global_rgb": global_rgb,
            "reward": reward,
            "terminated": terminated,
            "truncated": truncated,
            "step": self._step_count,
            "sim_time": self._step_count * self.step_dt,
        }

    def _render_global(self) -> np.ndarray:
        """Mirrors the physics body poses into the all-envs model and renders the global view."""
        self._wp.copy(self._global_state.body_q, self._state_0.body_q)
        self._global_model.bvh_refit_shapes(self._global_state)
        return self._global_views.render(self._global_state)[0]

    def _render_envs(self) -> np.ndarray:
        """Renders one view per env (view i sees world i and the ground)."""
        self._model.bvh_refit_shapes(self._state_0)
        return self._env_views.render(self._state_0)

    def _render(self) -> tuple[np.ndarray, np.ndarray]:
        """Renders env views and the global view (concurrently after the first frame)."""
        if not self._rendered_once or self._pool is None:
            env_rgb = self._render_envs()
            global_rgb = self._render_global()
            self._rendered_once = True
            return env_rgb, global_rgb
        future = self._pool.submit(self._render_global)
        env_rgb = self._render_envs()
        return env_rgb, future.result()

    def close(self) -> None:
        """Releases the worker thread and the Newton objects. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        for name in (
            "_env_views",
            "_global_views",
            "_solver",
            "_state_0",
            "_state_1",
            "_control",
            "_global_state",
            "_model",
            "_global_model",
        ):
            setattr(self, name, None)

    def __enter__(self) -> DemoSim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
