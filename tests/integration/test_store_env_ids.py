"""Env ids in the store (format 1.1): global ids of the stored envs, validation, 1.0 stores."""

import json

import numpy as np
import pytest
from store_helpers import frames_for, small_spec, write_run

from envreel.schemas import StoreFormatError, open_run, validate

SUBSET = [0, 256, 512, 768]


def _edit_spec(url, fn):
    path = url / "zarr.json"
    doc = json.loads(path.read_text())
    fn(doc["attributes"]["envreel"])
    path.write_text(json.dumps(doc))


def test_plain_store_ids_are_offset_plus_index(tmp_path):
    url = tmp_path / "plain.zarr"
    write_run(url, small_spec(), block_sizes=(8,))
    run = open_run(url)
    assert run.env_ids == (0, 1, 2, 3)
    assert run.info()["env_ids"] == "0-3"
    assert run.format_version == "1.1"
    doc = json.loads((url / "zarr.json").read_text())
    assert "env_ids" not in doc["attributes"]["envreel"]["spec"]  # nothing 1.0 readers lack

    url = tmp_path / "rank3.zarr"
    write_run(url, small_spec(rank=3, world_size=4, env_id_offset=12), block_sizes=(8,))
    run = open_run(url)
    assert run.env_ids == (12, 13, 14, 15)
    assert run.info()["env_ids"] == "12-15"


def test_subset_store_ids_with_and_without_offset(tmp_path):
    url = tmp_path / "sub.zarr"
    write_run(url, small_spec(env_ids=SUBSET), block_sizes=(8, 5))
    run = open_run(url)
    assert run.spec.env_ids == tuple(SUBSET)
    assert run.env_ids == (0, 256, 512, 768)
    assert run.info()["env_ids"] == "0,256,512,768"
    # reads still take stored indices 0..N-1
    np.testing.assert_array_equal(run.env_frames([1, 3]), frames_for(0, 13, 4, 12, 16)[:, [1, 3]])
    with pytest.raises(ValueError, match=r"env ids \[256\] are out of range.*Run.env_ids"):
        run.env_frames([256])
    assert validate(url) == []

    url = tmp_path / "sub_rank1.zarr"
    spec = small_spec(env_ids=[3, 1, 2, 0], rank=1, world_size=2, env_id_offset=1024)
    write_run(url, spec, block_sizes=(8,))
    run = open_run(url)
    assert run.env_ids == (1027, 1025, 1026, 1024)  # stored order, not sorted
    assert run.info()["env_ids"] == "1027,1025-1026,1024"
    assert validate(url) == []


@pytest.mark.parametrize(
    ("env_ids", "text"),
    [
        ([0, 256, 256, 768], "env_ids lists env 256 more than once"),
        ([0, 256, 512], "env_ids must hold one id per stored env (num_envs=4), got 3"),
        ([0, -256, 512, 768], "env_ids[1] is -256"),
        ([0, "256", 512, 768], "env_ids[1] must be an int, got '256'"),
        ([0, True, 512, 768], "env_ids[1] must be an int, got True"),
        ("0,256,512,768", "env_ids must be a sequence of ints"),
    ],
)
def test_corrupted_env_ids_are_named(tmp_path, env_ids, text):
    url = tmp_path / "bad.zarr"
    write_run(url, small_spec(env_ids=SUBSET), block_sizes=(8,))
    _edit_spec(url, lambda a: a["spec"].update(env_ids=env_ids))
    problems = validate(url)
    assert len(problems) == 1 and problems[0].where == "zarr.json", problems
    assert "attributes.envreel.spec: " in problems[0].message
    assert text in problems[0].message
    with pytest.raises(StoreFormatError, match="attributes.envreel.spec: env_ids"):
        open_run(url)


def test_format_1_0_store_opens(tmp_path):
    """A store as envreel wrote it before env ids: version 1.0 and no env_ids key."""
    url = tmp_path / "old.zarr"
    write_run(url, small_spec(rank=1, world_size=2, env_id_offset=4), block_sizes=(8, 5))
    _edit_spec(url, lambda a: a.update(version="1.0"))
    spec = json.loads((url / "zarr.json").read_text())["attributes"]["envreel"]["spec"]
    assert "env_ids" not in spec
    run = open_run(url)
    assert run.format_version == "1.0" and run.num_frames == 13
    assert run.spec.env_ids is None and run.env_ids == (4, 5, 6, 7)
    np.testing.assert_array_equal(run.env_frames(), frames_for(0, 13, 4, 12, 16))
    assert validate(url) == []


def test_env_ids_in_a_store_marked_1_0_are_reported(tmp_path):
    url = tmp_path / "mixed.zarr"
    write_run(url, small_spec(env_ids=SUBSET), block_sizes=(8,))
    _edit_spec(url, lambda a: a.update(version="1.0"))
    assert open_run(url).env_ids == tuple(SUBSET)  # readable: a minor version only adds
    problems = validate(url)
    assert [p.where for p in problems] == ["attributes.envreel.spec.env_ids"]
    assert "format 1.0" in problems[0].message and "need format 1.1" in problems[0].message


def test_recorder_records_env_ids(tmp_path):
    from envreel.capture import Recorder

    url = tmp_path / "rec.zarr"
    ids = np.array([0, 256, 512, 768])
    with Recorder(url, num_envs=4, fps=30, block_frames=4, env_ids=ids, writer="thread") as rec:
        for _ in range(6):
            rec.capture(np.zeros((4, 8, 8, 3), np.uint8))
    run = open_run(url)
    assert run.spec.env_ids == (0, 256, 512, 768) and run.env_ids == (0, 256, 512, 768)
    assert run.num_frames == 6 and validate(url) == []


def test_recorder_refuses_bad_env_ids_before_writing(tmp_path):
    from envreel.capture import Recorder

    url = tmp_path / "rec.zarr"
    with pytest.raises(ValueError, match="env_ids lists env 256 more than once"):
        Recorder(url, num_envs=3, fps=30, env_ids=[0, 256, 256], writer="thread")
    assert not url.exists()
