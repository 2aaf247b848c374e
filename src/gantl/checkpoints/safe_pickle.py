"""Read foreign ``.pkl`` / ``.pt`` / ``.pth`` files without ever running code from them.

A pickle is a small program: its ``GLOBAL`` opcodes name any importable callable and ``REDUCE``
calls it, which is how a checkpoint can run ``os.system``. This module's unpickler resolves
globals against a short allow-list and refuses everything else *before* anything is called, with
a one-line :class:`~gantl.errors.UnsafePickleError` naming the global it asked for.

What it rebuilds:

* tensors, parameters and their storages (``torch._utils._rebuild_tensor_v2`` & co., re-implemented
  here rather than called, so torch internals never receive attacker-chosen arguments);
* plain containers (dict, list, tuple, set, ``OrderedDict``), numbers, strings, bytes, numpy
  arrays, dtypes and scalars (stylegan2-ada stores numpy scalars such as ``weight_gain``);
* NVIDIA's ``torch_utils.persistence`` objects: their pickles embed each network's *source code*
  and ``exec`` it when loaded. Here such an object becomes an inert :class:`PersistentRecord`
  (class name, a fingerprint of the source, and the pickled ``__dict__``); the source is never run
  and nothing from ``torch_utils``/``dnnlib`` is imported. ``dnnlib.util.EasyDict`` becomes a dict.

Containers it understands:

* raw pickles (NVIDIA network snapshots, ``pickle.dump`` output);
* torch's zip format (``torch.save`` since 1.6: ``<name>/data.pkl`` + ``<name>/data/<key>`` records);
* torch's legacy format (``torch.save(..., _use_new_zipfile_serialization=False)``), which is also
  what a storage inside a plain pickle is (``torch.storage._load_from_bytes``).
"""

from __future__ import annotations

import _compat_pickle
import collections
import hashlib
import io
import pickle
import reprlib
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from gantl.errors import CheckpointError, UnsafePickleError

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_POLICY = "gantl loads only tensors and plain data"


# --------------------------------------------------------------------------------------------- records


class EasyDictData(dict):
    """What ``dnnlib.util.EasyDict`` becomes: a plain dict (attribute state, if any, is kept apart)."""

    def __setstate__(self, state: Any) -> None:  # BUILD after NEWOBJ: EasyDict has no real attributes
        self.extra_state = state


@dataclass
class PersistentRecord:
    """An NVIDIA ``torch_utils.persistence`` object, kept as data instead of being rebuilt.

    ``state`` is the object's pickled ``__dict__`` (for an ``nn.Module``: ``_parameters``,
    ``_buffers``, ``_modules`` of nested records, ``_init_args``, ``_init_kwargs``...).
    ``source_sha256``/``source_lines`` describe the embedded module source, which is never run.
    """

    class_name: str
    state: dict[str, Any]
    kind: str = "class"
    version: int | None = None
    source_sha256: str | None = None
    source_lines: int = 0
    factory: str = "torch_utils.persistence._reconstruct_persistent_obj"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def init_args(self) -> tuple:
        return tuple(self.state.get("_init_args") or ())

    @property
    def init_kwargs(self) -> dict[str, Any]:
        return dict(self.state.get("_init_kwargs") or {})


def record_state(obj: Any) -> dict[str, Any] | None:
    """The pickled ``__dict__`` of a :class:`PersistentRecord`, or None for anything else."""
    return obj.state if isinstance(obj, PersistentRecord) else None


def record_class_name(obj: Any) -> str | None:
    """The original class name of a :class:`PersistentRecord` (e.g. ``"Generator"``), else None."""
    return obj.class_name if isinstance(obj, PersistentRecord) else None


def record_init(obj: Any) -> tuple[tuple, dict[str, Any]]:
    """``(init_args, init_kwargs)`` the recorded object was constructed with (empty when unknown)."""
    if not isinstance(obj, PersistentRecord):
        return (), {}
    return obj.init_args, obj.init_kwargs


