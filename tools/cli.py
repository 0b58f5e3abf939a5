"""The ``envreel`` command: a thin shell over the library.

Library errors become one-line messages with exit code 1; usage errors (bad flags or flag values)
exit 2; progress bars go to stderr and hide with ``--quiet`` or when stderr is not a terminal.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import json
import signal
import sys
import threading
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import click

from envreel._options import OptionSpec, spec
from envreel.render import PRESETS, Layout
from envreel.render._encode import EncodeOptions
from envreel.render.api import SheetOptions
from envreel.schemas import CorruptChunkError, EnvreelError, open_run, validate

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
LIBRARY_ERRORS = (
    EnvreelError,
    ValueError,
    TypeError,
    FileNotFoundError,
    FileExistsError,
    PermissionError,
    NotADirectoryError,
    ImportError,
    OSError,
)


def _version() -> str:
    try:
        return version("envreel")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0+unknown"


class Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, SLURM, ``docker stop``), unwound like Ctrl-C: partial outputs are
    removed on the way out."""


def _terminate(signum: int, frame: Any) -> None:
    raise Terminated


@contextlib.contextmanager
def _sigterm_unwinds():
    """SIGTERM raises ``Terminated`` in the main thread while the command runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def library_errors(fn):
    """Turn library errors into one-line messages and exit code 1, Ctrl-C into exit code 130
    (SIGTERM into 143, cleaning up alike), and the library's warnings into ``warning: ...``
    lines on stderr, each printed once."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with warnings.catch_warnings(record=True) as caught, _sigterm_unwinds():
            warnings.simplefilter("always")
            try:
                return fn(*args, **kwargs)
            except click.exceptions.Exit:
                raise
            except click.ClickException:
                raise
            except Terminated:
                click.echo("envreel: terminated", err=True)
                sys.exit(143)
            except KeyboardInterrupt:
                click.echo("envreel: interrupted", err=True)
                sys.exit(130)
            except LIBRARY_ERRORS as exc:
                msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                notes = getattr(exc, "__notes__", ())  # what was kept, when something was
                raise click.ClickException("\n".join([msg, *notes])) from None
            finally:
                _print_warnings(caught)

    return wrapper


@contextlib.contextmanager
def _damage_hint(runs: tuple[str, ...]):
    """A damaged chunk's error, with what the user can do about it."""
    try:
        yield
    except CorruptChunkError as exc:
        exc.add_note(
            f"--skip-bad draws damaged chunks as placeholder tiles; `envreel validate "
            f"{runs[0]}` lists every damaged chunk"
        )
        raise


def _print_warnings(caught: list[warnings.WarningMessage]) -> None:
    """Each distinct warning once, as one clean line (no Python file:line)."""
    seen = set()
    for w in caught:
        text = str(w.message).strip()
        if issubclass(w.category, DeprecationWarning) or text in seen:
            continue
        seen.add(text)
        click.echo(f"warning: {text}", err=True)


def _set_quiet(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.find_root().ensure_object(dict)["quiet"] = True


def quiet_option(fn):
    """``-q/--quiet`` on a subcommand too: ``envreel render ... --quiet``."""
    return click.option(
        "-q",
        "--quiet",
        is_flag=True,
        expose_value=False,
        callback=_set_quiet,
        help="No progress bars or summaries on stderr.",
    )(fn)


NONE_GIVEN = type("NoneGiven", (), {"__repr__": lambda self: "none"})()
"""What a ``none`` flag value converts to: None was asked for (a flag not given is None)."""


class Declared(click.ParamType):
    """A flag's type built from a library option declaration (``envreel._options.spec``): the
    same choices and bounds, never restated here; ``none`` where the option allows None.

    Attributes:
        spec: the declaration. inner: the click type with its choices or range.
    """

    def __init__(self, spec: OptionSpec, *, aliases: tuple[str, ...] = ()):
        self.spec = spec
        if spec.kind == "choice":
            self.inner: click.ParamType = click.Choice([*spec.choices, *aliases])
        elif spec.kind == "int":
            self.inner = click.IntRange(_bound(spec.minimum), _bound(spec.maximum))
        elif spec.kind == "number":
            self.inner = click.FloatRange(
                spec.minimum, spec.maximum, min_open=spec.exclusive_minimum
            )
        else:
            self.inner = click.STRING
        self.name = self.inner.name

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str | None:
        if isinstance(self.inner, click.Choice):
            extra = ["none"] if self.spec.optional else []
            return "[" + "|".join([*map(str, self.inner.choices), *extra]) + "]"
        return None

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None):
        if (
            self.spec.optional
            and isinstance(value, str)
            and value.strip().lower() in ("none", "null", "")
        ):
            return NONE_GIVEN
        return self.inner.convert(value, param, ctx)

    def help(self, doc: str, default: Any) -> str:
        """``doc`` with what is allowed (for numbers) and the default."""
        allowed = f"{self.spec.describe()}; " if self.spec.kind in ("int", "number") else ""
        return f"{doc} [{allowed}default: {default}]"


