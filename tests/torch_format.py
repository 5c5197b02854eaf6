"""Writes `torch.save(state_dict)`-format files without PyTorch, for tests.

The pickle must name `torch._utils._rebuild_tensor_v2` and `torch.FloatStorage`
as globals; pickle only writes a global it can look up, so stand-ins are put
under those names in sys.modules while dumping (and taken away after).
"""

import collections
import contextlib
import io
import pickle
import sys
import types
import zipfile

import numpy as np

_STORAGE_NAMES = {
  np.dtype(np.float32): "FloatStorage",
  np.dtype(np.int64): "LongStorage",
  np.dtype(np.float16): "HalfStorage",
  np.dtype(np.float64): "DoubleStorage",
}


def _stand_in(module, name):
  obj = types.FunctionType((lambda *a: None).__code__, {}, name)
  obj.__module__, obj.__qualname__ = module, name
  return obj


@contextlib.contextmanager
def _fake_torch():
  torch = types.ModuleType("torch")
  utils = types.ModuleType("torch._utils")
  utils._rebuild_tensor_v2 = _stand_in("torch._utils", "_rebuild_tensor_v2")
  for name in _STORAGE_NAMES.values():
    setattr(torch, name, _stand_in("torch", name))
  torch._utils = utils
  saved = {k: sys.modules.get(k) for k in ("torch", "torch._utils")}
  sys.modules.update({"torch": torch, "torch._utils": utils})
  try:
    yield torch, utils
  finally:
    for k, v in saved.items():
      if v is None:
        sys.modules.pop(k, None)
      else:
        sys.modules[k] = v


class _Tensor:
  def __init__(self, key, array):
    self.key, self.array = key, array


def save(state_dict, path, root="archive", transpose_storage=False):
  """Writes {name: np.ndarray} like torch.save would.

  transpose_storage stores 2-D tensors column-major (a non-trivial stride), to
  exercise the reader's strided rebuild.
  """
  with _fake_torch() as (torch, utils):
    storages = {}

    class Pickler(pickle.Pickler):
      def persistent_id(self, obj):
        if isinstance(obj, _Tensor):
          dtype = obj.array.dtype
          return ("storage", getattr(torch, _STORAGE_NAMES[dtype]), obj.key, "cpu", obj.array.size)
        return None

      def reducer_override(self, obj):
        if not isinstance(obj, np.ndarray):
          return NotImplemented
        key = str(len(storages))
        array = np.asarray(obj)
        if transpose_storage and array.ndim == 2:
          storages[key] = np.ascontiguousarray(array.T)
          stride = (1, array.shape[0])
        else:
          storages[key] = np.ascontiguousarray(array)
          stride = tuple(s // array.itemsize for s in storages[key].strides)
        return (
          utils._rebuild_tensor_v2,
          (_Tensor(key, storages[key]), 0, array.shape, stride, False, collections.OrderedDict()),
        )

    buffer = io.BytesIO()
    Pickler(buffer, protocol=2).dump(collections.OrderedDict(state_dict))
  with zipfile.ZipFile(path, "w") as archive:
    archive.writestr(f"{root}/data.pkl", buffer.getvalue())
    archive.writestr(f"{root}/byteorder", "little")
    for key, array in storages.items():
      archive.writestr(f"{root}/data/{key}", array.tobytes())
    archive.writestr(f"{root}/version", "3\n")
