"""Loading PyTorch and timm weights: the happy paths and every refusal."""

import os
import pickle
import re
import subprocess
import sys
import zipfile

from flax import traverse_util
import jax
import numpy as np
import pytest
from safetensors.numpy import save_file

from mobileiqa_jax import checkpoints, convert, models
from mobileiqa_jax.convert import torch_pickle
from tests import torch_format
from tests.conftest import REPO, random_variables
from tests.models.test_parity import compare


def _tiny_state_dict(name, seed=0):
  """A state dict for a tiny preset, named and laid out as the original's."""
  model = models.create(name)
  variables = random_variables(model, np.zeros((1, 64, 64, 3), np.float32), seed=seed)
  state = {}
  for (_, *path), value in traverse_util.flatten_dict(variables).items():
    state[torch_name(path)] = to_torch_layout(path[-1], value)
  return state, variables


def torch_name(path):
  """Our module path -> the original's name: '_<digits>' segments were list indices,
  except the first index of timm's 'stages_<i>', which is part of the name."""
  modules = [
    re.sub(r"^stages\.(\d+)", r"stages_\1", re.sub(r"_(\d+)(?=_|$)", r".\1", m)) for m in path[:-1]
  ]
  leaf = {
    "kernel": "weight",
    "scale": "weight",
    "bias": "bias",
    "gamma": "gamma",
    "mean": "running_mean",
    "var": "running_var",
  }[path[-1]]
  return ".".join(modules + [leaf])


def to_torch_layout(leaf, value):
  if leaf == "kernel":
    return value.transpose(3, 2, 0, 1) if value.ndim == 4 else value.T
  return value


@pytest.mark.parametrize("name", ["student_tiny", "teacher_tiny"])
def test_tiny_round_trip_through_pickle(name, tmp_path):
  state, variables = _tiny_state_dict(name)
  path = tmp_path / "model.pkl"
  torch_format.save(state, path, transpose_storage=True)
  loaded = convert.from_torch(path, name)
  jax.tree.map(np.testing.assert_array_equal, loaded, variables)


def test_student_parity_through_pickle_file(parity, tmp_path):
  path = tmp_path / "student.pth"
  state = parity.state_dict("student")
  torch_format.save(state, path)
  assert sorted(torch_pickle.load(path)) == sorted(state)
  model = models.create("student")
  variables = convert.from_torch(path, "student")
  scores, taps = jax.jit(model.apply)(variables, parity.image_nhwc(2, 224, 224))
  compare(taps, scores, parity.reference("student", "2x224x224"), "student via .pth")


def test_real_torch_save_is_read(tmp_path):
  torch = pytest.importorskip("torch")
  state = {
    "a.weight": torch.arange(12.0).reshape(3, 4).t(),
    "b.num_batches_tracked": torch.tensor(3),
    "c.bias": torch.rand(4).to(torch.bfloat16),
    "d": torch.rand(9)[2:5],
  }
  torch.save(state, tmp_path / "x.pt")
  loaded = torch_pickle.load(tmp_path / "x.pt")
  for k, v in state.items():
    np.testing.assert_array_equal(loaded[k].astype(np.float32), v.float().numpy())


@pytest.mark.parametrize(
  "name,backbone,prefix",
  [("student", "local_cnn", "local_cnn."), ("teacher", "global_vit", "global_vit.")],
)
def test_timm_safetensors_backbone(name, backbone, prefix, parity, tmp_path, caplog):
  state = parity.state_dict(name)
  timm_state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
  # What timm's published files carry beyond features_only.
  extras = (
    {
      "conv_head.weight": np.zeros((1280, 960, 1, 1), np.float32),
      "conv_head.bias": np.zeros(1280, np.float32),
      "classifier.weight": np.zeros((1000, 1280), np.float32),
      "classifier.bias": np.zeros(1000, np.float32),
    }
    if name == "student"
    else {
      "head.fc.weight": np.zeros((1000, 1024), np.float32),
      "head.fc.bias": np.zeros(1000, np.float32),
    }
  )
  path = tmp_path / "model.safetensors"
  save_file({**timm_state, **extras}, str(path))
  with caplog.at_level("INFO"):
    loaded = convert.from_timm(path, name)
  assert "skipping" in caplog.text and ("classifier" in caplog.text or "head.fc" in caplog.text)
  assert set(loaded["params"]) == {backbone}
  reference = convert.from_torch(state, name)
  jax.tree.map(
    np.testing.assert_array_equal, loaded["params"][backbone], reference["params"][backbone]
  )
  # The backbone taps of a model whose heads are random still match the original.
  model = models.create(name)
  fresh = random_variables(model, np.zeros((1, 64, 64, 3), np.float32), seed=1)
  merged = convert.merge_variables(fresh, loaded)
  size = "2x224x224" if name == "student" else "1x224x224"
  b, h, w = map(int, size.split("x"))
  _, taps = jax.jit(model.apply)(merged, parity.image_nhwc(b, h, w))
  ref = {k: v for k, v in parity.reference(name, size).items() if k.startswith("feature")}
  compare(taps, None, ref, f"{name} via safetensors")