def _flag_help(decl: OptionSpec) -> str:
    """A flag's help from the declaration: its doc, and the range of a number."""
    text = decl.doc[:1].upper() + decl.doc[1:]
    if decl.kind in ("int", "number"):
        text += f" ({decl.describe()})"
    return text + "."


def _bound(v: float | None) -> int | None:
    return None if v is None else int(v)


def _show_progress(ctx: click.Context) -> bool:
    return not ctx.find_root().obj.get("quiet") and sys.stderr.isatty()


@click.group(context_settings=CONTEXT)
@click.version_option(_version(), "--version", prog_name="envreel")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or summaries on stderr.")
@click.pass_context
def main(ctx: click.Context, quiet: bool) -> None:
    """Record what parallel simulation envs see; render grids, GIFs and videos later, on any CPU.

    \b
    Example:
      envreel demo --out envreel-demo
      envreel info envreel-demo/run.zarr
      envreel render envreel-demo/run.zarr grid.mp4 --columns 4 --label "{env} r={reward:.2f}"
    """
    ctx.ensure_object(dict)
    ctx.obj["quiet"] = quiet


# ---- info and validate ------------------------------------------------------------------------
def _open_state(runs: tuple[str, ...], facts: dict[str, Any]) -> str:
    """How a store that is not closed came to be so, where this machine can tell."""
    if facts["closed"]:
        return ""
    from envreel.schemas._store import being_recorded

    recording = {being_recorded(run) for run in runs}
    if recording == {False}:
        return " (not closed: its recorder ended without closing it, e.g. killed)"
    if True in recording:
        return " (not closed: being recorded now)"
    return " (not closed: recording or interrupted)"


def _human_bytes(n: int) -> str:
    if n < 0:
        return "unknown"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024
    return str(n)


def _short_ids(compact: str, num_envs: int, max_parts: int = 8) -> str:
    """A compact id list like ``"0-15,20,31"`` cut to ``max_parts`` runs, the last one kept."""
    parts = compact.split(",")
    if len(parts) <= max_parts:
        return compact
    return ",".join(parts[: max_parts - 1]) + f",...,{parts[-1]} ({num_envs} envs)"


def _open(runs: tuple[str, ...]):
    """One store, or several rank stores of one run read as one."""
    return open_run(runs[0] if len(runs) == 1 else list(runs))