def _reconstruct_persistent_obj(meta: Any) -> PersistentRecord:
    if not isinstance(meta, dict):
        raise CheckpointError("a persistent-object record has no metadata dict; the pickle is malformed")
    src = meta.get("module_src")
    src_text = src if isinstance(src, str) else None
    state = meta.get("state")
    return PersistentRecord(
        class_name=str(meta.get("class_name", "?")),
        state=dict(state) if isinstance(state, dict) else {"__state__": state},
        kind=str(meta.get("type", "?")),
        version=meta.get("version") if isinstance(meta.get("version"), int) else None,
        source_sha256=hashlib.sha256(src_text.encode()).hexdigest() if src_text is not None else None,
        source_lines=src_text.count("\n") + 1 if src_text else 0,
        extra={k: v for k, v in meta.items() if k not in ("module_src", "class_name", "state", "type", "version")},
    )


# --------------------------------------------------------------------------------------------- tensors

_STORAGE_DTYPES: dict[str, torch.dtype] = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "ByteStorage": torch.uint8, "CharStorage": torch.int8,
    "ShortStorage": torch.int16, "IntStorage": torch.int32, "LongStorage": torch.int64,
    "BoolStorage": torch.bool, "ComplexFloatStorage": torch.complex64, "ComplexDoubleStorage": torch.complex128,
    "UntypedStorage": torch.uint8,
}
_DTYPE_NAMES = {str(d).removeprefix("torch."): d for d in set(_STORAGE_DTYPES.values())} | {
    name: getattr(torch, name)
    for name in ("float8_e4m3fn", "float8_e5m2", "uint16", "uint32", "uint64", "cfloat", "cdouble", "half",
                 "float", "double", "long", "int", "short", "bfloat16")
    if isinstance(getattr(torch, name, None), torch.dtype)
}


@dataclass(frozen=True)
class _StorageType:
    """Stands in for ``torch.FloatStorage`` & co.: only ever read for its dtype, never called."""

    name: str
    dtype: torch.dtype


def _typed_storage(untyped: torch.UntypedStorage, dtype: torch.dtype) -> torch.storage.TypedStorage:
    return torch.storage.TypedStorage(wrap_storage=untyped, dtype=dtype, _internal=True)


def _as_typed(storage: Any) -> torch.storage.TypedStorage:
    if isinstance(storage, torch.storage.TypedStorage):
        return storage
    if isinstance(storage, torch.UntypedStorage):
        return _typed_storage(storage, torch.uint8)
    raise CheckpointError(f"a tensor was built from a {type(storage).__name__}, not a storage; the file is malformed")


def _tensor_on(storage: Any, offset: int, size: Any, stride: Any, dtype: torch.dtype | None = None) -> torch.Tensor:
    typed = _as_typed(storage)
    dtype = dtype or typed.dtype
    if not (isinstance(offset, int) and all(isinstance(x, int) for x in (*size, *stride))):
        raise CheckpointError("a tensor record has non-integer sizes; the file is malformed")
    untyped = typed._untyped_storage
    if size and all(s > 0 for s in size):
        last = offset + sum((s - 1) * st for s, st in zip(size, stride, strict=True))
        if offset < 0 or any(st < 0 for st in stride) or (last + 1) * dtype.itemsize > untyped.nbytes():
            raise CheckpointError("a tensor record points outside its storage; the file is corrupt")
    return torch.empty((0,), dtype=dtype).set_(untyped, offset, tuple(size), tuple(stride))


def _rebuild_tensor(storage: Any, offset: int, size: Any, stride: Any) -> torch.Tensor:
    return _tensor_on(storage, offset, size, stride)


def _rebuild_tensor_v2(storage: Any, offset: int, size: Any, stride: Any, requires_grad: bool = False,
                       backward_hooks: Any = None, metadata: Any = None) -> torch.Tensor:
    return _tensor_on(storage, offset, size, stride)  # requires_grad/hooks/metadata: runtime state, dropped


def _rebuild_tensor_v3(storage: Any, offset: int, size: Any, stride: Any, requires_grad: bool = False,
                       backward_hooks: Any = None, dtype: torch.dtype | None = None,
                       metadata: Any = None) -> torch.Tensor:
    return _tensor_on(storage, offset, size, stride, dtype)


