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


def test_env_ids_round_trip_and_default():
    spec = RunSpec(num_envs=4, env_frame_shape=(8, 8), fps=30, env_ids=[0, 256, 512, 768])
    assert spec.env_ids == (0, 256, 512, 768)
    d = spec.to_dict()
    assert d["env_ids"] == [0, 256, 512, 768]
    assert RunSpec.from_dict(d) == spec
    plain = RunSpec(num_envs=4, env_frame_shape=(8, 8), fps=30)
    assert plain.env_ids is None and "env_ids" not in plain.to_dict()  # a 1.0-shaped spec
    assert RunSpec.from_dict({**plain.to_dict(), "env_ids": None}) == plain


def test_env_ids_from_numpy():
    np = pytest.importorskip("numpy")
    spec = RunSpec(num_envs=3, env_frame_shape=(8, 8), fps=30, env_ids=np.array([5, 1, 9]))
    assert spec.env_ids == (5, 1, 9) and all(type(i) is int for i in spec.env_ids)


@pytest.mark.parametrize(
    ("env_ids", "exc", "match"),
    [
        ([0, 256, 512], ValueError, r"num_envs=4\), got 3: \[0, 256, 512\]"),
        ([0, 256, 256, 768], ValueError, "env_ids lists env 256 more than once"),
        ([0, -1, 2, 3], ValueError, r"env_ids\[1\] is -1; env ids must be between 0 and"),
        ([0, 1, 2, 2**31], ValueError, r"env_ids\[3\] is 2147483648"),
        ([0, True, 2, 3], TypeError, r"env_ids\[1\] must be an int, got True \(bool\)"),
        ([0, 1.0, 2, 3], TypeError, r"env_ids\[1\] must be an int, got 1.0 \(float\)"),
        ([0, "1", 2, 3], TypeError, r"env_ids\[1\] must be an int, got '1'"),
        ("0123", TypeError, "env_ids must be a sequence of ints .* got '0123'"),
        (7, TypeError, r"env_ids must be a sequence of ints .* got 7 \(int\)"),
        ({0, 1, 2, 3}, TypeError, "env_ids must be a sequence"),
    ],
)
def test_bad_env_ids_are_named(env_ids, exc, match):
    with pytest.raises(exc, match=match):
        RunSpec(num_envs=4, env_frame_shape=(8, 8), fps=30, env_ids=env_ids)


def test_global_env_ids_are_bounded():
    with pytest.raises(ValueError, match="env_id_offset 2147483000 \\+ env id 768 gives global"):
        RunSpec(
            num_envs=4,
            env_frame_shape=(8, 8),
            fps=30,
            env_ids=[0, 256, 512, 768],
            env_id_offset=2147483000,
        )
