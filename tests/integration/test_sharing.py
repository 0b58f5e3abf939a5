"""Sharing a store: a zip by path, HTTP through ``envreel serve`` and through a server that
ignores byte ranges, S3 through a local S3 server (moto) — each rendered and compared with the
local render, byte for byte. Every server is started by the test on 127.0.0.1 and stopped."""

from __future__ import annotations

import http.server
import os
import signal
import subprocess
import sys
import threading
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from render_fixtures import make_store

from envreel.errors import StoreFormatError
from envreel.render import Layout, render
from envreel.schemas import open_run, pack_run, validate
from envreel.tools.serve import StoreServer, _parse_range, run_names

pytest.importorskip("aiohttp", reason="HTTP stores need the remote extra")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("share")
    return Path(make_store(root / "run.zarr", num_envs=4, frames=24, global_shape=(32, 48)))


@pytest.fixture(scope="module")
def local_gif(store: Path, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    out = tmp_path_factory.mktemp("local") / "local.gif"
    render(store, Layout(global_view="right"), out)
    return out.read_bytes()


def _render_bytes(run: object, tmp_path: Path) -> bytes:
    out = tmp_path / "remote.gif"
    render(run, Layout(global_view="right"), out, overwrite=True)  # one scratch file for all
    return out.read_bytes()


# -- zip ---------------------------------------------------------------------------------------


def test_pack_opens_by_path_and_renders_identically(
    store: Path, local_gif: bytes, tmp_path: Path
) -> None:
    packed = pack_run(store, tmp_path / "run.zip")
    with zipfile.ZipFile(packed) as zf:
        assert "zarr.json" in zf.namelist()
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_STORED}
    assert validate(packed) == []
    np.testing.assert_array_equal(open_run(packed).env_frames(), open_run(store).env_frames())
    assert _render_bytes(str(packed), tmp_path) == local_gif


def test_a_zipped_store_folder_opens_too(store: Path, tmp_path: Path) -> None:
    zipped = tmp_path / "folder.zip"
    with zipfile.ZipFile(zipped, "w") as zf:  # `zip -r folder.zip run.zarr`, deflated
        for f in sorted(store.rglob("*")):
            if f.is_file():
                zf.write(f, "run.zarr/" + f.relative_to(store).as_posix())
    np.testing.assert_array_equal(open_run(zipped).env_frames(), open_run(store).env_frames())


def test_a_zip_that_is_not_a_store_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "notes.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("notes.txt", "hello")
    with pytest.raises(StoreFormatError, match="zip file but not an envreel store"):
        open_run(bad)
    assert validate(bad)[0].where == "zarr.json"
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"not a zip")
    with pytest.raises(StoreFormatError, match="not a readable zip"):
        open_run(broken)


def test_pack_refuses_before_writing_anything(store: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"end in \.zip"):
        pack_run(store, tmp_path / "run.tar")
    (tmp_path / "taken.zip").write_bytes(b"x")
    with pytest.raises(FileExistsError, match="overwrite"):
        pack_run(store, tmp_path / "taken.zip")
    with pytest.raises(StoreFormatError):
        pack_run(tmp_path / "missing.zarr", tmp_path / "out.zip")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken.zip"]
    before = sorted(p.name for p in store.rglob("*"))
    with pytest.raises(ValueError, match="is inside the store it packs"):
        pack_run(store, store / "inside.zip")  # the next pack would hold this one
    assert sorted(p.name for p in store.rglob("*")) == before


def test_pack_writes_a_zip_teammates_can_read(store: Path, tmp_path: Path) -> None:
    # the zip is written under a temporary name (mkstemp: 0600) and renamed into place; it
    # must end up as readable as any file the user writes (0644 under the usual umask)
    old = os.umask(0o022)
    try:
        packed = pack_run(store, tmp_path / "run.zip")
    finally:
        os.umask(old)
    assert packed.stat().st_mode & 0o777 == 0o644


def test_pack_to_a_place_it_cannot_write_names_the_zip(store: Path) -> None:
    # /proc takes no new files, even from root; the error names the zip, not its temporary name
    if not Path("/proc/self").is_dir():
        pytest.skip("needs Linux's /proc")
    with pytest.raises(OSError, match=r"cannot write '/proc/run\.zip'") as info:
        pack_run(store, "/proc/run.zip")
    assert ".part" not in str(info.value)


def test_rank_stores_of_different_lengths_cut_their_clips_to_the_shortest(
    tmp_path: Path,
) -> None:
    long = make_store(tmp_path / "r0.zarr", num_envs=2, frames=24, env_id_offset=0)
    short = make_store(tmp_path / "r1.zarr", num_envs=2, frames=20, env_id_offset=2)
    run = open_run([long, short])
    assert run.num_frames == 20
    [clip] = run.clips
    assert (clip.start_frame, clip.stop_frame) == (0, 20)
    assert (clip.start_step, clip.stop_step) == (100, 120)  # steps 100..119 stored
    info = run.info()
    assert info["clips"][0]["stop_frame"] == 20 and info["num_frames"] == 20