def _rebuild_parameter(data: Any, requires_grad: bool = True, backward_hooks: Any = None,
                       state: Any = None) -> torch.nn.Parameter:
    if not isinstance(data, torch.Tensor):
        raise CheckpointError("a parameter record holds no tensor; the file is malformed")
    return torch.nn.Parameter(data, requires_grad=bool(requires_grad) and data.is_floating_point())


@dataclass(frozen=True)
class _TypeMarker:
    """Stands in for ``torch.Tensor``/``nn.Parameter`` as a type tag; not callable, so never constructs."""

    name: str


_TENSOR_TYPE, _PARAMETER_TYPE = _TypeMarker("Tensor"), _TypeMarker("Parameter")


def _rebuild_from_type_v2(func: Any, new_type: Any, args: Any, state: Any) -> Any:
    if func not in _TENSOR_BUILDERS or new_type not in (_TENSOR_TYPE, _PARAMETER_TYPE):
        raise UnsafePickleError(f"a tensor record asks to be built by {_short_repr(func)} as "
                                f"{_short_repr(new_type)}; {_POLICY}")
    out = func(*args)
    if new_type is _PARAMETER_TYPE and not isinstance(out, torch.nn.Parameter):
        out = _rebuild_parameter(out, False)
    return out


def _codecs_encode(text: Any, encoding: str = "utf-8") -> bytes:
    """Protocol-2 pickles write ``bytes`` as ``_codecs.encode(str, 'latin1')``: allow only that."""
    if not isinstance(text, str) or encoding.lower().replace("-", "") not in ("latin1", "iso88591"):
        raise UnsafePickleError(f"_codecs.encode with encoding {_short_repr(encoding)} is not plain bytes data; "
                                f"{_POLICY}")
    return text.encode("latin1")


_TENSOR_BUILDERS: frozenset[Callable] = frozenset(
    {_rebuild_tensor, _rebuild_tensor_v2, _rebuild_tensor_v3, _rebuild_parameter}
)


def _numpy_multiarray() -> Any:
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray
    return multiarray


def _numpy_frombuffer(buf: Any, dtype: Any, shape: Any, order: str) -> np.ndarray:
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise UnsafePickleError(f"a numpy buffer with dtype {_short_repr(dtype)} is not plain data; {_POLICY}")
    return np.frombuffer(buf, dtype=dtype).reshape(shape, order=order).copy()


#: Bounds on what a pickle may ask a constructor to allocate. A checkpoint's containers are built by
#: opcodes from data in the file; only a hostile file calls ``bytearray(2**40)`` or
#: ``list(range(10**12))``, which would exhaust memory before any error could be raised.
MAX_CONSTRUCTED_ITEMS = 1 << 24
MAX_SPLIT_ITEMS = 1 << 12  # list(tensor) makes one Python object per row
MAX_NUMPY_SHELL = 1 << 16  # numpy's own pickles rebuild arrays from an empty (0,) shell


class _Bounded:
    """A builtin constructor (``list``, ``bytes``...) that refuses sizes no checkpoint needs."""

    def __init__(self, cls: type) -> None:
        self.cls = cls

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if args:
            first = args[0]
            if isinstance(first, int) and not isinstance(first, bool) and self.cls in (bytes, bytearray) \
                    and not 0 <= first <= MAX_CONSTRUCTED_ITEMS:
                raise CheckpointError(f"refusing to load: the pickle asks for {self.cls.__name__}({first}), more "
                                      f"memory than any checkpoint needs; the file is hostile or corrupt")
            if self.cls is str and not isinstance(first, (str, bytes, bytearray, int, float)):
                # str() of a structure that shares itself through the memo is exponentially long
                raise CheckpointError(f"refusing to load: the pickle asks for str() of a {type(first).__name__}; "
                                      "the file is hostile or corrupt")
            if isinstance(first, (torch.Tensor, np.ndarray)) and first.ndim and len(first) > MAX_SPLIT_ITEMS:
                raise CheckpointError(f"refusing to load: the pickle asks to split a {len(first):,}-row array into "
                                      f"a {self.cls.__name__}; the file is hostile or corrupt")
            if not isinstance(first, (bytes, bytearray, str, memoryview)):
                try:
                    n = len(first)
                except (TypeError, OverflowError):
                    n = None if not isinstance(first, range) else MAX_CONSTRUCTED_ITEMS + 1
                if n is not None and n > MAX_CONSTRUCTED_ITEMS:
                    raise CheckpointError(f"refusing to load: the pickle asks for a {self.cls.__name__} of {n:,} "
                                          f"items, more than any checkpoint holds; the file is hostile or corrupt")
        return self.cls(*args, **kwargs)

    def __repr__(self) -> str:
        return f"bounded {self.cls.__name__}"