def test_refuses_missing_unexpected_and_misshaped():
  state, _ = _tiny_state_dict("student_tiny")
  broken = dict(state)
  del broken["fc_score.3.weight"]
  broken["extra.weight"] = np.zeros((3, 3), np.float32)
  broken["cnn.0.bias"] = np.zeros(7, np.float32)
  with pytest.raises(convert.ConversionError) as e:
    convert.from_torch(broken, "student_tiny")
  message = str(e.value)
  assert "missing: params/fc_score_3/kernel" in message
  assert "unexpected: params/extra/kernel" in message
  assert "wrong shape: params/cnn_0/bias is (7,)" in message


def test_refuses_unknown_tensor_kind():
  state, _ = _tiny_state_dict("student_tiny")
  with pytest.raises(convert.ConversionError, match="unknown tensor kind 'alpha'"):
    convert.from_torch({**state, "x.alpha": np.zeros(1)}, "student_tiny")


class _Evil:
  def __reduce__(self):
    return (os.system, ("echo pwned",))


def test_refuses_pickle_that_runs_code(tmp_path):
  path = tmp_path / "evil.pkl"
  with zipfile.ZipFile(path, "w") as archive:
    archive.writestr("evil/data.pkl", pickle.dumps({"a": _Evil()}, protocol=2))
  with pytest.raises(
    torch_pickle.UnsafeCheckpointError, match="refusing to load '(posix|os).system'"
  ):
    torch_pickle.load(path)


def test_damaged_and_foreign_files_say_what_is_wrong(tmp_path):
  state, _ = _tiny_state_dict("student_tiny")
  good = tmp_path / "good.pkl"
  torch_format.save(state, good)
  data = good.read_bytes()
  cases = {
    "empty.pkl": (b"", "empty file"),
    "cut.pkl": (data[: len(data) // 2], "truncated: it starts as a zip archive"),
    "old.pkl": (pickle.dumps({"a": 1}, protocol=2), "a legacy torch.save file"),
    "notes.pkl": (b"hello", "not a PyTorch checkpoint"),
  }
  for name, (content, message) in cases.items():
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ValueError, match=message):
      convert.from_torch(tmp_path / name, "student_tiny")
  # A zip whose tensor bytes were cut short inside the archive.
  with zipfile.ZipFile(good) as source, zipfile.ZipFile(tmp_path / "short.pkl", "w") as short:
    for item in source.infolist():
      content = source.read(item)
      short.writestr(item, content[:4] if "/data/" in item.filename else content)
  with pytest.raises(ValueError, match="bytes of the .* it needs; the file is damaged"):
    torch_pickle.load(tmp_path / "short.pkl")


def test_the_network_is_recognised_from_its_keys(parity, tmp_path):
  for name, preset in [("student_tiny", "student"), ("teacher_tiny", "teacher")]:
    state, _ = _tiny_state_dict(name)
    assert convert.recognise(state) == preset
    assert convert.recognise({f"module.{k}": v for k, v in state.items()}) == preset
  with pytest.raises(convert.ConversionError, match="name neither of the backbones"):
    convert.recognise({"fc.weight": np.zeros(1)}, "x.pkl")

  # The authors' files load as checkpoints do: converted in memory.
  path = tmp_path / "best.pkl"
  torch_format.save(parity.state_dict("student"), path)
  module, variables, metadata = checkpoints.load_model(path)
  assert module == models.create("student") and metadata["model"] == "student"
  jax.tree.map(np.testing.assert_array_equal, variables, convert.from_torch(path, "student"))


def _cli(*args):
  return subprocess.run(
    [sys.executable, "-m", "mobileiqa_jax.convert", *args],
    capture_output=True,
    text=True,
    cwd=REPO,
    timeout=300,
  )


def test_cli_writes_checkpoint_and_nothing_on_failure(tmp_path):
  state, variables = _tiny_state_dict("student_tiny")
  good, bad = tmp_path / "good.pkl", tmp_path / "bad.pkl"
  torch_format.save(state, good)
  torch_format.save({k: v for k, v in state.items() if not k.startswith("LDA1.")}, bad)

  result = _cli(
    "--model", "student_tiny", "--torch-checkpoint", str(bad), "--out", str(tmp_path / "out_bad")
  )
  assert result.returncode == 1 and "missing: params/LDA1/cnn1/kernel" in result.stderr
  assert not (tmp_path / "out_bad").exists()

  result = _cli(
    "--model", "student_tiny", "--torch-checkpoint", str(good), "--out", str(tmp_path / "out")
  )
  assert result.returncode == 0, result.stderr
  module, loaded, metadata = checkpoints.load_model(tmp_path / "out")
  assert metadata["model"] == "student_tiny" and module.dim == 32
  jax.tree.map(np.testing.assert_array_equal, loaded, variables)

  result = _cli(
    "--model", "student_tiny", "--torch-checkpoint", str(good), "--out", str(tmp_path / "out")
  )
  assert result.returncode == 1 and "exists" in result.stderr
