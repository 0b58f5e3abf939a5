"""``mapped_empty``: large render buffers with their pages mapped before first use."""

from __future__ import annotations

import mmap

import numpy as np
import pytest

from envreel.render import _memory


@pytest.mark.parametrize("shape", [(3, 5, 7, 3), (4, 256, 512, 3)])  # below and above 1 MiB
def test_mapped_empty_is_a_writable_uint8_array_of_the_shape(shape):
    a = _memory.mapped_empty(shape)
    assert a.shape == shape and a.dtype == np.uint8
    assert a.flags.c_contiguous and a.flags.writeable
    a[...] = 7
    a[-1, -1, -1, -1] = 9
    assert int(a.sum()) == 7 * a.size + 2


def test_mapped_empty_without_madvise_maps_with_map_populate(monkeypatch):
    monkeypatch.setattr(_memory, "_madvise", False)  # no libc madvise (or not yet resolved)
    a = _memory.mapped_empty((2, 1024, 1024))
    a[...] = 1
    assert a.shape == (2, 1024, 1024) and int(a[1].sum()) == 1024 * 1024


@pytest.mark.skipif(not hasattr(mmap, "MAP_POPULATE"), reason="Linux only: elsewhere np.empty")
def test_mapped_empty_falls_back_when_the_kernel_refuses_populate_write(monkeypatch):
    calls = []

    def refuses(addr, nbytes, advice):  # a kernel before 5.14: EINVAL
        calls.append((nbytes, advice))
        return -1

    monkeypatch.setattr(_memory, "_madvise", refuses)
    a = _memory.mapped_empty((3, 1 << 20))
    a[...] = 2
    assert calls == [(3 << 20, _memory._MADV_POPULATE_WRITE)]
    assert int(a.sum()) == 2 * (3 << 20)