_PLAIN_KINDS = frozenset("biufcSUV")  # numbers, bools, byte/unicode strings, raw bytes: no objects, no dates


def _numpy_dtype(obj: Any, align: Any = False, copy: Any = False) -> np.dtype:
    """``np.dtype`` as numpy's pickles call it, always returning a *copy* of a plain dtype: with
    ``copy=False`` numpy hands out its shared builtin dtype, which a following ``BUILD`` would rewrite
    for the whole process, and object/structured dtypes are not checkpoint data."""
    if not isinstance(align, (bool, np.bool_)) or not isinstance(obj, str) or len(obj) > 16:
        raise CheckpointError(f"a numpy dtype record ({_short_repr(obj)}, align={_short_repr(align)}) is malformed; "
                              "the file is corrupt")
    try:
        dtype = np.dtype(obj, align=bool(align), copy=True)
    except Exception as exc:  # noqa: BLE001 - numpy parses dtype strings with ast: SyntaxError, TypeError...
        raise CheckpointError(f"a numpy dtype record ({_short_repr(obj)}) is not a dtype ({_one_line(exc)}); "
                              "the file is corrupt") from None
    if dtype.kind not in _PLAIN_KINDS or dtype.hasobject or dtype.names is not None or dtype.subdtype is not None:
        raise UnsafePickleError(f"a numpy dtype {_short_repr(obj)} is not plain numbers or bytes; {_POLICY}")
    return dtype


def _check_dtype_state(state: Any, what: str) -> None:
    """numpy writes ``(3, byteorder, None, None, None, elsize, alignment, flags)`` for a plain dtype."""
    if not (isinstance(state, tuple) and len(state) == 8 and state[0] == 3 and state[1] in ("<", "|", "=")
            and state[2] is None and state[3] is None and state[4] is None
            and all(type(v) is int for v in state[5:])):
        raise CheckpointError(f"{what}: a numpy dtype state {_short_repr(state)} is not a plain little-endian "
                              "dtype; the file is corrupt or was saved on a big-endian machine")


def _check_array_state(state: Any, what: str) -> None:
    """``(1, shape, dtype, is_fortran, raw bytes)`` whose bytes fill the shape exactly."""
    ok = isinstance(state, tuple) and len(state) == 5 and state[0] == 1 and isinstance(state[1], tuple) \
        and all(type(n) is int and n >= 0 for n in state[1]) and isinstance(state[2], np.dtype) \
        and state[2].kind in _PLAIN_KINDS and not state[2].hasobject and isinstance(state[3], (bool, np.bool_)) \
        and isinstance(state[4], (bytes, bytearray))
    if ok:
        count = 1
        for n in state[1]:
            count *= n
        ok = count * state[2].itemsize == len(state[4])
    if not ok:
        raise CheckpointError(f"{what}: a numpy array record {_short_repr(state)} is malformed; the file is corrupt")


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlong = 3, 60, 60, 40


def _short_repr(value: Any, limit: int = 80) -> str:
    """A bounded repr of attacker-chosen data: ``repr`` of a list that holds itself twice per level
    (a few memo references) is exponentially long, so messages use :mod:`reprlib`'s limits."""
    try:
        text = " ".join(_REPR.repr(value).split())
    except Exception:  # noqa: BLE001 - a broken __repr__ must not replace the real error
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:limit] + "..."


