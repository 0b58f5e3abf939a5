"""Run stores for the render tests: smooth, distinguishable frames and staggered episodes.

Every env frame is a smooth gradient in an env-specific colour with a soft disc whose position
depends on the frame, so a tile can be matched to (env, frame) after lossy encoding (H.264 keeps
smooth images above 30 dB PSNR). Episodes are staggered: env ``e`` has episodes of
``EP_BASE + e`` frames; even envs terminate at the end of each episode, odd envs are truncated.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from envreel.schemas import Block, RunSpec, create_run
from envreel.schemas import geometry as geo

EP_BASE = 7
ENV_SPACING = 2.0


def env_frame(env: int, frame: int, h: int, w: int) -> np.ndarray:
    """(h, w, 3) uint8: the frame env ``env`` recorded at frame ``frame``."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    hue = (env * 47) % 200
    img = np.stack(
        [xx / max(1, w - 1) * 150 + 40, yy / max(1, h - 1) * 150 + 40, np.full_like(xx, hue + 30)],
        axis=-1,
    )
    cx = w / 2 + w / 3 * np.cos(0.15 * frame + env)
    cy = h / 2 + h / 3 * np.sin(0.2 * frame + 2 * env)
    r = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
    a = np.clip((min(h, w) / 4 - r) / 5.0, 0.0, 1.0)[..., None]
    img = img * (1 - a) + a * np.array([250, 235, 30], np.float32)
    return img.round().astype(np.uint8)


def global_frame(frame: int, h: int, w: int) -> np.ndarray:
    """(h, w, 3) uint8 global-camera frame ``frame``: a moving soft band over a gradient."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    band = np.exp(-(((xx - (frame * 3) % w) / (w / 8)) ** 2))[..., None]
    img = np.stack([yy / h * 120 + 60, np.full_like(xx, 90), xx / w * 120 + 60], -1)
    img = img * (1 - band) + band * np.array([30, 200, 90], np.float32)
    return img.round().astype(np.uint8)


def episode_length(env: int) -> int:
    return EP_BASE + env


def env_origins(num_envs: int) -> np.ndarray:
    side = int(np.ceil(np.sqrt(num_envs)))
    return np.array(
        [((i % side) * ENV_SPACING, (i // side) * ENV_SPACING, 0.0) for i in range(num_envs)]
    )


def make_store(
    path: str | Path,
    *,
    num_envs: int = 6,
    frames: int = 40,
    shape: tuple[int, int] = (32, 48),
    block_frames: int = 8,
    fps: float = 20.0,
    global_shape: tuple[int, int] | None = None,
    scalar_names: tuple[str, ...] = (),
    cameras: bool = False,
    clips: list[tuple[int, int]] | None = None,
    step0: int = 100,
    env_ids: tuple[int, ...] | None = None,
    env_id_offset: int = 0,
    rank: int = 0,
    world_size: int = 1,
) -> str:
    """Write a test store and return its path.

    Args:
        num_envs, frames, shape, block_frames, fps: the run's size.
        global_shape: (h, w) of a global view, or None.
        scalar_names: user scalars; ``success`` is 1.0 for envs divisible by 3, ``score`` is
            ``env + frame / 100``, anything else 0.
        cameras: record env origins and a global camera looking down at them.
        clips: (clip id, number of frames) runs in order, covering ``frames``; defaults to one
            clip 0.
        step0: simulation step of frame 0 (steps advance by one per frame).
        env_ids, env_id_offset: the sim's env ids of the stored envs (``RunSpec``); frames,
            episodes and rewards follow the stored index either way.
        rank, world_size: the rank store of a multi-GPU run (``RunSpec``).
    """
    h, w = shape
    spec = RunSpec(
        num_envs=num_envs,
        env_frame_shape=(h, w),
        fps=fps,
        global_frame_shape=global_shape,
        block_frames=block_frames,
        scalar_names=scalar_names,
        env_ids=env_ids,
        env_id_offset=env_id_offset,
        rank=rank,
        world_size=world_size,
    )
    kwargs = {}
    if cameras:
        origins = env_origins(num_envs)
        center = origins.mean(axis=0)
        eye = center + np.array([0.0, 0.0, 4.0 + 3.0 * np.ptp(origins[:, 0])])
        kwargs = dict(
            env_origins=origins,
            global_camera_pose=geo.look_at_pose(eye, center),
            global_intrinsics=geo.pinhole_intrinsics(
                focal_length=18.0,
                horizontal_aperture=20.955,
                width=global_shape[1],
                height=global_shape[0],
            ),
        )
    writer = create_run(str(path), spec, **kwargs)
    clip_of = np.zeros(frames, np.int32)
    if clips:
        i = 0
        for cid, n in clips:
            clip_of[i : i + n] = cid
            i += n
    for b0 in range(0, frames, block_frames):
        t = min(block_frames, frames - b0)
        blk = Block.empty(spec, t)
        for i in range(t):
            f = b0 + i
            for e in range(num_envs):
                blk.env_frames[i, e] = env_frame(e, f, h, w)
                length = episode_length(e)
                blk.episode[i, e] = f // length
                blk.episode_step[i, e] = f % length
                end = f % length == length - 1
                blk.terminated[i, e] = end and e % 2 == 0
                blk.truncated[i, e] = end and e % 2 == 1
                blk.stale[i, e] = f % length == 0 and f > 0
                blk.reward[i, e] = e * 0.1 + f * 0.01
            if global_shape is not None:
                blk.global_frames[i] = global_frame(f, *global_shape)
        blk.step[:] = step0 + np.arange(b0, b0 + t)
        blk.sim_time[:] = blk.step * (1.0 / fps)
        blk.clip[:] = clip_of[b0 : b0 + t]
        for name in scalar_names:
            if name == "success":
                blk.scalars[name][:] = (np.arange(num_envs) % 3 == 0).astype(np.float32)
            elif name == "score":
                blk.scalars[name][:] = (
                    np.arange(num_envs)[None, :] + np.arange(b0, b0 + t)[:, None] / 100
                ).astype(np.float32)
        writer.append(blk)
    writer.close()
    return str(path)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two uint8 images, in dB (inf when equal)."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def decode_video(path: str | Path) -> tuple[np.ndarray, float]:
    """All frames of a video as (t, h, w, 3) uint8 (PyAV), and its frame rate."""
    import av

    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        rate = float(stream.average_rate or stream.base_rate)
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(stream)]
    return np.stack(frames), rate


def read_pngs(folder: str | Path) -> np.ndarray:
    """The PNG frames of a folder, in name order, as (t, h, w, 3) uint8."""
    from PIL import Image

    files = sorted(Path(folder).glob("frame_*.png"))
    return np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])


def tile(frame: np.ndarray, geometry, slot: int) -> np.ndarray:
    """The pixels of ``slot`` in an output frame."""
    y, x, h, w = geometry.tile_rect(slot)
    return frame[y : y + h, x : x + w]


def corrupt_chunk(store: str | Path, array: str, coords: tuple[int, ...]) -> Path:
    """Flip bytes in the middle of the object holding chunk ``coords`` of ``array``; returns it."""
    p = Path(store) / array / "c" / Path(*map(str, coords))
    data = bytearray(p.read_bytes())
    mid = len(data) // 3
    for i in range(mid, min(len(data), mid + 64)):
        data[i] ^= 0xFF
    p.write_bytes(bytes(data))
    return p
