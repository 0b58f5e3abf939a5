"""Input normalisation: numpy arrays and torch tensors (CPU or CUDA) into ring-buffer slots.

Every ``capture()`` input passes through here twice: ``check`` (cheap validation, nothing written)
and then a copy into a preallocated slot. Checks are cached on the input's (type, shape, dtype,
strides or device): a caller that passes the same kind of array every step pays one tuple
comparison, not a full validation.

Host copies and what they cost (16 envs × 128×128, 2-core CPU, numpy 2):

* contiguous RGB uint8: one ``np.copyto`` (a memcpy), ~0.04 ms;
* RGBA uint8, or an RGB view of RGBA memory (Isaac Lab's ``rgb`` is ``rgba[..., :3]``): numpy's
  strided copy of 3-byte pixels takes ~1.3 ms, so the pixels are copied as 4-byte words into
  destinations 3 bytes apart, in ascending order, each word's 4th byte overwritten by the next
  pixel (~0.1 ms). Slots have one byte of slack after them for the last pixel's spill. The trick
  is checked once per process against the plain copy; where it disagrees, the plain copy is used;
* float frames: range check (min and max: two passes, which also catch NaN/inf) and a
  conversion (``round((x - lo) / (hi - lo) * 255)``) into a float32 scratch buffer, then a cast:
  several passes, ~10× the cost of uint8 input; give uint8 where you can.

torch is imported only when an input's type lives in the ``torch`` module.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from ..schemas._pixels import c_strides, overlap_copy_works, words_of

__all__ = [
    "is_torch",
    "describe",
    "ImageInput",
    "ValueInput",
    "VALUE_KINDS",
    "check_step",
    "check_pose",
    "check_static",
    "overlap_copy_works",
]

# Plan kinds for an image input.
NP_COPY = "np-copy"  # np.copyto of a contiguous (or any plain) RGB array
NP_WORDS = "np-words"  # 4-byte-word copy from RGBA memory (see the module doc)
NP_FLOAT = "np-float"  # host float conversion
CUDA = "cuda"  # uint8 CUDA tensor: batched async copy
CUDA_PIXELS = "cuda-pixels"  # uint8 CUDA frames, 4 bytes a pixel (RGBA or its [..., :3]): whole
CUDA_FLOAT = "cuda-float"  # float CUDA tensor: converted on the device, then copied


_TORCH_TYPES: dict[type, bool] = {}  # type -> it or a base class is torch's


def is_torch(x: Any) -> bool:
    """Whether ``x`` is a torch object (or of a subclass of one), without importing torch."""
    t = type(x)
    known = _TORCH_TYPES.get(t)
    if known is None:
        known = _TORCH_TYPES[t] = any(
            c.__module__ == "torch" or c.__module__.startswith("torch.") for c in t.__mro__
        )
    return known


def plain_tensor(name: str, x: Any, expected: str) -> Any:
    """``x`` as a dense torch.Tensor on the CPU or a CUDA device, without autograd.

    The slow path of torch input, run when an input's kind is first seen (and for subclasses
    and tensors that require grad, which are converted here each call: a view, no copy).

    Raises:
        TypeError: not a tensor, a sparse or other non-strided layout, or a subclass whose data
            lives in other tensors (a wrapper subclass).
        ValueError: a device other than the CPU or CUDA (meta, mps, ...).
    """
    torch = _torch()
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be {expected}, got {describe(x)}")
    if x.layout != torch.strided:
        raise TypeError(
            f"{name} is a {x.layout} tensor; envreel copies dense (strided) tensors: pass "
            f"{name}.to_dense()"
        )
    dev = x.device
    if dev.type not in ("cpu", "cuda"):
        what = " (a meta tensor has a shape but no values)" if dev.type == "meta" else ""
        raise ValueError(
            f"{name} is on the {dev} device{what}; envreel records tensors on the CPU or a "
            "CUDA device"
        )
    t = type(x)
    if t is not torch.Tensor:
        if t.__torch_dispatch__ is not torch.Tensor.__torch_dispatch__:
            raise TypeError(
                f"{name} is a {t.__name__}, a tensor subclass that keeps its values elsewhere; "
                "pass a plain torch.Tensor of its values"
            )
        x = x.as_subclass(torch.Tensor)  # e.g. nn.Parameter: the same memory, plain methods
    if x.requires_grad:
        x = x.detach()
    if x.is_neg() or x.is_conj():
        x = x.resolve_neg().resolve_conj()  # lazy views whose bytes are not their values
    return x


def describe(x: Any) -> str:
    """A short description of an input for error messages: type, shape, dtype, device."""
    if is_torch(x) and hasattr(x, "shape"):
        return f"torch tensor of shape {tuple(x.shape)}, {x.dtype} on {x.device}"
    if isinstance(x, np.ndarray):
        return f"numpy array of shape {x.shape}, {x.dtype}"
    return f"{type(x).__name__} {x!r}"[:200]


def refuse_masked(name: str, x: Any) -> None:
    """TypeError for a numpy masked array: its mask would be dropped in silence."""
    if isinstance(x, np.ma.MaskedArray):
        raise TypeError(
            f"{name} is a numpy masked array ({int(np.ma.count_masked(x))} masked of "
            f"{x.size}); envreel stores plain values and would drop the mask: pass "
            f"{name}.filled(value) to store a value where masked, or np.asarray({name}) to "
            "store the values under the mask"
        )


try:
    from numpy.lib.array_utils import byte_bounds as _byte_bounds
except ImportError:  # numpy < 2
    _byte_bounds = np.byte_bounds


def _numpy_root(x: np.ndarray) -> np.ndarray:
    while isinstance(x.base, np.ndarray):
        x = x.base
    return x


def _spill_readable(view: np.ndarray, owner_hi: int | None) -> bool:
    """Whether the byte after the last pixel of ``view`` lies inside memory we know is readable."""
    if owner_hi is None:
        return False
    hi = _byte_bounds(view)[1]
    return hi + 1 <= owner_hi


def _pixel_strides(shape: Any, strides: tuple[int, ...]) -> bool:
    """Whether (..., H, W, 3 or 4) uint8 strides are those of contiguous 4-byte pixels: an RGBA
    tensor, or its ``[..., :3]`` view (Isaac Lab's camera ``rgb``)."""
    return tuple(strides) == (*c_strides(tuple(shape)[:-1], 4), 1)


def _pixels_readable(x: Any) -> bool:
    """Whether all 4 bytes of every pixel of ``x`` (strides as ``_pixel_strides``) lie in its
    storage: the 4th byte of the last pixel of an RGB view need not."""
    st = x.untyped_storage()
    pixels = x.numel() // x.shape[-1]
    return x.data_ptr() + 4 * pixels <= st.data_ptr() + st.nbytes()


def _torch():
    import torch

    return torch


class CudaDevice:
    """The CUDA device of a recorder's inputs, fixed by the first CUDA input it is given: the
    copies are ordered on that device's stream, so a tensor on another device could be read
    before the work that writes it is done. Shared by every input's checks."""

    def __init__(self) -> None:
        self.device: Any = None

    def check(self, name: str, device: Any) -> None:
        """ValueError when ``device`` (a CUDA device) is not the recorder's."""
        if self.device is None:
            self.device = device
        elif device != self.device:
            raise ValueError(
                f"{name} is on {device}, but this recorder's CUDA inputs are on {self.device} "
                "(the first CUDA input it was given); one recorder records one device: move "
                f"{name} there, or use a recorder per device"
            )


class ImageInput:
    """Checks one image input (env or global frames) and copies it into slots.

    Args:
        name: argument name for messages ("env_rgb" or "global_rgb").
        lead: leading dims before (H, W, C): (num_envs,) for env frames, () for global.
        shape: (height, width) expected, or None to fix it at the first input.
        value_range: (lo, hi) of float input, or None (float input is then an error).
        cuda: the recorder's CUDA device record. Defaults to None (one of its own).
    """

    def __init__(
        self,
        name: str,
        *,
        lead: tuple[int, ...],
        shape: tuple[int, int] | None,
        value_range: tuple[float, float] | None,
        cuda: CudaDevice | None = None,
    ) -> None:
        self.name = name
        self.lead = lead
        self.shape = shape
        self.value_range = value_range
        self._key: tuple | None = None
        self._kind: str | None = None
        # The last host array and its payload: training loops pass the same buffer every step,
        # and working out its copy plan (memory bounds, the word view) costs ~0.1 ms.
        self._last: tuple[Any, tuple, tuple[str, Any]] | None = None
        self._scratch: np.ndarray | None = None  # float32 (lead..., H, W, 3), host floats
        self.cuda = CudaDevice() if cuda is None else cuda
        self._last_cuda: Any = None  # the last CUDA_PIXELS tensor whose storage was checked
        # The type, (shape, dtype, device, strides) and plan kind of the last CUDA input that
        # passed: a caller that hands the same kind of tensor every step skips the rest.
        self._cuda_type: type | None = None
        self._cuda_key: tuple | None = None
        self._cuda_strides: tuple | None = None
        self._cuda_kind = CUDA

    def forget_cuda(self) -> None:
        """Forget the CUDA inputs that passed: the next one is checked in full."""
        self._key = self._kind = self._last_cuda = self._cuda_type = self._cuda_key = None

    @property
    def expected(self) -> str:
        n = ", ".join(str(d) for d in self.lead)
        hw = "height, width" if self.shape is None else f"{self.shape[0]}, {self.shape[1]}"
        return f"({n + ', ' if n else ''}{hw}, 3 or 4)"

    def check(self, x: Any) -> tuple[str, Any]:
        """Validate ``x``; return (plan kind, payload) for ``copy_host`` / the CUDA path.

        Raises:
            TypeError: not an array, or a dtype other than uint8 / float with value_range.
            ValueError: wrong rank, env count, channel count or layout, a shape that differs
                from the first input's, or float values outside value_range (host input).
        """
        if not self.lead and getattr(x, "ndim", 0) == 4 and x.shape[0] == 1:
            x = x[0]  # a single camera's (1, H, W, C) output, as Isaac Lab gives it
        ck = self._cuda_key
        if (
            type(x) is self._cuda_type
            and (x.shape, x.dtype, x.device, x.layout) == ck
            and x.stride() == self._cuda_strides  # after the layout: a sparse tensor has none
        ):
            kind = self._cuda_kind
            if kind != CUDA_PIXELS or x is self._last_cuda:
                return kind, x
        if isinstance(x, np.ndarray):
            key = (type(x), x.shape, x.dtype, x.strides)
            last = self._last
            # Same object, same layout (a shape or dtype can be reassigned in place): same plan.
            if last is not None and last[0] is x and last[1] == key:
                return last[2]
            if key == self._key:
                kind = self._kind
            else:
                refuse_masked(self.name, x)  # its type is in the key: checked once per kind
                kind = self._classify(x.shape, x.dtype, None)
                if kind == NP_COPY and x.shape[-1] == 3 and x.strides[-2:] != (3, 1):
                    kind = NP_WORDS if self._wordable(x) else NP_COPY
                elif kind == NP_COPY and x.shape[-1] == 4:
                    kind = NP_WORDS
                self._key, self._kind = key, kind
            out = self._host_payload(kind, x, None)
            # Float input is range-checked on every call, so its payload is never reused.
            self._last = (x, key, out) if out[0] != NP_FLOAT else None
            return out
        if is_torch(x):
            torch = _torch()
            if type(x) is not torch.Tensor or x.requires_grad:
                x = plain_tensor(self.name, x, f"a numpy array or torch tensor {self.expected}")
            dev = x.device
            key = (torch.Tensor, x.shape, x.dtype, dev, x.stride(), x.layout)
            if key == self._key:
                kind = self._kind
            else:
                x = plain_tensor(self.name, x, f"a numpy array or torch tensor {self.expected}")
                kind = self._classify(tuple(x.shape), x.dtype, dev)
                if dev.type == "cuda":
                    self.cuda.check(self.name, dev)
                if kind == CUDA and _pixel_strides(x.shape, x.stride()):
                    kind = CUDA_PIXELS
                self._key, self._kind = key, kind
            if dev.type == "cuda":
                if kind == CUDA_PIXELS and x is not self._last_cuda:
                    if not _pixels_readable(x):
                        return CUDA, x  # the last pixel's 4th byte lies outside the storage
                    self._last_cuda = x
                # as the fast path at the top compares it (the layout is strided by now)
                self._cuda_key = (x.shape, x.dtype, dev, x.layout)
                self._cuda_strides = x.stride()
                self._cuda_type, self._cuda_kind = type(x), kind
                return kind, x
            if x.dtype == torch.bfloat16:
                x = x.float()
            arr = x.numpy()
            if kind == NP_COPY and arr.shape[-1] == 3 and arr.strides[-2:] != (3, 1):
                kind = NP_WORDS if self._wordable(arr, tensor=x) else NP_COPY
            elif kind == NP_COPY and arr.shape[-1] == 4:
                kind = NP_WORDS
            return self._host_payload(kind, arr, x)
        raise TypeError(
            f"{self.name} must be a numpy array or torch tensor of shape {self.expected}, "
            f"got {describe(x)}"
        )

    def _classify(self, shape: tuple, dtype: Any, device: Any) -> str:
        name, lead = self.name, self.lead
        want_ndim = len(lead) + 3
        if len(shape) != want_ndim:
            hint = ""
            if len(shape) == want_ndim - 1 and not lead:
                hint = " (a single image; add the channel axis)"
            raise ValueError(
                f"{name} must have {want_ndim} dims {self.expected}, got shape {tuple(shape)}{hint}"
            )
        if tuple(shape[: len(lead)]) != lead:
            raise ValueError(
                f"{name} must have {lead[0]} envs on its first axis (num_envs), got shape "
                f"{tuple(shape)}"
            )
        h, w, c = shape[len(lead) :]
        if c not in (3, 4):
            if h in (3, 4) and c not in (3, 4):
                raise ValueError(
                    f"{name} looks channels-first {tuple(shape)}; envreel wants channels-last "
                    f"{self.expected}: permute it (e.g. x.permute(0, 2, 3, 1))"
                )
            raise ValueError(
                f"{name} must have 3 (RGB) or 4 (RGBA) channels on its last axis, got shape "
                f"{tuple(shape)}"
            )
        if self.shape is not None and (h, w) != self.shape:
            raise ValueError(
                f"{name} frames are {h}×{w} (height×width), but this run's frames are "
                f"{self.shape[0]}×{self.shape[1]}: the shape is fixed by the first capture (or "
                "the constructor) and cannot change mid-run"
            )
        is_cuda = device is not None and device.type == "cuda"
        if device is not None:
            torch = _torch()
            floating = dtype.is_floating_point
            ok = dtype == torch.uint8
        else:
            floating = np.issubdtype(dtype, np.floating)
            ok = dtype == np.uint8
        if ok:
            return CUDA if is_cuda else NP_COPY
        if floating:
            if self.value_range is None:
                raise TypeError(
                    f"{name} is {dtype}; float frames need value_range=(lo, hi) on the Recorder "
                    "(e.g. (0.0, 1.0)), which maps lo to 0 and hi to 255; or pass uint8"
                )
            return CUDA_FLOAT if is_cuda else NP_FLOAT
        raise TypeError(
            f"{name} must be uint8 (or float with value_range), got {dtype}: "
            f"{describe_dtype(dtype)}"
        )

    def _wordable(self, arr: np.ndarray, tensor: Any = None) -> bool:
        """An RGB view whose pixels are >= 4 bytes apart, channels 1 byte apart, spill readable."""
        if arr.strides[-1] != 1 or arr.strides[-2] < 4 or not overlap_copy_works():
            return False
        if tensor is not None:
            st = tensor.untyped_storage()
            owner_hi = st.data_ptr() + st.nbytes()
        else:
            owner_hi = _byte_bounds(_numpy_root(arr))[1]
        return _spill_readable(arr, owner_hi)

    def _host_payload(self, kind: str, arr: np.ndarray, tensor: Any) -> tuple[str, Any]:
        if kind == NP_WORDS:
            if arr.shape[-1] == 4:
                if arr.strides[-1] != 1 or not overlap_copy_works():
                    return NP_COPY, arr[..., :3]
                return NP_WORDS, words_of(arr[..., :3])
            if not self._wordable(arr, tensor):
                return NP_COPY, arr
            return NP_WORDS, words_of(arr)
        if kind == NP_FLOAT:
            return NP_FLOAT, self._check_float(arr[..., :3])
        if kind == NP_COPY and arr.shape[-1] == 4:
            return NP_COPY, arr[..., :3]
        return kind, arr

    def _check_float(self, x3: np.ndarray) -> np.ndarray:
        lo, hi = self.value_range
        mn, mx = x3.min(), x3.max()
        # NaN fails both comparisons; +-inf fails one: two reductions catch all three.
        if not (lo <= mn and mx <= hi):
            # shortest exact digits of the input's dtype: 1.0000001 is not rounded back to 1
            bad = "NaN" if np.isnan(mn) or np.isnan(mx) else f"[{_num(mn)}, {_num(mx)}]"
            raise ValueError(
                f"{self.name} has values {bad} outside value_range=({_num(lo)}, {_num(hi)}); "
                "clip or rescale them, or widen value_range"
            )
        return x3

    def copy_host(self, kind: str, payload: Any, dst: np.ndarray, dst_words: np.ndarray) -> None:
        """Copy a checked host input into a slot: ``dst`` (…, H, W, 3) uint8 and its word view."""
        if kind == NP_COPY:
            np.copyto(dst, payload)
        elif kind == NP_WORDS:
            np.copyto(dst_words, payload)
        else:  # NP_FLOAT
            lo, hi = self.value_range
            if self._scratch is None or self._scratch.shape != dst.shape:
                self._scratch = np.empty(dst.shape, np.float32)
            tmp = self._scratch
            np.subtract(payload, lo, out=tmp, casting="same_kind")
            np.multiply(tmp, 255.0 / (hi - lo), out=tmp)
            np.rint(tmp, out=tmp)
            np.copyto(dst, tmp, casting="unsafe")

    def to_device_uint8(self, kind: str, x: Any) -> tuple[Any, Any]:
        """CUDA input -> (uint8 RGB tensor to copy, (2,) float32 [min, max] or None).

        Float input is converted on the producer's stream (a few elementwise kernels); its range
        is reduced there too and checked by the writer thread, since reading it here would
        synchronise the device.
        """
        x3 = x if x.shape[-1] == 3 else x[..., :3]
        if kind in (CUDA, CUDA_PIXELS):
            return x3, None  # uint8: never requires grad
        if x3.requires_grad:  # the fast path hands the caller's tensor over as it is
            x3 = x3.detach()  # no autograd graph for the conversion, nor kept by the ring
        torch = _torch()
        lo, hi = self.value_range
        xf = x3.float()
        mm = torch.stack(torch.aminmax(xf))
        y = torch.nan_to_num(xf, nan=lo).sub_(lo).mul_(255.0 / (hi - lo)).round_().clamp_(0, 255)
        return y.to(torch.uint8), mm


def describe_dtype(dtype: Any) -> str:
    s = str(dtype)
    if "int" in s:
        return "integer frames are ambiguous (0..255? 0..65535?); convert to uint8"
    if "bool" in s:
        return "a mask is not an image"
    return "not an image type"


_INT32_MAX = 2**31 - 1
VALUE_KINDS = {  # ValueInput kind -> (accepted numpy dtype kinds, what they are, in words)
    "float": ("bfiu", "a real number"),
    "bool": ("biu", "bool (or integer: nonzero is done)"),
    "int": ("iu", "an integer"),
}


class ValueInput:
    """Checks a per-env value of shape (num_envs,): reward, done flags, episode step, scalars.

    Args:
        name: argument name for messages.
        kind: "float", "bool" or "int": which dtypes are accepted.
        num_envs: N.
        cuda: the recorder's CUDA device record. Defaults to None (one of its own).
    """

    def __init__(
        self, name: str, *, kind: str, num_envs: int, cuda: CudaDevice | None = None
    ) -> None:
        self.name = name
        self.cuda = CudaDevice() if cuda is None else cuda
        self.num_envs = num_envs
        self._kinds, self._what = VALUE_KINDS[kind]
        self._int32 = kind == "int"  # stored as int32: bigger values would wrap silently
        self._key: tuple | None = None
        self._cuda_type: type | None = None  # type and (shape, dtype, device) of the last
        self._cuda_key: tuple | None = None  # CUDA input that passed

    def check(self, x: Any) -> tuple[bool, Any]:
        """Validate; return (is_cuda, numpy array or CUDA tensor)."""
        if type(x) is self._cuda_type and (x.shape, x.dtype, x.device, x.layout) == self._cuda_key:
            return True, x  # the same kind of CUDA tensor as last time: nothing new to check
        n = self.num_envs
        if is_torch(x):
            torch = _torch()
            if type(x) is not torch.Tensor or x.requires_grad:
                x = plain_tensor(self.name, x, f"an array of shape ({n},)")
            dev = x.device
            key = (x.shape, x.dtype, dev, x.layout)
            if key != self._key:
                x = plain_tensor(self.name, x, f"an array of shape ({n},)")
                if tuple(x.shape) != (n,):
                    raise self._shape_error(tuple(x.shape))
                if x.dtype.is_complex or (x.dtype.is_floating_point and "f" not in self._kinds):
                    raise TypeError(f"{self.name} must be {self._what}, got {x.dtype}")
                if dev.type == "cuda":
                    self.cuda.check(self.name, dev)
                self._key = key
            if dev.type == "cuda":
                # as the fast path at the top compares it (the layout is strided by now)
                self._cuda_type, self._cuda_key = torch.Tensor, (x.shape, x.dtype, dev, x.layout)
                return True, x
            if x.dtype == torch.bfloat16:
                x = x.float()
            return False, self._in_range(x.numpy())
        arr = x if isinstance(x, np.ndarray) else np.asarray(x)
        key = (type(arr), arr.shape, arr.dtype)
        if key != self._key:
            refuse_masked(self.name, arr)
            if arr.ndim == 0 and arr.dtype.kind in "OUSV":  # not numbers: a str, dict, generator
                raise TypeError(
                    f"{self.name} must be an array of shape ({n},) (one value per env), got "
                    f"{describe(x)}"
                )
            if arr.shape != (n,):
                raise self._shape_error(arr.shape)
            if arr.dtype.kind not in self._kinds:
                what = arr.dtype
                if arr.dtype.kind == "O":  # numpy found no numeric dtype for the values
                    what = f"object values {_first_odd(arr)!r} (no numeric dtype holds them)"
                raise TypeError(f"{self.name} must be {self._what}, got {what}")
            self._key = key
        return False, self._in_range(arr)

    def forget_cuda(self) -> None:
        """Forget the CUDA inputs that passed: the next one is checked in full."""
        self._key = self._cuda_type = self._cuda_key = None

    def _shape_error(self, shape: tuple[int, ...]) -> ValueError:
        n = self.num_envs
        hint = ""
        if shape == ():
            hint = ": a single value; pass one per env"
        elif int(np.prod(shape)) == n:
            hint = f": {n} values, but pass them flat, e.g. {self.name}.reshape(-1)"
        return ValueError(
            f"{self.name} must have shape ({n},) (one value per env), got {shape}{hint}"
        )

    def _in_range(self, arr: np.ndarray) -> np.ndarray:
        if self._int32 and arr.size:
            lo, hi = int(arr.min()), int(arr.max())  # N values: microseconds
            if lo < 0 or hi > _INT32_MAX:
                raise ValueError(
                    f"{self.name} must be in [0, {_INT32_MAX}] (stored as int32), got values "
                    f"in [{lo}, {hi}]"
                )
        return arr


def _first_odd(arr: np.ndarray) -> Any:
    """The first value of an object array that is not a plain bool, int or float (else its
    first value): an int beyond 64 bits, None, a string."""
    for v in arr.flat:
        if not isinstance(v, bool | int | float) or (
            isinstance(v, int) and not -(2**63) <= v < 2**64
        ):
            return v
    return arr.flat[0] if arr.size else None


def check_step(step: Any, last: int | None) -> int:
    """A step number: a non-negative int greater than the last one."""
    if step is None:
        return 0 if last is None else last + 1
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        if _integer_0d(step):
            step = int(step)  # a 0-d tensor on CUDA synchronises here: pass an int
        else:
            raise TypeError(f"step must be an int, got {step!r} ({type(step).__name__})")
    step = int(step)
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if step >= 2**63:
        # Checked here: the int64 store would raise OverflowError after the recorder's state
        # had already advanced to this step.
        raise ValueError(f"step must be below 2**63 (stored as int64), got {step}")
    if last is not None and step <= last:
        raise ValueError(f"step must increase from call to call: got {step} after {last}")
    return step


def _integer_0d(x: Any) -> bool:
    """A 0-d integer numpy array or torch tensor (not bool)."""
    if isinstance(x, np.ndarray):
        return x.ndim == 0 and x.dtype.kind in "iu"
    return (
        is_torch(x)
        and getattr(x, "ndim", None) == 0
        and not (x.is_floating_point() or x.is_complex() or x.dtype == _torch().bool)
    )


def check_sim_time(sim_time: Any) -> float:
    """Simulated seconds: a finite real number (a Python or numpy scalar, or a 0-d array or
    tensor; a CUDA one synchronises here: pass a float)."""
    value = sim_time
    if not isinstance(value, bool) and getattr(value, "ndim", None) == 0:
        if isinstance(value, np.ndarray) and value.dtype.kind in "iuf":
            value = value.item()
        elif is_torch(value) and not (value.is_complex() or value.dtype == _torch().bool):
            value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"sim_time must be a number of seconds (an int or float), got {sim_time!r} "
            f"({type(sim_time).__name__})"
        )
    try:
        value = float(value)
    except OverflowError:  # an int beyond float64
        value = math.inf
    if not math.isfinite(value):
        raise ValueError(f"sim_time must be a finite number of seconds, got {sim_time!r:.60}")
    return value