def _numpy_reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    """numpy's pickle shell: ``_reconstruct(ndarray, (0,), b'b')``, then ``__setstate__`` fills it.

    The real function allocates ``shape`` up front, so ``(2**34,)`` would claim 16 GB before the
    state (checked against the data it carries) arrives; only small shells of plain ndarrays pass.
    """
    if subtype is not np.ndarray:
        raise UnsafePickleError(f"a numpy record asks to build {_short_repr(subtype)}, not a plain ndarray; {_POLICY}")
    try:
        count = int(np.prod([int(x) for x in shape], dtype=np.float64)) if isinstance(shape, tuple) else -1
    except (TypeError, ValueError, OverflowError):
        count = -1
    if not 0 <= count <= MAX_NUMPY_SHELL:
        raise CheckpointError(f"refusing to load: a numpy record asks for an empty array of shape "
                              f"{_short_repr(shape)}; numpy never writes that, the file is hostile or corrupt")
    return _numpy_multiarray()._reconstruct(subtype, shape, dtype)


def _allowed_globals() -> dict[tuple[str, str], Any]:
    """(module, name) -> the object a pickle may reference. Nothing here runs user-chosen code."""
    multiarray = _numpy_multiarray()
    allowed: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
        ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
        ("torch.nn.parameter", "Parameter"): _PARAMETER_TYPE,
        ("torch._tensor", "Tensor"): _TENSOR_TYPE,
        ("torch", "Tensor"): _TENSOR_TYPE,
        ("torch", "Size"): _Bounded(torch.Size),
        ("torch", "device"): torch.device,
        ("torch.storage", "_load_from_bytes"): lambda data: _load_torch_legacy(io.BytesIO(data), "storage bytes"),
        ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
        ("dnnlib.util", "EasyDict"): EasyDictData,
        ("dnnlib", "EasyDict"): EasyDictData,
        ("_codecs", "encode"): _codecs_encode,
        ("numpy", "dtype"): _numpy_dtype,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy.core.numeric", "_frombuffer"): _numpy_frombuffer,
        ("numpy._core.numeric", "_frombuffer"): _numpy_frombuffer,
    }
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(mod, "_reconstruct")] = _numpy_reconstruct
        allowed[(mod, "scalar")] = multiarray.scalar
    for t in (complex, slice, int, float, bool, range):
        allowed[("builtins", t.__name__)] = t
    for t in (set, frozenset, bytearray, list, dict, tuple, str, bytes):  # sized by their argument: bounded
        allowed[("builtins", t.__name__)] = _Bounded(t)
    for name, dtype in _STORAGE_DTYPES.items():
        allowed[("torch", name)] = _StorageType(name, dtype)
    allowed[("torch.storage", "UntypedStorage")] = _StorageType("UntypedStorage", torch.uint8)
    for name, dtype in _DTYPE_NAMES.items():
        allowed[("torch", name)] = dtype
    return allowed


_ALLOWED = _allowed_globals()
_ALLOWED_IDS = frozenset(id(v) for v in _ALLOWED.values())
_BUILDABLE = (np.ndarray, np.dtype, EasyDictData, collections.OrderedDict, PersistentRecord)


# --------------------------------------------------------------------------------------------- unpickler


