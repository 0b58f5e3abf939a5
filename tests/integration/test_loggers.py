"""on_clip hooks with the real TensorBoard and W&B (offline): every committed clip is logged
as a video, decoded back and checked."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from render_fixtures import env_frame

from envreel.capture import ClipEvent, Recorder
from envreel.render import Layout

N, H, W = 4, 24, 32


def _record(path: Path, on_clip, writer: str = "thread") -> None:
    """Two windows of 6 steps (every 10 steps from 0) over 20 steps: clips 0 and 1."""
    with Recorder(
        path,
        num_envs=N,
        fps=10,
        video_length=6,
        video_interval=10,
        block_frames=4,
        writer=writer,
        on_clip=on_clip,
    ) as rec:
        for t in range(20):
            frames = np.stack([env_frame(e, t, H, W) for e in range(N)])
            rec.capture(frames, reward=np.full(N, t, np.float32))


@pytest.mark.parametrize("writer", ["thread", "process"])
def test_on_clip_gets_every_committed_clip_off_the_training_thread(tmp_path, writer) -> None:
    import threading

    seen: list[tuple[ClipEvent, str]] = []
    _record(
        tmp_path / "run.zarr", lambda e: seen.append((e, threading.current_thread().name)), writer
    )
    events = [e for e, _ in seen]
    assert [(e.clip, e.start_frame, e.stop_frame, e.start_step, e.stop_step) for e in events] == [
        (0, 0, 6, 0, 6),
        (1, 6, 12, 10, 16),
    ]
    assert {name for _, name in seen} == {"envreel-on-clip"}
    assert events[0].url == str(tmp_path / "run.zarr") and events[1].num_frames == 6


def test_a_failing_hook_is_warned_once_and_recording_goes_on(tmp_path) -> None:
    def boom(event):
        raise RuntimeError("tracker down")

    with pytest.warns(RuntimeWarning, match="on_clip hook .* failed for clip 0 .*tracker down"):
        _record(tmp_path / "run.zarr", boom)
    from envreel.schemas import open_run

    assert open_run(tmp_path / "run.zarr").num_frames == 12


def test_tensorboard_add_video(tmp_path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("moviepy", reason="SummaryWriter.add_video encodes with moviepy")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    from envreel.render.loggers import TensorBoardClips

    logdir = tmp_path / "tb"
    writer = SummaryWriter(str(logdir))
    _record(tmp_path / "run.zarr", TensorBoardClips(writer, Layout(columns=2, label=None, gap=0)))
    writer.close()
    acc = EventAccumulator(str(logdir), size_guidance={"images": 0})
    acc.Reload()
    assert sorted(acc.Tags()["images"]) == ["envreel/clip_0", "envreel/clip_1"]
    from PIL import Image

    (event,) = acc.Images("envreel/clip_1")
    assert event.step == 10 and (event.width, event.height) == (2 * W, 2 * H)
    with Image.open(io.BytesIO(event.encoded_image_string)) as gif:
        assert gif.n_frames == 6
        gif.seek(0)
        first = np.asarray(gif.convert("RGB"))
    expected = env_frame(0, 10, H, W)  # clip 1 starts at step 10; env 0 is the top-left tile
    assert np.abs(first[:H, :W].astype(int) - expected).mean() < 12  # GIF palette


def test_wandb_video_offline(tmp_path, monkeypatch) -> None:
    wandb = pytest.importorskip("wandb")
    av = pytest.importorskip("av")
    from envreel.render.loggers import WandbClips

    monkeypatch.setenv("WANDB_SILENT", "true")
    run = wandb.init(mode="offline", dir=str(tmp_path), project="envreel-test")
    try:
        _record(tmp_path / "run.zarr", WandbClips(run, Layout(columns=2, label=None, gap=0)))
    finally:
        run.finish()
    videos = sorted((tmp_path / "wandb").glob("offline-run-*/files/media/videos/**/*.mp4"))
    assert len(videos) == 2, list((tmp_path / "wandb").rglob("*"))
    for path in videos:
        with av.open(str(path)) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        assert len(frames) == 6 and frames[0].shape == (2 * H, 2 * W, 3)
