"""The renderer's bookkeeping with many envs: per-env lookups that stay cheap at thousands of
tiles (each tile asks for its env's track, score and id every block)."""

from __future__ import annotations

import time

import pytest

from envreel.render._select import Plan


def _plan(n: int) -> Plan:
    envs = tuple(range(n - 1, -1, -1))  # reversed: the last env asked for is at the end
    return Plan(
        envs=envs,
        global_ids=tuple(e + 1000 for e in envs),
        pages=(envs,),
        page_size=n,
        starts=tuple(range(n)),
        stops=tuple(range(n, 2 * n)),
        stride=1,
        fps=30.0,
        window=(0, 2 * n),
        episode_mode=True,
        label=None,
        scalars_needed=(),
        scores=tuple(float(i) for i in range(n)),
    )


def test_per_env_lookups_do_not_scan_the_envs():
    n = 20_000
    plan = _plan(n)
    assert plan.track(n - 1) == (0, n) and plan.track(0) == (n - 1, 2 * n - 1)
    assert plan.score_of(0) == n - 1 and plan.env_length(5) == n
    t = time.perf_counter()
    for e in plan.envs:  # a scan per env was 20,000² / 2 steps (~1.5 s here)
        plan.track(e), plan.score_of(e), plan.global_id(e)
    assert time.perf_counter() - t < 0.3
    assert plan.page_frames(0) == n
    t = time.perf_counter()
    for e in plan.envs:  # what a contact sheet asks for each of its envs
        assert plan.stored(e + 1000) == e
    assert time.perf_counter() - t < 0.3
    with pytest.raises(
        ValueError, match=r"env 5 is not shown by this layout \(it shows 1000-20999\)"
    ):
        plan.stored(5)
