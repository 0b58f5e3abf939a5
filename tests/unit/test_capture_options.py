"""Option groups: each option declared once, shared by Recorder, RecorderCfg and RunSpec."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from envreel._options import adopt, check_one, spec, specs
from envreel.capture import Recorder
from envreel.capture.isaaclab import RecorderCfg
from envreel.capture.options import InputOptions, WindowOptions, WriterOptions
from envreel.schemas import RunSpec
from envreel.schemas.options import ClockOptions, PoseOptions, RankOptions, StoreOptions

GROUPS = (WindowOptions, WriterOptions, InputOptions, ClockOptions, StoreOptions, PoseOptions)


def test_recorder_keywords_default_to_the_declarations() -> None:
    params = inspect.signature(Recorder).parameters
    for group in GROUPS + (RankOptions,):
        for f in dataclasses.fields(group):
            if f.name == "envs_per_shard":
                continue  # a store option the recorder does not expose
            if f.name == "block_frames":
                assert params[f.name].default is None  # auto: 32 where the budget holds it
                continue
            assert params[f.name].default == f.default, (group.__name__, f.name)


def test_run_spec_defaults_are_the_declarations() -> None:
    fields = {f.name: f.default for f in dataclasses.fields(RunSpec)}
    for group in (StoreOptions, PoseOptions, RankOptions, ClockOptions):
        for f in dataclasses.fields(group):
            assert fields[f.name] == f.default, (group.__name__, f.name)
            assert spec(group, f.name).doc


def test_recorder_cfg_shares_the_declarations() -> None:
    cfg = RecorderCfg()
    for group in (WindowOptions, WriterOptions):
        for name in specs(group):
            if hasattr(cfg, name):
                assert getattr(cfg, name) == getattr(group(), name), name
    assert spec(WriterOptions, "on_full").choices == ("block", "drop")


def test_one_message_for_each_owner() -> None:
    for owner, make in (
        ("", lambda: Recorder("memory://o.zarr", num_envs=2, fps=30, on_full="wait")),
        ("RecorderCfg.", lambda: RecorderCfg(on_full="wait")),
        ("", lambda: WriterOptions(on_full="wait")),
    ):
        with pytest.raises(ValueError) as info:
            make()
        assert str(info.value) == f"{owner}on_full must be one of ('block', 'drop'), got 'wait'"


def test_window_relations_name_the_owner() -> None:
    with pytest.raises(ValueError, match="RecorderCfg.video_interval=3 must be >= RecorderCfg"):
        WindowOptions(video_length=5, video_interval=3, prefix="RecorderCfg.")


def test_adopt_writes_normalised_values_back_and_skips_what_is_missing() -> None:
    @dataclasses.dataclass
    class Cfg:
        fps: float | None = 30
        codec: str = "gzip"
        block_frames: int | None = None

    cfg = Cfg()
    adopt(cfg, ClockOptions, prefix="Cfg.")
    assert isinstance(cfg.fps, float)
    assert adopt(cfg, StoreOptions, skip=("block_frames",)).codec == "gzip"
    assert check_one(StoreOptions, "block_frames", None, "Cfg.block_frames", optional=True) is None
    with pytest.raises(ValueError, match="Cfg.block_frames must be between 1 and 4096, got 0"):
        check_one(StoreOptions, "block_frames", 0, "Cfg.block_frames", optional=True)


def test_input_options_check_value_range() -> None:
    assert InputOptions(value_range=(0, 1)).value_range == (0.0, 1.0)
    with pytest.raises(ValueError, match="X.value_range must be finite with lo < hi"):
        InputOptions(value_range=(1, 0), prefix="X.")