@main.command(context_settings=CONTEXT)
@quiet_option
@click.argument("runs", metavar="RUN...", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print the facts as JSON.")
@library_errors
def info(runs: tuple[str, ...], as_json: bool) -> None:
    """Show what a run store holds: envs, frames, clips, sizes, counters, source, version.

    Several stores (the ranks of a multi-GPU run, e.g. runs/ppo_rank*.zarr) are shown as one
    run with global env ids.

    \b
    Example:
      envreel info runs/ant.zarr
      envreel info s3://bucket/runs/ant.zarr --json
      envreel info runs/ppo_rank*.zarr
    """
    facts = _open(runs).info()
    if as_json:
        click.echo(json.dumps(facts, indent=2))
        return
    h, w = facts["env_frame_shape"]
    g = facts["global_frame_shape"]
    lines = [
        f"run          {facts['url']}",
        f"format       {facts['format']} {facts['format_version']}{_open_state(runs, facts)}",
        f"envs         {facts['num_envs']} (frames {w}×{h} px)"
        + (f", global view {g[1]}×{g[0]} px" if g else ", no global view"),
        f"env ids      {_short_ids(facts['env_ids'], facts['num_envs'])}",
        f"frames       {facts['num_frames']} at {facts['fps']:g} fps = {facts['duration_s']:.1f} s"
        f" (step_dt {facts['step_dt']:g} s)",
        f"clips        {facts['num_clips']}"
        + "".join(
            f"\n             #{c['id']}: frames {c['start_frame']}..{c['stop_frame'] - 1}"
            f" (steps {c['start_step']}..{c['stop_step'] - 1})"
            for c in facts["clips"][:10]
        ),
        f"scalars      {', '.join(facts['scalars'])}",
        f"stored       {_human_bytes(facts['stored_bytes'])} of {_human_bytes(facts['raw_bytes'])}"
        f" raw"
        + (
            f" ({facts['compression_ratio']}×, {facts['codec']})"
            if facts["compression_ratio"]
            else ""
        ),
        "counters     " + ", ".join(f"{k}={v}" for k, v in facts["counters"].items()),
        f"rank         {facts['rank']} of {facts['world_size']} (env id offset "
        f"{facts['env_id_offset']})",
        "source       " + (json.dumps(facts["source"]) if facts["source"] else "(not recorded)"),
    ]
    if "ranks" in facts:
        lines.append(
            "ranks        "
            + ", ".join(
                f"{r['url']} (rank {r['rank']}, {r['num_envs']} envs)" for r in facts["ranks"]
            )
        )
    if facts["errors"]:
        counted = collections.Counter(facts["errors"])  # a full disk repeats one error per block
        lines.append(
            "errors       "
            + "\n             ".join(f"{e} (×{n})" if n > 1 else e for e, n in counted.items())
        )
    click.echo("\n".join(lines))


@main.command("validate", context_settings=CONTEXT)
@quiet_option
@click.argument("run")
@click.option("--json", "as_json", is_flag=True, help="Print the problems as JSON.")
@click.option("--quick", is_flag=True, help="Check metadata only; do not read every chunk.")
@library_errors
def validate_cmd(run: str, as_json: bool, quick: bool) -> None:
    """Check a run store against the format; exit 1 when there are problems.

    Checks the format version, the commit record, every array's shape, dtype and codecs, unknown
    arrays, and (unless --quick) that every committed chunk exists and decodes.

    \b
    Example:
      envreel validate runs/ant.zarr
      envreel validate runs/ant.zarr --json --quick
    """
    problems = validate(run, check_data=not quick)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "run": run,
                    "valid": not problems,
                    "problems": [dataclasses.asdict(p) for p in problems],
                },
                indent=2,
            )
        )
    elif problems:
        for p in problems:
            click.echo(f"{p.where}: {p.message}")
    else:
        click.echo(f"{run}: valid")
    if problems:
        if not as_json:
            click.echo(f"{len(problems)} problem(s)", err=True)
        sys.exit(1)


# ---- render and sheet -------------------------------------------------------------------------
_SIZES = ("tile_size", "global_size")  # (height, width) fields, written HEIGHTxWIDTH or N


def _layout_fields() -> list[tuple[str, Any, OptionSpec]]:
    """(name, default, declaration) of every Layout field."""
    return [(f.name, f.default, spec(Layout, f.name)) for f in dataclasses.fields(Layout)]


def declared_option(flag: str, group: type, name: str, *, dest: str | None = None) -> Any:
    """``click.option(flag)`` for option ``name`` of option group ``group``: its type, default
    and help all read from the declaration."""
    decl = spec(group, name)
    decls = (flag, dest) if dest else (flag,)
    return click.option(
        *decls,
        type=Declared(decl),
        default=getattr(group(), name),
        show_default=True,
        help=_flag_help(decl),
    )


def layout_flag_type(name: str) -> Declared:
    """The click type of the flag of Layout field ``name``, from the field's declaration."""
    from envreel.render.layout import ONLY_ALIASES

    aliases = tuple(ONLY_ALIASES) if name == "only" else ()
    return Declared(spec(Layout, name), aliases=aliases)