class SafeUnpickler(pickle._Unpickler):  # type: ignore[name-defined,misc]
    """An unpickler that resolves only allow-listed globals; storages come from ``storage_loader``.

    It is the pure-Python unpickler on purpose: the C one keeps its memo in an array indexed by the
    ``PUT`` opcode's argument, so a 10-byte pickle with ``LONG_BINPUT 0xFFFFFFF0`` asks for 32 GB
    before any check can run (found by tests/test_fuzz.py). The pure-Python memo is a dict.
    """

    def __init__(self, file: BinaryIO, what: str,
                 storage_loader: Callable[[tuple], Any] | None = None) -> None:
        super().__init__(file, encoding="latin1")
        self.what = what
        try:  # how many bytes the input holds: no length field may claim more
            here = file.tell()
            self.input_size = file.seek(0, io.SEEK_END) - here
            file.seek(here)
        except (OSError, AttributeError, ValueError):
            self.input_size = 1 << 40
        self.storage_loader = storage_loader

    def load_build(self) -> None:
        """``BUILD`` (set an object's state) only on fresh arrays, dtypes and dicts this load made.

        The stock opcode writes into any object's ``__dict__``: a pickle could BUILD numpy's shared
        ``float32`` dtype (``np.dtype('f4', copy=False)`` is a singleton) or this module's allow-list
        entries, corrupting every later load in the process (found by tests/test_fuzz.py).
        """
        inst = self.stack[-2] if len(self.stack) > 1 else None  # the state is on top, the object under it
        if not isinstance(inst, _BUILDABLE) or id(inst) in _ALLOWED_IDS:
            raise UnsafePickleError(f"refusing to load {self.what}: it asks to set the state of a "
                                    f"{type(inst).__name__}, which checkpoints never do; {_POLICY}")
        state = self.stack[-1]
        if isinstance(inst, np.dtype):
            # numpy's own dtype.__setstate__ segfaults on malformed states (tests/test_fuzz.py). A plain
            # dtype is fully described by the string it was built from, so the state is only checked.
            _check_dtype_state(state, self.what)
            self.stack.pop()
            return
        if isinstance(inst, np.ndarray):
            _check_array_state(state, self.what)
        super().load_build()

    def load_bytearray8(self) -> None:
        """The stock opcode allocates the declared length before reading: 8 bytes claiming 1 GB made
        a 300-byte file take a gigabyte (tests/test_fuzz.py). Refuse lengths the input cannot hold."""
        (size,) = struct.unpack("<Q", self.read(8))
        if size > self.input_size:
            raise CheckpointError(f"{self.what} declares a {size:,}-byte array in a {self.input_size:,}-byte "
                                  "input; the file is corrupt or hostile")
        self.append(bytearray(self.read(size)))

    dispatch = dict(pickle._Unpickler.dispatch)  # type: ignore[attr-defined]
    dispatch[pickle.BUILD[0]] = load_build
    dispatch[pickle.BYTEARRAY8[0]] = load_bytearray8

    def find_class(self, module: str, name: str) -> Any:
        # Protocol 0-2 pickles use Python 2 names (__builtin__, copy_reg): translate as pickle does.
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(f"refusing to load {self.what}: it asks to run "
                                    f"{_short_repr(f'{module}.{name}')[1:-1]}; {_POLICY}") from None

    def persistent_load(self, pid: Any) -> Any:
        if self.storage_loader is None or not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            kind = pid[0] if isinstance(pid, tuple) and pid else type(pid).__name__
            raise UnsafePickleError(f"refusing to load {self.what}: it holds a persistent {_short_repr(kind)} "
                                    f"reference; {_POLICY}")
        return self.storage_loader(pid)


def _unpickle(file: BinaryIO, what: str, storage_loader: Callable[[tuple], Any] | None = None) -> Any:
    try:
        return SafeUnpickler(file, what, storage_loader).load()
    except CheckpointError:
        raise
    except (pickle.UnpicklingError, EOFError, TypeError, ValueError, AttributeError, IndexError, KeyError,
            struct.error, RuntimeError, MemoryError, OverflowError, UnicodeDecodeError, SystemError,
            RecursionError, LookupError) as exc:
        # SystemError: numpy's C code refusing a malformed dtype state (tests/test_fuzz.py)
        raise CheckpointError(f"{what} is not a readable pickle ({type(exc).__name__}: {_one_line(exc)}); "
                              "the file is corrupt or not a checkpoint") from None


def _one_line(exc: BaseException, limit: int = 160) -> str:
    """An exception's text on one line, cut at a word: messages can embed a tensor's multi-line repr."""
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " ..."


def _storage_type(pid: tuple, what: str) -> _StorageType:
    if len(pid) < 5 or not isinstance(pid[1], _StorageType):
        raise CheckpointError(f"{what}: a storage reference is malformed ({_short_repr(pid[:2])})")
    return pid[1]