def test_rank_stores_of_different_world_sizes_are_refused_naming_each(tmp_path: Path) -> None:
    # a rank of a 2-rank run and one of a 3-rank run were read as one run of 3 ranks
    r0 = make_store(tmp_path / "w2.zarr", num_envs=2, frames=8, world_size=2)
    r1 = make_store(
        tmp_path / "w3.zarr", num_envs=2, frames=8, rank=1, world_size=3, env_id_offset=2
    )
    with pytest.raises(
        StoreFormatError, match=r"world size differs: \S*w2.zarr has 2, \S*w3.zarr has 3;"
    ):
        open_run([r1, r0])


def test_rank_stores_that_leave_out_ranks_open_with_a_warning_naming_them(
    tmp_path: Path,
) -> None:
    stores = [
        make_store(
            tmp_path / f"r{k}.zarr", num_envs=2, frames=8, rank=k, world_size=4, env_id_offset=2 * k
        )
        for k in range(4)
    ]
    with pytest.warns(
        UserWarning, match=r"ranks 1, 3 of this 4-rank run are not given: .* ranks 0, 2 only"
    ):
        run = open_run([stores[0], stores[2]])
    assert run.env_ids == (0, 1, 4, 5) and run.world_size == 4
    with pytest.warns(UserWarning, match=r"rank 0 of this 4-rank run is not given"):
        open_run(stores[1:])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert open_run(stores).num_envs == 8


# -- HTTP --------------------------------------------------------------------------------------


@pytest.fixture()
def served(store: Path, tmp_path: Path) -> Iterator[StoreServer]:
    packed = pack_run(store, tmp_path / "packed.zip")
    with StoreServer(run_names([store, packed])) as server:
        yield server


@pytest.mark.slow
def test_envreel_serve_renders_identically_from_folder_and_zip(
    served: StoreServer, local_gif: bytes, tmp_path: Path
) -> None:
    assert served.address[0] == "127.0.0.1"
    for name in ("run.zarr", "packed.zarr"):
        url = served.url(name)
        assert validate(url) == []
        assert _render_bytes(url, tmp_path) == local_gif


def test_a_served_store_says_its_stored_size_is_unknown_not_zero(
    served: StoreServer, store: Path
) -> None:
    # an HTTP server lists no files, so the size of what is stored cannot be summed there
    remote = open_run(served.url("run.zarr")).info()
    assert remote["stored_bytes"] == -1 and remote["compression_ratio"] is None
    assert remote["raw_bytes"] == open_run(store).info()["raw_bytes"] > 0
    assert open_run(store).stored_bytes() > 0


def test_stores_named_with_spaces_and_non_ascii_letters_are_served(
    store: Path, tmp_path: Path
) -> None:
    # serve refused them ("must be letters, digits, ._-"), though every other command reads them
    import shutil

    import requests

    folder = tmp_path / "sp ace" / "rün 1.zarr"
    shutil.copytree(store, folder)
    packed = pack_run(store, tmp_path / "ünï cødé%.zip")
    names = run_names([folder, packed])
    assert set(names) == {"rün 1.zarr", "ünï cødé%.zarr"}
    with StoreServer(names) as server:
        url = server.url("rün 1.zarr")
        assert url.endswith("/r%C3%BCn%201.zarr")
        assert validate(url) == []
        np.testing.assert_array_equal(
            open_run(url).env_frames([2]), open_run(store).env_frames([2])
        )
        zipped = server.url("ünï cødé%.zarr")
        assert zipped.endswith("/%C3%BCn%C3%AF%20c%C3%B8d%C3%A9%25.zarr")
        assert open_run(zipped).num_frames == open_run(store).num_frames
        assert requests.get(server.url("rün 1.zarr") + "/zarr.json", timeout=5).ok
    with pytest.raises(ValueError, match=r"cannot serve \.\.: its name '\.\.' cannot name it"):
        run_names([".."])


def test_envreel_serve_is_read_only_and_stays_inside_the_stores(served: StoreServer) -> None:
    import requests

    base = served.url("run.zarr")
    assert requests.get(base + "/zarr.json", timeout=5).status_code == 200
    r = requests.get(base + "/zarr.json", headers={"Range": "bytes=2-5"}, timeout=5)
    assert r.status_code == 206 and len(r.content) == 4
    assert r.headers["Content-Range"].startswith("bytes 2-5/")
    assert (
        requests.get(base + "/zarr.json", headers={"Range": "bytes=99999-"}, timeout=5).status_code
        == 416
    )
    assert requests.put(base + "/zarr.json", data=b"{}", timeout=5).status_code == 405
    for path in ("/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/env", "/nothing"):
        assert requests.get(base + path, timeout=5).status_code == 404, path
    assert requests.get(served.url("other.zarr") + "/zarr.json", timeout=5).status_code == 404