def _layout_options(fn):
    """Add one option per Layout field (names with dashes); help, choices, bounds and defaults
    all come from the field's declaration."""
    for name, default, decl in reversed(_layout_fields()):
        flag = "--" + name.replace("_", "-")
        shown = (
            "none"
            if default is None
            else ("x".join(map(str, default)) if isinstance(default, tuple) else default)
        )
        if decl.kind == "bool":
            fn = click.option(
                f"{flag}/--no-{flag[2:]}",
                name,
                default=None,
                help=f"{decl.doc} [default: {'on' if default else 'off'}]",
            )(fn)
        else:
            ctype = layout_flag_type(name)
            fn = click.option(
                flag, name, type=ctype, default=None, help=ctype.help(decl.doc, shown)
            )(fn)
    return fn


def _parse_size(name: str, value: Any) -> Any:
    """A size flag's 'HEIGHTxWIDTH' or 'N' as a tuple; other values pass through."""
    if not isinstance(value, str):
        return value
    parts = value.lower().replace("×", "x").split("x")
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        raise click.BadParameter(
            f"expected HEIGHTxWIDTH or N, got {value!r}",
            param_hint="--" + name.replace("_", "-"),
        ) from None
    return (nums[0], nums[0]) if len(nums) == 1 else tuple(nums)


def _build_layout(layout_file: str | None, preset: str | None, flags: dict[str, Any]):
    """Layout from a file or preset, with flags on top. Bad values are usage errors (exit 2)."""
    given = {
        k: None if v is NONE_GIVEN else _parse_size(k, v) if k in _SIZES else v
        for k, v in flags.items()
        if v is not None
    }
    try:
        base = Layout.from_file(layout_file) if layout_file else Layout()
        if preset:
            base = Layout.from_dict(
                {
                    **Layout.preset(preset).to_dict(changed_only=True),
                    **base.to_dict(changed_only=True),
                }
            )
        return base.replace(**given) if given else base
    except (ValueError, TypeError) as exc:
        raise click.UsageError(str(exc).splitlines()[0]) from None


def _check_label(layout, run) -> None:
    """A label template that does not fit the run is a usage error (exit 2), like one that
    does not parse (which ``_build_layout`` reports)."""
    from envreel.render._select import label_samples

    template = layout.label_template
    if template is not None:
        try:
            template.check(label_samples(run))
        except ValueError as exc:
            raise click.UsageError(str(exc).splitlines()[0]) from None