def check_pose(
    name: str, x: Any, shape: tuple[int, ...], cuda: CudaDevice | None = None
) -> tuple[bool, Any]:
    """A per-frame camera pose (camera-to-world 4×4 matrices) of ``shape``; not checked for NaN.
    ``cuda``: the recorder's CUDA device record, which a CUDA pose must match."""
    if is_torch(x):
        x = plain_tensor(name, x, f"an array of shape {shape}")
        if tuple(x.shape) != shape:
            raise ValueError(f"{name} must have shape {shape}, got {describe(x)}")
        if not x.dtype.is_floating_point:
            raise TypeError(f"{name} must be floating point, got {x.dtype}")
        if x.device.type == "cuda":
            if cuda is not None:
                cuda.check(name, x.device)
            return True, x
        return False, x.double().numpy()
    refuse_masked(name, x)
    arr = np.asarray(x)
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be floating point, got {arr.dtype}")
    return False, arr


def check_static(name: str, x: Any, shapes: tuple[tuple[int, ...], ...]) -> np.ndarray | None:
    """A static array given to the constructor (origins, poses, intrinsics): float64, finite.

    Torch tensors are copied to the host here (once, at construction).
    """
    if x is None:
        return None
    if hasattr(x, "torch") and is_torch(getattr(x, "torch", None)):  # Isaac Lab ProxyArray
        x = x.torch
    if is_torch(x):
        x = plain_tensor(name, x, f"a numeric array of shape {shapes[0]}").cpu().double().numpy()
    refuse_masked(name, x)
    try:
        arr = np.array(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be a numeric array of shape {shapes[0]}, got {describe(x)}"
        ) from None
    if arr.shape not in shapes:
        want = " or ".join(str(s) for s in shapes)
        raise ValueError(f"{name} must have shape {want}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got NaN or inf")
    return arr


def _num(x: Any) -> str:
    """A float in the fewest digits that read back as it (in its own dtype): 0, 1.5, 1.0000001."""
    return np.format_float_positional(x, trim="-")
