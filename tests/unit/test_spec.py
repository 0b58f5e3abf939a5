import pytest
from envreel.schemas import RunSpec


def test_round_trip_and_defaults():
    spec = RunSpec(
        num_envs=8,
        env_frame_shape=(64, 96),
        step_dt=1 / 60,
        scalar_names=("a",),
        global_frame_shape=(720, 1280),
        source={"sim": "newton"},
    )
    assert spec.fps == 60.0
    assert RunSpec.from_dict(spec.to_dict()) == spec
    assert RunSpec(num_envs=1, env_frame_shape=(2, 2), fps=25).step_dt == pytest.approx(0.04)


def test_unknown_keys_from_newer_minor_are_ignored():
    d = RunSpec(num_envs=2, env_frame_shape=(4, 4), fps=10).to_dict()
    d["a_future_field"] = 3
    assert RunSpec.from_dict(d).num_envs == 2


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        (dict(num_envs=0), ValueError, "num_envs must be between 1"),
        (dict(num_envs=-3), ValueError, "got -3"),
        (dict(num_envs=2.5), TypeError, "num_envs must be an int"),
        (dict(env_frame_shape=(0, 4)), ValueError, "height"),
        (dict(env_frame_shape=(4,)), ValueError, r"\(height, width\)"),
        (dict(env_frame_shape=(4, 100000)), ValueError, "width"),
        (dict(fps=None), ValueError, "give fps or step_dt"),
        (dict(fps=-1), ValueError, "fps must be a positive"),
        (dict(fps=float("nan")), ValueError, "fps"),
        (dict(block_frames=0), ValueError, "block_frames"),
        (dict(scalar_names=("ok", "bad name")), ValueError, "'bad name'"),
        (dict(scalar_names=("a", "a")), ValueError, "duplicates"),
        (dict(codec="lzma"), ValueError, "'lzma'"),
        (dict(quat_order="xyz"), ValueError, "quat_order"),
        (dict(rank=2, world_size=2), ValueError, "rank 2"),
        (dict(metadata={"x": object()}), ValueError, "JSON"),
        (dict(envs_per_shard=9), ValueError, "envs_per_shard"),
        (dict(env_frame_shape=(8192, 8192), block_frames=64), ValueError, "GiB"),
    ],
)
def test_bad_values_are_named(kwargs, exc, match):
    base = dict(num_envs=4, env_frame_shape=(8, 8), fps=30)
    base.update(kwargs)
    with pytest.raises(exc, match=match):
        RunSpec(**base)


def test_from_dict_incomplete():
    with pytest.raises(ValueError, match="incomplete"):
        RunSpec.from_dict({"num_envs": 3})
