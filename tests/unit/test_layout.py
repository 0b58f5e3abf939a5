"""Layout: fields, env specs, colours, label templates, files, presets (no store needed)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from envreel.render import PRESETS, Layout
from envreel.render.layout import LabelTemplate, format_env_spec, parse_color, parse_env_spec


# ---- env specs ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "spec, ids",
    [
        ("all", None),
        ("*", None),
        ("0-3", (0, 1, 2, 3)),
        ("0-3,8,5", (0, 1, 2, 3, 8, 5)),
        (" 7 , 2-3 ", (7, 2, 3)),
        (4, (4,)),
        ([3, 1], (3, 1)),
    ],
)
def test_parse_env_spec(spec, ids):
    assert parse_env_spec(spec) == ids


@pytest.mark.parametrize(
    "spec, match",
    [
        ("", "not an env id"),
        ("a-b", "not an env id"),
        ("5-2", "runs backwards"),
        ("1,1", "more than once"),
        ("0-3,2", "more than once"),
        ("-1", "not an env id"),
        ([], "selects no env"),
        ([1, -2], "non-negative"),
    ],
)
def test_parse_env_spec_errors(spec, match):
    with pytest.raises(ValueError, match=match):
        parse_env_spec(spec)


@given(st.lists(st.integers(0, 500), unique=True, min_size=1, max_size=60))
def test_env_spec_round_trip(ids):
    assert parse_env_spec(format_env_spec(tuple(ids))) == tuple(ids)


def test_env_spec_takes_global_ids_up_to_the_format_limit():
    # global ids of later ranks or subsets may pass 2^20, the most envs one store holds
    assert parse_env_spec("2097152-2097153,2147483647") == (2097152, 2097153, 2147483647)
    with pytest.raises(ValueError, match="id 2147483648 is above the largest possible env id"):
        parse_env_spec("2147483648")
    with pytest.raises(ValueError, match="selects more than 1048576 envs"):
        parse_env_spec("0-2147483647")  # refused before expanding the range
    with pytest.raises(ValueError, match="selects more than 1048576 envs"):
        parse_env_spec("0-1000000,2000000-2100000")


def test_envs_field_is_canonical():
    assert Layout(envs=[0, 1, 2, 5]).envs == "0-2,5"
    assert Layout(envs="0-2,5").env_ids == (0, 1, 2, 5)
    assert Layout().env_ids is None


# ---- colours -----------------------------------------------------------------------------------
def test_colors():
    assert parse_color("#ff0000") == (255, 0, 0)
    assert parse_color("red") == (255, 0, 0)
    assert parse_color([1, 2, 3]) == (1, 2, 3)
    assert Layout(background="white").background == "#ffffff"
    assert Layout(background=[0, 128, 255]).background == "#0080ff"
    for bad in ("nope", [1, 2], [0, 0, 300], 5):
        with pytest.raises(ValueError, match="not a colour"):
            parse_color(bad)


# ---- label templates ---------------------------------------------------------------------------
def test_label_template_formats_fields():
    t = LabelTemplate("env {env} r={reward:+.2f} {{x}}")
    assert t.fields == ("env", "reward")
    assert t.format({"env": 3, "reward": 0.5}) == "env 3 r=+0.50 {x}"


@pytest.mark.parametrize(
    "text",
    [
        "{env.__class__}",
        "{env.__class__.__mro__}",
        "{env[0]}",
        "{}",
        "{0}",
        "{env!r}",
        "{reward:{width}}",
        "{__import__}x{env.real}",
    ],
)
def test_label_template_refuses_attribute_item_and_positional_access(text):
    with pytest.raises(ValueError, match="label template"):
        LabelTemplate(text)
    with pytest.raises(ValueError, match="label template"):
        Layout(label=text)


def test_label_template_check_names_unknown_field_and_bad_spec():
    t = LabelTemplate("{rewrd}")
    with pytest.raises(ValueError, match=r"unknown field \{rewrd\}.*did you mean \{reward\}"):
        t.check({"reward": 0.0, "env": 0})
    with pytest.raises(ValueError, match="format spec 'q'"):
        LabelTemplate("{env:q}").check({"env": 0})


def test_label_template_malformed():
    with pytest.raises(ValueError, match="malformed"):
        LabelTemplate("{env")


# ---- fields ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"columns": 0}, "columns must be"),
        ({"top_k": 3, "bottom_k": 2}, "not both"),
        ({"only": "finished"}, "only must be one of"),
        ({"order": "random"}, "order must be one of"),
        ({"score_stat": "median"}, "score_stat"),
        ({"global_view": "lefft"}, "did you mean 'left'"),
        ({"markers": True}, "needs a global view"),
        ({"start": 10, "stop": 5}, "start=10 is after stop=5"),
        ({"start": 1.5}, "whole frame"),
        ({"stride": 0}, "stride must be"),
        ({"fps": 0}, "fps must be"),
        ({"scale": -1}, "scale must be"),
        ({"tile_size": (0, 5)}, "tile_size"),
        ({"tile_size": "abc"}, "HEIGHTxWIDTH"),
        ({"dim": 2}, "dim must be"),
        ({"episode": 0, "global_view": "left"}, "episode mode"),
        ({"columns": 2, "rows": 2, "page_size": 5}, "does not fit"),
        ({"score": "a.b"}, "scalar name"),
        ({"max_width": 1}, "max_width"),
    ],
)
def test_bad_fields_name_value_and_expectation(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        Layout(**kwargs)


def test_type_errors():
    with pytest.raises(TypeError, match="columns must be an int"):
        Layout(columns="4")
    with pytest.raises(TypeError, match="markers must be True or False"):
        Layout(markers="yes", global_view="left")


def test_aliases_and_sizes():
    assert Layout(only="timed_out").only == "truncated"
    assert Layout(tile_size=64).tile_size == (64, 64)
    assert Layout(tile_size="48x64").tile_size == (48, 64)
    assert Layout(tile_size=[48, 64]).tile_size == (48, 64)
    assert Layout(start=3.0).start == 3


# ---- dicts, files, presets ---------------------------------------------------------------------
def test_dict_round_trip():
    lay = Layout(
        envs="0-7,9",
        columns=3,
        tile_size=(64, 96),
        label="{env} {reward:.1f}",
        global_view="right",
        markers=True,
    )
    d = lay.to_dict()
    json.dumps(d)
    assert Layout.from_dict(d) == lay
    assert Layout.from_dict(lay.to_dict(changed_only=True)) == lay
    assert Layout().to_dict(changed_only=True) == {}


def test_command_args_write_whole_floats_as_a_person_types_them():
    assert Layout(marker_height=2.0).command_args() == ["--marker-height", "2"]
    assert Layout(marker_height=2.5).command_args() == ["--marker-height", "2.5"]
    assert Layout(global_view="right", markers=True).command_args() == [
        "--global-view",
        "right",
        "--markers",
    ]


def test_from_dict_unknown_key_and_dashes():
    with pytest.raises(ValueError, match="unknown layout field 'colums' \\(did you mean 'columns'"):
        Layout.from_dict({"colums": 3})
    assert Layout.from_dict({"tile-size": 32, "global-view": "top"}).tile_size == (32, 32)


def test_from_file_json_and_yaml(tmp_path):
    j = tmp_path / "l.json"
    j.write_text(json.dumps({"envs": "0-3", "columns": 2}))
    assert Layout.from_file(j) == Layout(envs="0-3", columns=2)
    y = tmp_path / "l.yaml"
    y.write_text("preset: top16\ncolumns: 4\nlabel: '{env} {reward:.3f}'\n")
    lay = Layout.from_file(y)
    assert (lay.top_k, lay.columns, lay.label) == (16, 4, "{env} {reward:.3f}")
    (tmp_path / "empty.yml").write_text("")
    assert Layout.from_file(tmp_path / "empty.yml") == Layout()


def test_from_file_errors(tmp_path):
    with pytest.raises(ValueError, match=r"must end in \.json, \.yaml or \.yml"):
        Layout.from_file(tmp_path / "l.txt")
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(ValueError, match="does not parse"):
        Layout.from_file(bad)
    f = tmp_path / "f.yaml"
    f.write_text("columns: -1\n")
    with pytest.raises(ValueError, match=r"f\.yaml.*columns must be"):
        Layout.from_file(f)
    lst = tmp_path / "list.json"
    lst.write_text("[1, 2]")
    with pytest.raises(TypeError, match="dict of field values"):
        Layout.from_file(lst)
    with pytest.raises(FileNotFoundError):
        Layout.from_file(tmp_path / "missing.json")


def test_yaml_file_cannot_build_python_objects(tmp_path):
    f = tmp_path / "evil.yaml"
    f.write_text("label: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ValueError, match="does not parse"):
        Layout.from_file(f)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_build(name):
    assert isinstance(Layout.preset(name), Layout)


def test_preset_overrides_and_unknown():
    assert Layout.preset("top16", top_k=4).top_k == 4
    with pytest.raises(ValueError, match="unknown layout preset 'top61' \\(did you mean 'top16'"):
        Layout.preset("top61")


def test_replace_checks_and_field_docs():
    lay = Layout().replace(columns=3)
    assert lay.columns == 3
    with pytest.raises(ValueError):
        Layout().replace(columns=0)
    docs = Layout.field_docs()
    assert docs["gap"] == (2, "pixels between tiles")
    assert set(docs) == set(Layout().to_dict())