def _load_torch_zip(path_or_file: str | Path | BinaryIO, what: str) -> Any:
    """``torch.save`` zip format: unpickle ``*/data.pkl`` and read storages from ``*/data/<key>``."""
    try:
        return _read_torch_zip(path_or_file, what)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, struct.error, zlib.error,
            NotImplementedError, RuntimeError, IndexError, KeyError, ArithmeticError) as exc:
        # zipfile reports malformed directories as ValueError ("negative seek value"), UnicodeDecodeError
        # (a member name), struct.error, NotImplementedError (a compression method)... (tests/test_fuzz.py)
        first = (str(exc).splitlines() or [""])[0][:200]
        raise CheckpointError(f"{what} is a damaged torch zip file ({type(exc).__name__}: {first}); "
                              "it is corrupt or truncated") from None


def _read_torch_zip(path_or_file: str | Path | BinaryIO, what: str) -> Any:
    with zipfile.ZipFile(path_or_file) as zf:
        names = zf.namelist()
        pkl = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pkl) != 1:
            raise CheckpointError(f"{what} is a zip but not a torch checkpoint (no single data.pkl inside)")
        root = pkl[0][: -len("data.pkl")]
        order = root + "byteorder"
        if order in names and zf.read(order).strip() not in (b"little", b""):
            raise CheckpointError(f"{what} was saved on a big-endian machine; re-save it on a little-endian one")
        cache: dict[str, torch.storage.TypedStorage] = {}

        def load_storage(pid: tuple) -> torch.storage.TypedStorage:
            stype = _storage_type(pid, what)
            key = str(pid[2])
            if key not in cache:
                member = f"{root}data/{key}"
                try:
                    info = zf.getinfo(member)
                except KeyError:
                    raise CheckpointError(
                        f"{what} is missing the tensor record {member}; the file is truncated") from None
                numel = pid[4] if len(pid) > 4 and isinstance(pid[4], int) else None
                if numel is not None and info.file_size != numel * stype.dtype.itemsize:
                    raise CheckpointError(f"{what}: tensor record {member} holds {info.file_size} bytes but its "
                                          f"storage needs {numel * stype.dtype.itemsize}; the file is corrupt")
                _check_inflation(info, what)
                raw = zf.read(member)
                # a copy owned by torch: a view into a temporary bytearray outlived its buffer
                untyped = torch.UntypedStorage.from_buffer(raw, dtype=torch.uint8) if raw else torch.UntypedStorage(0)
                cache[key] = _typed_storage(untyped, stype.dtype)
            return cache[key]

        _check_inflation(zf.getinfo(pkl[0]), what)
        with zf.open(pkl[0]) as f:
            return _unpickle(io.BytesIO(f.read()), what, load_storage)


#: ``torch.save`` stores zip members uncompressed; a deflated member that inflates more than this
#: many times over (beyond 1 MB) is a zip bomb, refused before a byte is inflated.
MAX_INFLATION = 64


def _check_inflation(info: zipfile.ZipInfo, what: str) -> None:
    if info.compress_type != zipfile.ZIP_STORED and \
            info.file_size > MAX_INFLATION * max(info.compress_size, 1) + (1 << 20):
        raise CheckpointError(f"{what}: {info.filename} would inflate {info.compress_size:,} bytes to "
                              f"{info.file_size:,} (a zip bomb?); refusing to read it")


