"""Tests of envreel.schemas.geometry: conventions, quaternions, projection, auto-framing."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envreel.schemas import geometry as geo

GLOBAL_K = geo.pinhole_intrinsics(
    focal_length=18.147, horizontal_aperture=20.955, width=1280, height=720
)
ENV_K = geo.pinhole_intrinsics(focal_length=24.0, horizontal_aperture=20.955, width=480, height=360)
CONVENTIONS = ("opengl", "ros", "world")

# forward and up directions of each convention, in camera axes
AXES = {
    "opengl": ((0, 0, -1), (0, 1, 0)),
    "ros": ((0, 0, 1), (0, -1, 0)),
    "world": ((1, 0, 0), (0, 0, 1)),
}


def grid(rows: int, cols: int, spacing: float) -> np.ndarray:
    xs = (np.arange(rows) - (rows - 1) / 2) * spacing
    ys = (np.arange(cols) - (cols - 1) / 2) * spacing
    return np.array([(x, y, 0.0) for x in xs for y in ys])


unit = st.floats(-1.0, 1.0, allow_nan=False)
quats = st.tuples(unit, unit, unit, unit).filter(lambda q: np.linalg.norm(q) > 0.1)
coords = st.floats(-50.0, 50.0, allow_nan=False)
points = st.tuples(coords, coords, coords)


def random_rotations(seed: int, count: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.normal(size=(count, 3, 3)))
    q = q * np.sign(np.diagonal(r, axis1=-2, axis2=-1))[..., None, :]
    q[np.linalg.det(q) < 0, :, 0] *= -1
    return q


# ---------------------------------------------------------------------------------------------
# module hygiene
# ---------------------------------------------------------------------------------------------


def test_imports_only_numpy() -> None:
    # Load the file on its own (the envreel.schemas package itself also imports zarr).
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('geometry_alone', {geo.__file__!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "sys.modules['geometry_alone'] = module\n"
        "spec.loader.exec_module(module)\n"
        "bad = [m for m in ('torch', 'zarr', 'PIL', 'isaaclab', 'envreel') if m in sys.modules]\n"
        "assert not bad, bad\n"
        "assert module.look_at_rotation((1, 0, 0), (0, 0, 0)).shape == (3, 3)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_module_docstring_states_conventions() -> None:
    doc = geo.__doc__
    for word in ("Z-up", "camera-to-world", "opengl", "ros", "world", "xyzw", "wxyz", "i + 0.5"):
        assert word in doc


# ---------------------------------------------------------------------------------------------
# look-at and conventions
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_look_at_axes_follow_the_convention(convention: str) -> None:
    eye, target = np.array([3.0, -2.0, 4.0]), np.array([-1.0, 1.0, 0.5])
    R = geo.look_at_rotation(eye, target, convention=convention)
    forward_cam, up_cam = AXES[convention]
    forward = (target - eye) / np.linalg.norm(target - eye)
    np.testing.assert_allclose(R @ forward_cam, forward, atol=1e-12)
    cam_up = R @ up_cam
    assert cam_up[2] > 0  # upright image
    right = np.cross(forward, cam_up)
    assert abs(right[2]) < 1e-12  # horizon level
    np.testing.assert_allclose(R.T @ R, np.eye(3), atol=1e-12)
    assert np.linalg.det(R) == pytest.approx(1.0)


def test_look_at_known_matrices() -> None:
    # A camera looking along +X with +Z up is the identity in the "world" convention.
    np.testing.assert_allclose(
        geo.look_at_rotation((0, 0, 0), (5, 0, 0), convention="world"), np.eye(3), atol=1e-12
    )
    # ... and in ROS: x right (-Y world), y down (-Z), z forward (+X).
    np.testing.assert_allclose(
        geo.look_at_rotation((0, 0, 0), (5, 0, 0), convention="ros"),
        [[0, 0, 1], [-1, 0, 0], [0, -1, 0]],
        atol=1e-12,
    )
    # ... and in OpenGL: x right, y up, z backward.
    np.testing.assert_allclose(
        geo.look_at_rotation((0, 0, 0), (5, 0, 0)),
        [[0, 0, -1], [-1, 0, 0], [0, 1, 0]],
        atol=1e-12,
    )


def test_isaaclab_world_to_opengl_matrix() -> None:
    # isaaclab.utils.math converts world -> opengl by right-multiplying Rx(90) @ Ry(-90).
    rx = np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]], float)
    ry = np.array([[0, 0, -1], [0, 1, 0], [1, 0, 0]], float)
    R_world = geo.look_at_rotation((1, 2, 3), (-4, 0, 1), convention="world")
    np.testing.assert_allclose(
        geo.convert_convention(R_world, "world", "opengl"), R_world @ rx @ ry, atol=1e-12
    )
    # opengl <-> ros is a 180 degree turn about x: quaternion (1, 0, 0, 0) in xyzw.
    R_gl = geo.look_at_rotation((1, 2, 3), (-4, 0, 1))
    flip = geo.quat_to_rotation((1.0, 0.0, 0.0, 0.0), order="xyzw")
    np.testing.assert_allclose(geo.convert_convention(R_gl, "opengl", "ros"), R_gl @ flip)


@pytest.mark.parametrize("src", CONVENTIONS)
@pytest.mark.parametrize("dst", CONVENTIONS)
def test_conventions_round_trip(src: str, dst: str) -> None:
    rotations = random_rotations(seed=1, count=16)
    there = geo.convert_convention(rotations, src, dst)
    np.testing.assert_allclose(geo.convert_convention(there, dst, src), rotations, atol=1e-12)
    eye, target = (2.0, 3.0, 1.0), (0.0, -1.0, 0.0)
    np.testing.assert_allclose(
        geo.convert_convention(geo.look_at_rotation(eye, target, convention=src), src, dst),
        geo.look_at_rotation(eye, target, convention=dst),
        atol=1e-12,
    )


def test_look_at_straight_down_is_well_defined() -> None:
    R = geo.look_at_rotation((2.0, 3.0, 10.0), (2.0, 3.0, 0.0))
    np.testing.assert_allclose(R @ (0, 0, -1), (0, 0, -1), atol=1e-12)
    np.testing.assert_allclose(R @ (0, 1, 0), (0, 1, 0), atol=1e-12)  # +Y at the image top
    np.testing.assert_allclose(R, np.eye(3), atol=1e-12)


def test_look_at_batches_broadcast() -> None:
    eyes = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 5.0], [-3.0, 2.0, 1.0]])
    R = geo.look_at_rotation(eyes, (0.0, 0.0, 0.0), convention="ros")
    assert R.shape == (3, 3, 3)
    for i in range(3):
        np.testing.assert_allclose(R[i], geo.look_at_rotation(eyes[i], (0, 0, 0), convention="ros"))
    poses = geo.look_at_pose(eyes, (0.0, 0.0, 0.0))
    assert poses.shape == (3, 4, 4)
    np.testing.assert_allclose(poses[:, :3, 3], eyes)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"eye": (1, 1, 1), "target": (1, 1, 1)}, "eye and target must differ"),
        ({"eye": (0, 0, 0), "target": (1, 0, 0), "up": (0, 0, 0)}, "up must be a non-zero"),
        ({"eye": (0, 0), "target": (1, 0, 0)}, r"eye must have shape \(\.\.\., 3\)"),
        ({"eye": (0, 0, 0), "target": (1, 0, 0), "convention": "opencv"}, "'opencv'"),
        ({"eye": (0, 0, np.nan), "target": (1, 0, 0)}, "eye must be finite"),
    ],
)
def test_look_at_rejects_bad_input(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        geo.look_at_rotation(kwargs.pop("eye"), kwargs.pop("target"), **kwargs)


def test_look_at_rejects_non_numbers() -> None:
    with pytest.raises(TypeError, match="eye must be a numeric array"):
        geo.look_at_rotation(("a", "b", "c"), (0, 0, 0))


def test_convert_convention_rejects_unknown() -> None:
    with pytest.raises(ValueError, match="dst must be one of"):
        geo.convert_convention(np.eye(3), "opengl", "usd")


# ---------------------------------------------------------------------------------------------
# quaternions
# ---------------------------------------------------------------------------------------------


def test_known_quaternions() -> None:
    np.testing.assert_allclose(geo.rotation_to_quat(np.eye(3)), (0, 0, 0, 1))
    np.testing.assert_allclose(geo.rotation_to_quat(np.eye(3), order="wxyz"), (1, 0, 0, 0))
    rz90 = np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1]], float)
    s = math.sqrt(0.5)
    np.testing.assert_allclose(geo.rotation_to_quat(rz90), (0, 0, s, s), atol=1e-12)
    np.testing.assert_allclose(geo.rotation_to_quat(rz90, order="wxyz"), (s, 0, 0, s), atol=1e-12)
    np.testing.assert_allclose(geo.quat_to_rotation((s, 0, 0, s), order="wxyz"), rz90, atol=1e-12)
    # 180 degrees about x.
    rx180 = np.diag([1.0, -1.0, -1.0])
    np.testing.assert_allclose(geo.rotation_to_quat(rx180), (1, 0, 0, 0), atol=1e-12)


@settings(max_examples=200, deadline=None)
@given(q=quats, order=st.sampled_from(["xyzw", "wxyz"]))
def test_quaternion_round_trip(q: tuple[float, ...], order: str) -> None:
    q = np.asarray(q)
    R = geo.quat_to_rotation(q, order=order)
    np.testing.assert_allclose(R.T @ R, np.eye(3), atol=1e-12)
    assert np.linalg.det(R) == pytest.approx(1.0)
    back = geo.rotation_to_quat(R, order=order)
    expected = q / np.linalg.norm(q)
    w = expected[3] if order == "xyzw" else expected[0]
    if w < 0:
        expected = -expected
    # w == 0 leaves the sign free; compare as rotations there.
    if abs(w) < 1e-9:
        np.testing.assert_allclose(geo.quat_to_rotation(back, order=order), R, atol=1e-9)
    else:
        np.testing.assert_allclose(back, expected, atol=1e-9)
    np.testing.assert_allclose(geo.quat_to_rotation(back, order=order), R, atol=1e-9)


@settings(max_examples=100, deadline=None)
@given(
    axis=st.tuples(unit, unit, unit).filter(lambda a: np.linalg.norm(a) > 0.1),
    delta=st.floats(0.0, 1e-3),
)
def test_quaternion_near_180_degrees(axis: tuple[float, ...], delta: float) -> None:
    axis = np.asarray(axis) / np.linalg.norm(axis)
    angle = math.pi - delta
    xyzw = np.append(axis * math.sin(angle / 2), math.cos(angle / 2))
    R = geo.quat_to_rotation(xyzw)
    for order in ("xyzw", "wxyz"):
        q = geo.rotation_to_quat(R, order=order)
        assert np.linalg.norm(q) == pytest.approx(1.0)
        np.testing.assert_allclose(geo.quat_to_rotation(q, order=order), R, atol=1e-10)


def test_quaternion_orders_are_permutations() -> None:
    R = random_rotations(seed=2, count=32)
    xyzw = geo.rotation_to_quat(R)
    wxyz = geo.rotation_to_quat(R, order="wxyz")
    assert xyzw.shape == wxyz.shape == (32, 4)
    np.testing.assert_allclose(wxyz, xyzw[:, [3, 0, 1, 2]])
    np.testing.assert_allclose(geo.quat_to_rotation(xyzw), R, atol=1e-12)
    np.testing.assert_allclose(geo.quat_to_rotation(wxyz, order="wxyz"), R, atol=1e-12)
    assert np.all(xyzw[:, 3] >= 0)


def test_quaternion_batches_keep_leading_shape() -> None:
    R = random_rotations(seed=3, count=6).reshape(2, 3, 3, 3)
    q = geo.rotation_to_quat(R)
    assert q.shape == (2, 3, 4)
    np.testing.assert_allclose(geo.quat_to_rotation(q), R, atol=1e-12)


def test_quat_to_rotation_normalises() -> None:
    np.testing.assert_allclose(geo.quat_to_rotation((0, 0, 0, 5.0)), np.eye(3))


def test_quaternion_errors() -> None:
    with pytest.raises(ValueError, match="quat must have non-zero length"):
        geo.quat_to_rotation((0, 0, 0, 0))
    with pytest.raises(ValueError, match="order must be one of"):
        geo.quat_to_rotation((0, 0, 0, 1), order="xyz")
    with pytest.raises(ValueError, match="proper rotation matrix"):
        geo.rotation_to_quat(np.diag([1.0, 1.0, -1.0]))  # a reflection
    with pytest.raises(ValueError, match="proper rotation matrix"):
        geo.rotation_to_quat(2 * np.eye(3))
    with pytest.raises(ValueError, match=r"rotation must have shape \(\.\.\., 3, 3\)"):
        geo.rotation_to_quat(np.eye(4))


# ---------------------------------------------------------------------------------------------
# poses, intrinsics, projection
# ---------------------------------------------------------------------------------------------


def test_pose_matrix_layout() -> None:
    R = random_rotations(seed=4, count=1)[0]
    pose = geo.pose_matrix((1.0, 2.0, 3.0), R)
    np.testing.assert_allclose(pose[:3, :3], R)
    np.testing.assert_allclose(pose[:3, 3], (1, 2, 3))
    np.testing.assert_allclose(pose[3], (0, 0, 0, 1))
    assert pose.dtype == np.float64
    with pytest.raises(ValueError, match="proper rotation"):
        geo.pose_matrix((0, 0, 0), np.ones((3, 3)))


def test_pinhole_intrinsics_follow_isaac_sim() -> None:
    K = geo.pinhole_intrinsics(focal_length=24.0, horizontal_aperture=20.955, width=480, height=360)
    fx = 24.0 / 20.955 * 480
    np.testing.assert_allclose(K, [[fx, 0, 240], [0, fx, 180], [0, 0, 1]])
    # 18.147 / 20.955 is the ~60 degree horizontal field of view of the global camera.
    hfov = 2 * math.degrees(math.atan(640 / GLOBAL_K[0, 0]))
    assert hfov == pytest.approx(60.0, abs=0.01)
    K2 = geo.pinhole_intrinsics(
        focal_length=10.0, horizontal_aperture=20.0, width=100, height=50, vertical_aperture=5.0
    )
    np.testing.assert_allclose(K2, [[50, 0, 50], [0, 100, 25], [0, 0, 1]])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"focal_length": 0.0}, ValueError, "focal_length must be a positive"),
        ({"horizontal_aperture": -1.0}, ValueError, "horizontal_aperture must be a positive"),
        ({"width": 480.5}, TypeError, "width must be a positive integer"),
        ({"height": 0}, ValueError, "height must be a positive integer"),
        ({"vertical_aperture": float("inf")}, ValueError, "vertical_aperture"),
    ],
)
def test_pinhole_intrinsics_errors(kwargs: dict, error: type, match: str) -> None:
    args = {"focal_length": 24.0, "horizontal_aperture": 20.955, "width": 480, "height": 360}
    with pytest.raises(error, match=match):
        geo.pinhole_intrinsics(**(args | kwargs))


@settings(max_examples=100, deadline=None)
@given(
    eye=points,
    target=points,
    convention=st.sampled_from(CONVENTIONS),
    use_global=st.booleans(),
)
def test_look_at_point_projects_to_image_centre(
    eye: tuple, target: tuple, convention: str, use_global: bool
) -> None:
    eye, target = np.asarray(eye), np.asarray(target)
    if np.linalg.norm(target - eye) < 1e-3:
        return
    K = GLOBAL_K if use_global else ENV_K
    pose = geo.look_at_pose(eye, target, convention=convention)
    pixels, in_front = geo.project_points(target[None], pose, K, convention=convention)
    assert in_front.tolist() == [True]
    np.testing.assert_allclose(pixels[0], (K[0, 2], K[1, 2]), atol=1e-6)


def test_known_point_projects_to_expected_pixel() -> None:
    # Camera at the origin looking along +X (Z up): right is -Y, up is +Z.
    pose = geo.look_at_pose((0.0, 0.0, 0.0), (1.0, 0.0, 0.0))
    fx = 24.0 / 20.955 * 480
    pixels, in_front = geo.project_points([(10.0, -1.0, 0.5), (-10.0, 0.0, 0.0)], pose, ENV_K)
    np.testing.assert_allclose(pixels[0], (240 + fx * 0.1, 180 - fx * 0.05))
    assert in_front.tolist() == [True, False]
    assert np.isnan(pixels[1]).all()
    # The same camera expressed in another convention projects identically.
    for convention in ("ros", "world"):
        other = pose.copy()
        other[:3, :3] = geo.convert_convention(pose[:3, :3], "opengl", convention)
        again, _ = geo.project_points([(10.0, -1.0, 0.5)], other, ENV_K, convention=convention)
        np.testing.assert_allclose(again[0], pixels[0])


def test_pixel_convention_edges_and_centres() -> None:
    # A 4x2 image whose 1-unit-wide pixels sit 1 m away: image edges project to 0 and width,
    # and the centre of pixel (row 0, column 0) to (0.5, 0.5).
    K = geo.pinhole_intrinsics(focal_length=1.0, horizontal_aperture=4.0, width=4, height=2)
    pose = geo.look_at_pose((0.0, 0.0, 0.0), (1.0, 0.0, 0.0))
    # Point at depth 1, 2 m to the left and 1 m up: top-left corner of the image.
    world = [(1.0, 2.0, 1.0), (1.0, -2.0, -1.0), (1.0, 1.5, 0.5)]
    pixels, _ = geo.project_points(world, pose, K)
    np.testing.assert_allclose(pixels, [(0, 0), (4, 2), (0.5, 0.5)], atol=1e-12)


def test_project_points_errors() -> None:
    pose = geo.look_at_pose((0.0, 0.0, 0.0), (1.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="camera_to_world must have last row"):
        geo.project_points([(1, 0, 0)], np.ones((4, 4)), ENV_K)
    with pytest.raises(ValueError, match=r"camera_to_world must have shape \(4, 4\)"):
        geo.project_points([(1, 0, 0)], np.stack([pose, pose]), ENV_K)
    with pytest.raises(ValueError, match="intrinsics must be"):
        geo.project_points([(1, 0, 0)], pose, np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"points_world must have shape \(\.\.\., 3\)"):
        geo.project_points([(1, 0)], pose, ENV_K)


# ---------------------------------------------------------------------------------------------
# auto-framing
# ---------------------------------------------------------------------------------------------


def test_seed_worked_example() -> None:
    framing = geo.auto_frame(grid(3, 3, 4.0))
    assert framing.span == pytest.approx(11.0)
    assert framing.distance == pytest.approx(17.6)
    np.testing.assert_allclose(framing.target, (0, 0, 0), atol=1e-12)
    el, az = math.radians(35.0), math.radians(-45.0)
    expected_eye = 17.6 * np.array(
        [math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)]
    )
    np.testing.assert_allclose(framing.eye, expected_eye, atol=1e-12)
    assert np.linalg.norm(framing.eye - framing.target) == pytest.approx(framing.distance)
    with pytest.raises(ValueError):
        framing.eye[0] = 0.0  # read-only


def test_auto_frame_span_rules() -> None:
    one = geo.auto_frame([(2.0, 3.0, 0.5)], margin=0.0, min_span=1.0)
    assert one.span == 1.0 and one.distance == pytest.approx(1.6)
    np.testing.assert_allclose(one.target, (2.0, 3.0, 0.5))
    # The larger of the x and y extents sets the span; the centroid is the mean, z included.
    line = np.array([(0.0, 0.0, 0.0), (10.0, 0.0, 0.0), (10.0, 2.0, 3.0)])
    framing = geo.auto_frame(line, margin=1.0, distance_scale=2.0)
    assert framing.span == pytest.approx(12.0)
    assert framing.distance == pytest.approx(24.0)
    np.testing.assert_allclose(framing.target, line.mean(axis=0))


def _inside(origins: np.ndarray, margin: float, framing: geo.Framing) -> tuple[bool, bool]:
    pose = geo.look_at_pose(framing.eye, framing.target)
    offsets = [(dx, dy, 0.0) for dx in (-margin, margin) for dy in (-margin, margin)]
    margin_points = (origins[:, None, :] + np.array(offsets)).reshape(-1, 3)

    def ok(pts: np.ndarray) -> bool:
        pixels, in_front = geo.project_points(pts, pose, GLOBAL_K)
        u, v = pixels[:, 0], pixels[:, 1]
        eps = 1e-6
        return bool(
            in_front.all()
            and (u >= -eps).all()
            and (u <= 1280 + eps).all()
            and (v >= -eps).all()
            and (v <= 720 + eps).all()
        )

    return ok(origins), ok(margin_points)


@pytest.mark.parametrize(
    ("rows", "cols", "spacing"),
    [(1, 1, 2.0), (1, 2, 2.0), (3, 3, 4.0), (2, 8, 2.5), (8, 8, 2.0), (32, 32, 2.5), (64, 64, 4.0)],
)
def test_fitted_framing_keeps_every_origin_and_margin_inside(
    rows: int, cols: int, spacing: float
) -> None:
    origins = grid(rows, cols, spacing)
    seed = geo.auto_frame(origins)
    fitted = geo.auto_frame(origins, intrinsics=GLOBAL_K, image_shape=(720, 1280))
    assert _inside(origins, 1.5, fitted) == (True, True)
    assert fitted.span == seed.span
    assert fitted.distance >= seed.distance - 1e-9
    # Same viewing ray, only farther away.
    np.testing.assert_allclose(fitted.target, seed.target)
    direction = (fitted.eye - fitted.target) / fitted.distance
    np.testing.assert_allclose(direction, (seed.eye - seed.target) / seed.distance, atol=1e-12)
    if fitted.distance == pytest.approx(seed.distance):
        return  # the seed's framing already fits (wide, shallow grids)
    # Tight: a little closer and something leaves the image.
    closer = geo.Framing(
        eye=fitted.target + 0.99 * fitted.distance * direction,
        target=fitted.target,
        span=fitted.span,
        distance=0.99 * fitted.distance,
    )
    assert _inside(origins, 1.5, closer) != (True, True)


@pytest.mark.parametrize(("rows", "cols", "spacing"), [(3, 3, 4.0), (2, 8, 2.5), (8, 8, 2.0)])
def test_seed_framing_keeps_origins_of_small_grids_inside(
    rows: int, cols: int, spacing: float
) -> None:
    origins = grid(rows, cols, spacing)
    assert _inside(origins, 1.5, geo.auto_frame(origins))[0]


def test_fit_moves_back_square_grids() -> None:
    # With 16:9 and ~60 degrees, the margin corner nearest the camera is the binding one.
    origins = grid(3, 3, 4.0)
    fitted = geo.auto_frame(origins, intrinsics=GLOBAL_K, image_shape=(720, 1280))
    assert fitted.distance > 17.6


def test_seed_framing_alone_cuts_off_the_near_corner_of_large_grids() -> None:
    # Why auto_frame can fit the view: 32x32 envs with the seed's formula lose the nearest ones.
    origins = grid(32, 32, 2.5)
    framing = geo.auto_frame(origins)
    pixels, _ = geo.project_points(origins, geo.look_at_pose(framing.eye, framing.target), GLOBAL_K)
    assert pixels[:, 1].max() > 720


def test_auto_frame_errors() -> None:
    with pytest.raises(ValueError, match=r"origins must have shape \(N, 3\) with N >= 1"):
        geo.auto_frame(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="margin must be >= 0"):
        geo.auto_frame([(0, 0, 0)], margin=-1.0)
    with pytest.raises(ValueError, match="elevation_deg must be in"):
        geo.auto_frame([(0, 0, 0)], elevation_deg=120.0)
    with pytest.raises(ValueError, match="intrinsics and image_shape must be given together"):
        geo.auto_frame([(0, 0, 0)], intrinsics=GLOBAL_K)
    with pytest.raises(ValueError, match=r"image_shape must be \(height, width\)"):
        geo.auto_frame([(0, 0, 0)], intrinsics=GLOBAL_K, image_shape=720)
    with pytest.raises(TypeError, match="distance_scale must be a positive number"):
        geo.auto_frame([(0, 0, 0)], distance_scale="far")


def test_auto_frame_straight_down() -> None:
    origins = grid(4, 4, 2.0)
    framing = geo.auto_frame(
        origins, elevation_deg=90.0, intrinsics=GLOBAL_K, image_shape=(720, 1280)
    )
    np.testing.assert_allclose(framing.eye[:2], (0, 0), atol=1e-9)
    assert _inside(origins, 1.5, framing) == (True, True)


@pytest.mark.parametrize("order", ["xyzw", "wxyz"])
def test_quat_pose_map_is_pose_matrix_of_quat_to_rotation(order: str) -> None:
    rng = np.random.default_rng(7)
    q = rng.normal(size=(16, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    pos = rng.normal(size=(16, 3)) * 100.0
    features = np.concatenate(
        [(q[:, :, None] * q[:, None, :]).reshape(16, 16), pos, np.ones((16, 1))], axis=1
    )
    got = (features @ geo.quat_pose_map(order)).reshape(16, 4, 4)
    want = geo.pose_matrix(pos, geo.quat_to_rotation(q, order=order))
    np.testing.assert_allclose(got, want, atol=1e-12)
    with pytest.raises(ValueError, match="order must be one of"):
        geo.quat_pose_map("xyz")  # type: ignore[arg-type]