@main.command(context_settings=CONTEXT)
@quiet_option
@click.argument("runs", metavar="RUN...", nargs=-1, required=True)
@click.argument("out")
@click.option(
    "--layout",
    "layout_file",
    type=click.Path(exists=True, dir_okay=False),
    help="JSON or YAML file of layout fields; flags override it.",
)
@click.option(
    "--preset",
    type=click.Choice(list(PRESETS)),
    help="Start from a named layout (envreel.render.PRESETS); flags override it.",
)
@declared_option("--crf", EncodeOptions, "crf")
@declared_option("--speed", EncodeOptions, "preset", dest="x264_preset")
@click.option(
    "--per-env",
    is_flag=True,
    help="Write one video per env into the folder OUT (env_0007.mp4, ...).",
)
@click.option(
    "--per-env-format",
    type=click.Choice(["mp4", "gif"]),
    help="With --per-env: each env's video as mp4 (the default) or gif.",
)
@click.option(
    "--skip-bad",
    is_flag=True,
    help="Render corrupt chunks as placeholder tiles (with a warning) instead of failing.",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace an existing OUT (a PNG folder: its frames; --per-env: every env file of an "
    "earlier render in OUT, other files stay).",
)
@_layout_options
@click.pass_context
@library_errors
def render(
    ctx,
    runs,
    out,
    layout_file,
    preset,
    crf,
    x264_preset,
    per_env,
    per_env_format,
    skip_bad,
    overwrite,
    **flags,
):
    """Render a run store in a layout chosen now: OUT.mp4, OUT.gif, a folder of PNGs.

    The format comes from OUT's suffix: .mp4 (H.264), .gif, or a folder name ending in / or
    without a suffix for PNG frames. Every layout field is a flag; --layout FILE and --preset
    give starting points. Several stores (the ranks of a multi-GPU run) render as one run.

    \b
    Example:
      envreel render run.zarr grid.mp4 --columns 8 --label "{env} r={reward:.2f}"
      envreel render run.zarr best.gif --preset top16 --fps 15
      envreel render run.zarr side.mp4 --envs 0-15 --global-view left --markers
      envreel render run.zarr ep.mp4 --episode 0 --only terminated
      envreel render runs/ppo_rank*.zarr all-ranks.mp4 --columns 16
    """
    from envreel import render as R

    if per_env and Path(out).suffix.lower() in (".mp4", ".gif", ".png"):
        raise click.BadParameter(
            f"--per-env writes one file per env into a folder: OUT must be a folder name, "
            f"got {out!r} (--per-env-format gif for GIFs)",
            param_hint="OUT",
        )
    if per_env_format is not None and not per_env:
        raise click.BadParameter("needs --per-env", param_hint="--per-env-format")
    layout = _build_layout(layout_file, preset, flags)
    run = _open(runs)
    _check_label(layout, run)
    with _damage_hint(runs):
        if per_env:
            paths = R.render_envs(
                run,
                out,
                layout,
                suffix=f".{per_env_format or 'mp4'}",
                crf=crf,
                preset=x264_preset,
                skip_bad=skip_bad,
                overwrite=overwrite,
            )
        else:
            result = R.render(
                run,
                layout,
                out,
                crf=crf,
                preset=x264_preset,
                skip_bad=skip_bad,
                progress=_show_progress(ctx),
                overwrite=overwrite,
            )
            paths = result.paths  # its warnings are printed once by library_errors
    for p in paths:
        click.echo(str(p))


@main.command(context_settings=CONTEXT)
@quiet_option
@click.argument("runs", metavar="RUN...", nargs=-1, required=True)
@click.argument("out")
@click.option(
    "--envs",
    default="all",
    show_default=True,
    help="Env ids and ranges like 0-15,20 (rows of the sheet).",
)
@declared_option("--times", SheetOptions, "num_times")
@click.option(
    "--scale",
    type=layout_flag_type("scale"),
    default=Layout().scale,
    show_default=True,
    help=_flag_help(spec(Layout, "scale")),
)
@click.option("--skip-bad", is_flag=True, help="Placeholder tiles for corrupt chunks.")
@click.option("--overwrite", is_flag=True, help="Replace an existing OUT.")
@library_errors
def sheet(runs, out, envs, times, scale, skip_bad, overwrite):
    """Write a contact sheet PNG: one row per env, one column per sampled time. Several
    stores (the ranks of a multi-GPU run) make one sheet.

    \b
    Example:
      envreel sheet run.zarr sheet.png
      envreel sheet run.zarr sheet.png --envs 0-7 --times 12 --scale 0.5
      envreel sheet runs/ppo_rank*.zarr sheet.png --envs 0-3,64-67
    """
    from envreel import render as R

    try:
        layout = Layout(envs=envs, scale=scale)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    with _damage_hint(runs):
        path = R.contact_sheet(
            _open(runs), out, layout, num_times=times, skip_bad=skip_bad, overwrite=overwrite
        )
    click.echo(str(path))


# ---- sharing: view, serve, pack ---------------------------------------------------------------
@main.command(context_settings=CONTEXT)
@quiet_option
@click.argument("runs", metavar="RUN...", nargs=-1, required=True)
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="Port (default: any free).")
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on (this machine)."
)
@click.option("--no-browser", is_flag=True, help="Print the address; do not open a browser.")
@library_errors
def view(runs, port, host, no_browser):
    """Look at a run in the browser: scrub, play, pick and sort envs, change the layout live.

    RUN is a store folder, a .zip, or a URL (http(s)://, s3://); several rank stores show as one
    run. The page composes nothing itself: every picture is envreel's render of the layout it
    shows, and it gives the `envreel render` command for it. Ctrl-C stops.

    \b
    Example:
      envreel view envreel-demo/run.zarr
      envreel view http://teammate:8765/run.zarr --no-browser
    """
    from envreel.tools.viewer import Viewer

    viewer = Viewer(
        _open(runs), name=runs[0] if len(runs) == 1 else " ".join(runs), host=host, port=port
    )
    click.echo(f"envreel view: {viewer.url}  (Ctrl-C stops)", err=True)
    if not no_browser:
        import webbrowser

        webbrowser.open(viewer.url)
    _serve_until_interrupted(viewer)