def _load_torch_legacy(f: BinaryIO, what: str) -> Any:
    """Legacy ``torch.save`` stream: magic, protocol, sys info, object, storage keys, raw storages."""
    magic = _unpickle(f, what)
    if not _is_legacy_magic(magic):
        raise CheckpointError(f"{what} is not a torch legacy checkpoint (bad magic number)")
    _unpickle(f, what)  # protocol version
    sys_info = _unpickle(f, what)
    if isinstance(sys_info, dict) and not sys_info.get("little_endian", True):
        raise CheckpointError(f"{what} was saved on a big-endian machine; re-save it on a little-endian one")
    storages: dict[str, tuple[torch.UntypedStorage, torch.dtype, int]] = {}
    start = f.tell()
    total = f.seek(0, io.SEEK_END)
    f.seek(start)

    def load_storage(pid: tuple) -> torch.storage.TypedStorage:
        stype = _storage_type(pid, what)
        key, numel = str(pid[2]), pid[4]
        view = pid[5] if len(pid) > 5 else None
        if not isinstance(numel, int) or numel < 0 or numel * stype.dtype.itemsize > total:
            raise CheckpointError(f"{what}: storage {key} claims a size the file cannot hold; it is corrupt")
        if key not in storages:
            storages[key] = (torch.UntypedStorage(numel * stype.dtype.itemsize), stype.dtype, numel)
        untyped, dtype, _ = storages[key]
        if view is not None:  # very old files: a view into a shared root storage
            _, offset, size = view
            untyped = untyped[offset * dtype.itemsize:(offset + size) * dtype.itemsize]
        return _typed_storage(untyped, stype.dtype)

    obj = _unpickle(f, what, load_storage)
    keys = _unpickle(f, what)
    if not isinstance(keys, list):
        raise CheckpointError(f"{what}: the storage index is malformed")
    for key in keys:
        key = str(key)
        if key not in storages:
            raise CheckpointError(f"{what}: storage {key} is listed but never referenced")
        untyped, dtype, numel = storages[key]
        header = f.read(8)
        if len(header) != 8:
            raise CheckpointError(f"{what} is truncated (storage {key} is missing)")
        (stored,) = struct.unpack("<q", header)
        if stored != numel:
            raise CheckpointError(
                f"{what}: storage {key} holds {stored} elements, expected {numel}; the file is corrupt")
        raw = f.read(numel * dtype.itemsize)
        if len(raw) != numel * dtype.itemsize:
            raise CheckpointError(f"{what} is truncated inside storage {key}")
        if raw:
            torch.empty(0, dtype=torch.uint8).set_(untyped).copy_(
                torch.empty(0, dtype=torch.uint8).set_(torch.UntypedStorage.from_buffer(raw, dtype=torch.uint8)))
    return obj


def _is_legacy_magic(value: Any) -> bool:
    """``value == magic`` for anything a pickle can hold (an ndarray's ``==`` has no truth value)."""
    return type(value) is int and value == _LEGACY_MAGIC


def sniff(head: bytes) -> str:
    """``"zip"``, ``"legacy"`` (torch's pre-1.6 stream), ``"pickle"``, ``"tar"`` or ``"unknown"``."""
    if head[:4] == b"PK\x03\x04":
        return "zip"
    if len(head) > 262 and head[257:262] == b"ustar":
        return "tar"
    if head[:1] == b"\x80" or head[:1] in (b"(", b"}", b"]", b"c"):
        try:  # the allow-listed unpickler reads just the first (tiny) pickle of the stream
            first = SafeUnpickler(io.BytesIO(head), "header").load()
        except Exception:  # noqa: BLE001 - only a hint; the real load decides
            first = None
        return "legacy" if _is_legacy_magic(first) else "pickle"
    return "unknown"


def safe_loads(data: bytes, what: str = "pickle data") -> Any:
    """Unpickle ``data`` (raw pickle, torch zip or torch legacy stream) through the allow-list."""
    kind = sniff(data[:512])
    if kind == "zip":
        return _load_torch_zip(io.BytesIO(data), what)
    if kind == "legacy":
        return _load_torch_legacy(io.BytesIO(data), what)
    if kind == "tar":
        raise CheckpointError(f"{what} uses torch's pre-0.4 tar format, which gantl does not read; "
                              "re-save it with a current torch.save")
    if kind == "unknown":
        raise CheckpointError(f"{what} is not a pickle or torch checkpoint; pass a .pkl, .pt or .pth file")
    return _unpickle(io.BytesIO(data), what)


def safe_load_pickle(path: str | Path) -> Any:
    """Load a foreign ``.pkl``/``.pt``/``.pth`` file, refusing anything that would run code.

    Raises :class:`UnsafePickleError` (names the refused global) or :class:`CheckpointError`.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found; check the path")
    with open(path, "rb") as f:
        head = f.read(512)
    kind = sniff(head)
    if kind == "zip":
        return _load_torch_zip(path, path.name)
    return safe_loads(path.read_bytes(), path.name)