def test_byte_range_parsing() -> None:
    assert _parse_range("bytes=0-9", 100) == (0, 9)
    assert _parse_range("bytes=90-", 100) == (90, 99)
    assert _parse_range("bytes=-10", 100) == (90, 99)
    assert _parse_range("bytes=95-200", 100) == (95, 99)
    assert _parse_range("bytes=100-", 100) is None
    assert _parse_range("bytes=-0", 100) is None
    assert _parse_range("bytes=0-1,5-9", 100) == (0, 99)  # several ranges: the whole object


def test_a_server_that_ignores_ranges_is_named_before_anything_is_written(
    store: Path, tmp_path: Path
) -> None:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(store.parent), **kw)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/run.zarr"
        with pytest.raises(StoreFormatError, match="ignores HTTP Range requests"):
            open_run(url)
        (problem,) = validate(url)
        assert "Range" in problem.message
        out = tmp_path / "never.gif"
        with pytest.raises(StoreFormatError, match="envreel serve"):
            render(url, Layout(), out)
        assert list(tmp_path.iterdir()) == []
        missing = f"http://127.0.0.1:{httpd.server_address[1]}/nothing.zarr"
        with pytest.raises(StoreFormatError, match="no store at .*HTTP 404"):
            open_run(missing)
    finally:
        httpd.shutdown()
        httpd.server_close()


# -- S3 ----------------------------------------------------------------------------------------


def test_s3_through_a_local_s3_server(store: Path, local_gif: bytes, tmp_path: Path) -> None:
    moto_server = pytest.importorskip("moto.server", reason="needs moto[server]")
    boto3 = pytest.importorskip("boto3")
    s3fs = pytest.importorskip("s3fs")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        endpoint = "http://{}:{}".format(*server.get_host_and_port())
        opts = {"key": "k", "secret": "s", "client_kwargs": {"endpoint_url": endpoint}}
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="k",
            aws_secret_access_key="s",
            region_name="us-east-1",
        ).create_bucket(Bucket="team")
        s3fs.S3FileSystem(**opts).put(str(store), "team/run.zarr", recursive=True)
        url = "s3://team/run.zarr"
        assert validate(url, storage_options=opts) == []
        assert _render_bytes(open_run(url, storage_options=opts), tmp_path) == local_gif
        with pytest.raises(StoreFormatError):
            open_run("s3://team/missing.zarr", storage_options=opts)
    finally:
        server.stop()


# -- the command line ------------------------------------------------------------------------


def _start(args: list[str]) -> tuple[subprocess.Popen, str]:
    """An ``envreel`` command that serves, and the first line it prints (its URL)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "envreel.tools.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline().strip()
    if not line:
        proc.kill()
        raise AssertionError(proc.stderr.read())
    return proc, line


def test_cli_serve_pack_and_stop_with_ctrl_c(store: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from envreel.tools.cli import main

    result = CliRunner().invoke(main, ["pack", str(store), str(tmp_path / "run.zip")])
    assert result.exit_code == 0 and result.output.strip() == str(tmp_path / "run.zip")
    again = CliRunner().invoke(main, ["pack", str(store), str(tmp_path / "run.zip")])
    assert again.exit_code == 1 and "overwrite" in again.output
    proc, url = _start(["serve", str(tmp_path / "run.zip"), "--port", "0"])
    try:
        assert url.startswith("http://127.0.0.1:") and url.endswith("/run.zarr")
        np.testing.assert_array_equal(open_run(url).env_frames(), open_run(store).env_frames())
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 130


def test_cli_serve_refuses_what_is_not_a_store(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from envreel.tools.cli import main

    result = CliRunner().invoke(main, ["serve", str(tmp_path), "--port", "0"])
    assert result.exit_code == 1 and "not an envreel store" in result.output


def test_cli_serve_on_a_taken_port_names_the_address(store: Path) -> None:
    import socket

    from click.testing import CliRunner

    from envreel.tools.cli import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(main, ["serve", str(store), "--port", str(port)])
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output


def test_cli_sheet_of_rank_stores_is_the_sheet_of_the_run_they_make(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from envreel.render import contact_sheet
    from envreel.tools.cli import main

    ranks = [
        make_store(tmp_path / f"r{k}.zarr", num_envs=2, frames=16, env_id_offset=2 * k)
        for k in (0, 1)
    ]
    out = tmp_path / "cli.png"
    res = CliRunner().invoke(main, ["sheet", *ranks, str(out), "--envs", "1,2", "--times", "2"])
    assert res.exit_code == 0, res.output
    want = contact_sheet(open_run(ranks), tmp_path / "api.png", Layout(envs="1,2"), num_times=2)
    assert out.read_bytes() == want.read_bytes()
