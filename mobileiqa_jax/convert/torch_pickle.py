"""Reads `torch.save(state_dict)` files without PyTorch, refusing anything else.

A PyTorch checkpoint (the zip format, torch >= 1.6) is a zip archive holding
`<root>/data.pkl`, a pickle of the state dict in which every tensor is a call
to `torch._utils._rebuild_tensor_v2` on a storage that the pickle names by a
persistent id, and `<root>/data/<key>` with each storage's raw bytes. The
unpickler below resolves only those few globals, to NumPy stand-ins; any other
global (the way a malicious pickle runs code) raises `UnsafeCheckpointError`.
"""

import collections
import pickle
import zipfile

import ml_dtypes
import numpy as np

from mobileiqa_jax import errors

# The names torch.save files go by.
SUFFIXES = (".pkl", ".pth", ".pt")


class UnsafeCheckpointError(pickle.UnpicklingError, errors.InvalidInput):
  """The pickle asks for an object that a plain state dict never contains.

  A ValueError too, so that callers report it as the bad input it is.
  """


# How files start: a zip archive (torch >= 1.6), and the legacy torch.save
# format, a bare pickle (protocol 2 opcode).
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_MAGIC = b"\x80"


# Storage class names (legacy typed storages, still what torch.save writes) -> dtype.
_STORAGE_DTYPES = {
  "DoubleStorage": np.float64,
  "FloatStorage": np.float32,
  "HalfStorage": np.float16,
  "BFloat16Storage": ml_dtypes.bfloat16,
  "LongStorage": np.int64,
  "IntStorage": np.int32,
  "ShortStorage": np.int16,
  "CharStorage": np.int8,
  "ByteStorage": np.uint8,
  "BoolStorage": np.bool_,
}


class _StorageType:
  def __init__(self, name):
    self.dtype = np.dtype(_STORAGE_DTYPES[name])


def _rebuild_tensor(storage, offset, size, stride, *unused):
  """`torch._utils._rebuild_tensor_v2`: a strided view into a storage, copied."""
  del unused  # requires_grad, backward hooks, metadata: meaningless for NumPy.
  if not size:
    return storage[offset].copy()
  itemsize = storage.dtype.itemsize
  view = np.lib.stride_tricks.as_strided(
    storage[offset:], shape=tuple(size), strides=tuple(s * itemsize for s in stride)
  )
  return np.ascontiguousarray(view)


def _rebuild_parameter(data, requires_grad, backward_hooks, *unused):
  del requires_grad, backward_hooks, unused
  return data


_ALLOWED = {
  ("collections", "OrderedDict"): collections.OrderedDict,
  ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
  ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _StateDictUnpickler(pickle.Unpickler):
  def __init__(self, file, archive: zipfile.ZipFile, root: str, byteorder: str, path):
    super().__init__(file)
    self._archive, self._root, self._byteorder, self._path = archive, root, byteorder, path
    self._storages = {}

  def find_class(self, module, name):
    if (module, name) in _ALLOWED:
      return _ALLOWED[(module, name)]
    if module == "torch" and name in _STORAGE_DTYPES:
      return _StorageType(name)
    raise UnsafeCheckpointError(
      f"{self._path}: refusing to load '{module}.{name}': a state-dict checkpoint "
      "holds only tensors; save one with torch.save(model.state_dict(), path)"
    )

  def persistent_load(self, pid):
    kind, storage_type, key, _location, numel = pid
    if kind != "storage" or not isinstance(storage_type, _StorageType):
      raise UnsafeCheckpointError(f"{self._path}: unexpected persistent object {pid[:2]!r}")
    if key not in self._storages:
      raw = self._archive.read(f"{self._root}/data/{key}")
      dtype = storage_type.dtype.newbyteorder("<" if self._byteorder == "little" else ">")
      if len(raw) < numel * dtype.itemsize:
        raise ValueError(
          f"{self._path}: tensor storage {key} holds {len(raw)} bytes of the "
          f"{numel * dtype.itemsize} it needs; the file is damaged"
        )
      array = np.frombuffer(raw, dtype=dtype, count=numel)
      self._storages[key] = array.astype(storage_type.dtype, copy=False)
    return self._storages[key]


def load(path) -> dict[str, np.ndarray]:
  """The state dict in a `torch.save` zip file, as {name: np.ndarray}.

  Raises:
    UnsafeCheckpointError: the pickle references anything but tensors.
    ValueError: the file is not a PyTorch zip checkpoint.
  """
  path = str(path)
  if not zipfile.is_zipfile(path):
    raise ValueError(f"{path}: {_not_a_zip(path)}")
  try:
    return _load_zip(path)
  except UnsafeCheckpointError:
    raise
  except (zipfile.BadZipFile, EOFError, KeyError, pickle.UnpicklingError) as error:
    raise ValueError(f"{path}: damaged checkpoint ({error}); download or save it again") from None


def _not_a_zip(path: str) -> str:
  """Why a file that is no zip archive is not a checkpoint we read."""
  with open(path, "rb") as f:
    head = f.read(4)
  if not head:
    return "empty file"
  if head.startswith(_ZIP_MAGIC):
    return (
      "truncated: it starts as a zip archive (a torch.save file) but its end is "
      "missing; download or copy it again"
    )
  if head.startswith(_PICKLE_MAGIC):
    return (
      "a legacy torch.save file (torch < 1.6 or _use_new_zipfile_serialization=False), "
      "which is not read; re-save it with a current torch.save"
    )
  return f"not a PyTorch checkpoint (a torch.save file is a zip archive; this starts {head!r})"


def _load_zip(path: str) -> dict[str, np.ndarray]:
  with zipfile.ZipFile(path) as archive:
    pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
    if len(pickles) != 1:
      raise ValueError(f"{path}: expected one data.pkl in the archive, found {pickles}")
    root = pickles[0][: -len("/data.pkl")]
    names = set(archive.namelist())
    byteorder = "little"
    if f"{root}/byteorder" in names:
      byteorder = archive.read(f"{root}/byteorder").decode().strip()
    with archive.open(pickles[0]) as f:
      state = _StateDictUnpickler(f, archive, root, byteorder, path).load()
  if not isinstance(state, dict):
    raise ValueError(f"{path}: holds a {type(state).__name__}, not a state dict")
  return dict(state)