@main.command(context_settings=CONTEXT)
@quiet_option
@click.argument("runs", metavar="RUN...", nargs=-1, required=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; 0.0.0.0 shares with the network (read-only).",
)
@library_errors
def serve(runs, port, host):
    """Serve run stores over HTTP, read-only, with byte ranges, for teammates.

    Each store (a folder or a .zip) is served under its name: runs/ppo.zarr at
    http://HOST:PORT/ppo.zarr, which `envreel info/render/view` open. Unlike
    `python -m http.server`, it answers the byte ranges chunks are read with. Ctrl-C stops.

    \b
    Example:
      envreel serve envreel-demo/run.zarr
      envreel serve runs/*.zarr --host 0.0.0.0 --port 8765
    """
    from envreel.tools.serve import StoreServer, run_names

    names = run_names(list(runs))
    server = StoreServer(names, host=host, port=port)
    for name in names:
        click.echo(server.url(name))
    click.echo("read-only; Ctrl-C stops", err=True)
    _serve_until_interrupted(server)


def _serve_until_interrupted(server) -> None:
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.close()
        sys.exit(130)


@main.command(context_settings=CONTEXT)
@quiet_option
@click.argument("run")
@click.argument("out")
@click.option("--overwrite", is_flag=True, help="Replace an existing OUT.")
@library_errors
def pack(run, out, overwrite):
    """Write a run store into one .zip file, to send or upload; it opens like a folder.

    \b
    Example:
      envreel pack envreel-demo/run.zarr run.zip
      envreel render run.zip grid.mp4
    """
    from envreel.schemas import pack_run

    click.echo(str(pack_run(run, out, overwrite=overwrite)))


# ---- demo -------------------------------------------------------------------------------------
@main.command(context_settings=CONTEXT)
@quiet_option
@click.option(
    "--out",
    "out_dir",
    default="envreel-demo",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder for the store and the videos.",
)
@click.option(
    "--num-envs",
    type=click.IntRange(1, 256),
    default=16,
    show_default=True,
    help="Parallel envs (worlds) to simulate.",
)
@click.option(
    "--steps",
    type=click.IntRange(1, 100_000),
    default=200,
    show_default=True,
    help="Env steps to simulate and record.",
)
@click.option(
    "--size",
    type=click.IntRange(16, 1024),
    default=128,
    show_default=True,
    help="Height and width of each env camera.",
)
@click.option(
    "--global-size",
    default="360x640",
    show_default=True,
    help="HEIGHTxWIDTH of the global camera, or 'none'.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--overwrite", is_flag=True, help="Replace an earlier demo's outputs in --out.")
@click.pass_context
@library_errors
def demo(ctx, out_dir, num_envs, steps, size, global_size, seed, overwrite):
    """Simulate cart-poles in parallel worlds on the CPU (Newton), record them, render them.

    Writes OUT/run.zarr, OUT/grid.mp4 (every env, with the global view), OUT/grid.gif and
    OUT/sheet.png, then prints their paths and a summary. The first run compiles Newton's
    Warp kernels (about 1-1.5 minutes on 2 cores); later runs start in seconds.

    \b
    Example:
      envreel demo
      envreel demo --out /tmp/demo --num-envs 4 --steps 30 --overwrite
    """
    from envreel.tools.demo import run_demo

    gsize = None if global_size.lower() == "none" else _parse_size("global_size", global_size)
    quiet = ctx.find_root().obj.get("quiet")
    result = run_demo(
        Path(out_dir),
        num_envs=num_envs,
        steps=steps,
        size=size,
        global_size=gsize,
        seed=seed,
        overwrite=overwrite,
        progress=_show_progress(ctx),
        log=None if quiet else (lambda m: click.echo(m, err=True)),
    )
    for p in result.paths:
        click.echo(str(p))
    if not quiet:
        click.echo(result.summary, err=True)


if __name__ == "__main__":
    main()
