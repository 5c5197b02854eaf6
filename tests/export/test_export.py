"""TFLite export: every quantization and input kind, refusal, the command lines."""

import json

import jax
import numpy as np
import pytest

from configs import default
from mobileiqa_jax import checkpoints, export, models, sizes
from mobileiqa_jax.benchmark import __main__ as benchmark
from mobileiqa_jax.benchmark import litert
from mobileiqa_jax.export import __main__ as export_main
from mobileiqa_jax.export import tflite, verify
from mobileiqa_jax.jobs import export as export_job
from tests.conftest import MICRO, random_variables

HEIGHT, WIDTH = 96, 128
# Worst |score difference| from JAX float32 expected of each mode on fresh images.
TOLERANCE = {"float32": 1e-4, "float16": 1e-3, "dynamic_int8": 1e-2}


@pytest.fixture(scope="module")
def tiny():
  model = models.create("student_tiny")
  return model, random_variables(model, np.zeros((1, HEIGHT, WIDTH, 3), np.float32))


@pytest.fixture(scope="module")
def micro():
  model = models.create("student_tiny", **MICRO)
  return model, random_variables(model, np.zeros((1, HEIGHT, WIDTH, 3), np.float32))


def reference_scores(model, variables, images_uint8):
  """JAX float32 scores with the normalisation written out independently here."""
  mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
  x = ((images_uint8 / 255.0 - mean) / std).astype(np.float32)
  apply = jax.jit(lambda v, x: model.apply(v, x)[0])
  return np.concatenate([np.asarray(apply(variables, image[None])) for image in x])


# Each mode and each input kind; the command-line test adds float16 with uint8.
@pytest.mark.parametrize(
  "quantization,input_kind",
  [("float32", "float32"), ("float32", "uint8"), ("float16", "float32"), ("dynamic_int8", "uint8")],
)
def test_export_runs_in_litert_like_jax(tiny, tmp_path, quantization, input_kind):
  model, variables = tiny
  out = tmp_path / "tiny.tflite"
  report = export.export_tflite(
    model,
    variables,
    out,
    HEIGHT,
    WIDTH,
    quantization,
    input_kind,
    model_name="student_tiny",
    samples=4,
  )
  print(
    f"{quantization}/{input_kind}: {out.stat().st_size / 2**20:.1f} MiB, {report['verification']}"
  )
  assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.json", "tiny.tflite"]
  assert json.loads((tmp_path / "tiny.json").read_text()) == report
  assert report["model"] == "student_tiny" and report["quantization"] == quantization
  assert report["input"]["shape"] == [1, HEIGHT, WIDTH, 3] and report["input"]["kind"] == input_kind
  assert report["input"]["normalisation_in_graph"] == (input_kind == "uint8")
  assert report["input"]["mean"] == [0.485, 0.456, 0.406]
  assert report["verification"]["passed"] and report["verification"]["samples"] == 4
  assert report["file"]["bytes"] == out.stat().st_size

  # Weights dominate the file: 4, 2 or 1 byte(s) per parameter (int8 a little
  # more: biases and depthwise kernels stay float32, a bigger share of this
  # tiny model than of the full student).
  per_param = out.stat().st_size / models.count_params(variables["params"])
  assert (
    {"float32": 3.8, "float16": 1.9, "dynamic_int8": 0.9}[quantization]
    < per_param
    < {"float32": 4.3, "float16": 2.3, "dynamic_int8": 1.4}[quantization]
  )

  # Fresh images, and a reference that normalises on its own: this also checks
  # the normalisation baked into uint8 models.
  images = verify.sample_images(3, HEIGHT, WIDTH, seed=7)
  exported = verify.tflite_scores(out, verify.model_inputs(images, input_kind))
  np.testing.assert_allclose(
    exported, reference_scores(model, variables, images), rtol=0, atol=TOLERANCE[quantization]
  )


def test_int8_export_leaves_no_quantised_op_outside_xnnpack(tiny, tmp_path):
  # A hybrid (int8-weight) op that XNNPACK does not take runs on LiteRT's own
  # kernels and cuts the delegated graph; the depthwise convs were such ops
  # until their channel-slices form (layers.DepthwiseConv) kept their kernels float32.
  model, variables = tiny
  out = tmp_path / "tiny.tflite"
  export.export_tflite(model, variables, out, HEIGHT, WIDTH, "dynamic_int8", samples=3)
  interpreter = verify.make_interpreter(out, num_threads=1)
  ops = interpreter._get_ops_details()  # pylint: disable=protected-access
  dtypes = {t["index"]: t["dtype"] for t in interpreter.get_tensor_details()}
  delegated_in, delegated_out = set(), set()
  for op in ops:
    if op["op_name"] == "DELEGATE":
      delegated_in.update(op["inputs"])
      delegated_out.update(op["outputs"])
  # Ops outside the delegates are the ones whose outputs a delegate reads.
  outside = [
    op
    for op in ops
    if op["op_name"] != "DELEGATE"
    and set(op["outputs"]) & delegated_in
    and not set(op["outputs"]) & delegated_out
  ]
  assert {op["op_name"] for op in outside} <= {"CONCATENATION"}
  assert not [op for op in outside if any(dtypes.get(i) == np.int8 for i in op["inputs"])]
  quantised = [op for op in ops if any(dtypes.get(i) == np.int8 for i in op["inputs"])]
  assert {op["op_name"] for op in quantised} >= {"FULLY_CONNECTED", "CONV_2D", "DELEGATE"}


def test_refused_export_leaves_no_file(micro, tmp_path):
  model, variables = micro
  with pytest.raises(export.VerificationError, match="refused to write") as error:
    export.export_tflite(
      model,
      variables,
      tmp_path / "tiny.tflite",
      HEIGHT,
      WIDTH,
      "float32",
      float32_tolerance=-1.0,
      samples=1,
    )
  assert error.value.comparison.max_abs_diff < 1e-4 and not error.value.comparison.passed
  assert list(tmp_path.iterdir()) == []


def test_quantised_export_needs_samples_to_rank(tiny, tmp_path):
  model, variables = tiny
  with pytest.raises(ValueError, match="more sample images"):
    export.export_tflite(
      model, variables, tmp_path / "t.tflite", HEIGHT, WIDTH, "dynamic_int8", samples=2
    )
  with pytest.raises(ValueError, match="unknown quantization"):
    export.export_tflite(model, variables, tmp_path / "t.tflite", HEIGHT, WIDTH, "int4")
  assert list(tmp_path.iterdir()) == []


def test_packed_weights_of_several_dtypes_and_shapes_reach_their_places(tmp_path):
  # The converter is given each dtype's weights packed in one variable; they
  # must come back unpacked in their own places: any mix-up changes the sum.
  rng = np.random.default_rng(0)
  variables = {
    "a": rng.standard_normal((3, 1, 2)).astype(np.float32),
    "b": {"c": np.arange(4, dtype=np.int32), "d": rng.standard_normal(5).astype(np.float32)},
    "e": np.float32(2.5),
  }

  def fn(v, images):
    x = images.astype(np.float32).mean(axis=(1, 2, 3))
    weights = (1.0, 10.0, 100.0, 1000.0)
    parts = (v["a"].sum(), v["b"]["c"].astype(np.float32) @ np.arange(4.0), v["b"]["d"][3], v["e"])
    return x + sum(w * p for w, p in zip(weights, parts))

  path = tmp_path / "packed.tflite"
  path.write_bytes(tflite.convert(fn, variables, 4, 4, "uint8", "float32"))
  images = np.full((1, 4, 4, 3), 6, np.uint8)
  (got,) = verify.tflite_scores(path, verify.model_inputs(images, "uint8"))
  np.testing.assert_allclose(got, float(np.asarray(fn(variables, images))[0]), rtol=1e-6)


def test_sample_images_are_deterministic_and_spread():
  a, b = verify.sample_images(4, 40, 60, seed=3), verify.sample_images(4, 40, 60, seed=3)
  assert a.dtype == np.uint8 and a.shape == (4, 40, 60, 3)
  np.testing.assert_array_equal(a, b)
  assert np.ptp(a.reshape(4, -1).std(axis=1)) > 5  # contrasts differ between images


def test_compare_judges_float32_by_difference_and_quantised_by_rank():
  reference = np.array([0.1, 0.2, 0.3, 0.4])
  shifted = reference + 0.05  # same order, large offset
  assert not verify.compare(
    reference, shifted, "float32", float32_tolerance=1e-4, min_srcc=0.99
  ).passed
  assert verify.compare(reference, shifted, "float16", float32_tolerance=1e-4, min_srcc=0.99).passed
  swapped = reference[[1, 0, 2, 3]]
  assert not verify.compare(
    reference, swapped, "dynamic_int8", float32_tolerance=1e-4, min_srcc=0.99
  ).passed
  assert (
    verify.compare(
      reference, np.full(4, np.nan), "float32", float32_tolerance=1.0, min_srcc=0.0
    ).passed
    is False
  )


def test_parse_size():
  assert sizes.parse_size("1231x1907") == (1231, 1907)
  assert sizes.parse_size("64X96") == (64, 96)
  for bad in ("1231", "0x5", "axb", "2x3x4"):
    with pytest.raises(sizes.SizeError, match=f"size must be .*'{bad}'"):
      sizes.parse_size(bad)


def test_command_lines_export_a_checkpoint_and_time_it(micro, tmp_path, capsys):
  _, variables = micro
  checkpoints.save_model(tmp_path / "ckpt", variables, "student_tiny", MICRO)
  out = tmp_path / "app" / "student.tflite"
  out.parent.mkdir()
  assert (
    export_main.main(
      [
        "--checkpoint",
        str(tmp_path / "ckpt"),
        "--out",
        str(out),
        "--size",
        f"{HEIGHT}x{WIDTH}",
        "--quantization",
        "float16",
        "--input",
        "uint8",
        "--samples",
        "3",
      ]
    )
    == 0
  )
  assert sorted(p.name for p in out.parent.iterdir()) == ["student.json", "student.tflite"]
  report = json.loads(out.with_suffix(".json").read_text())
  assert report["model"] == "student_tiny" and report["checkpoint"] == str(tmp_path / "ckpt")
  assert report["input"]["dtype"] == "uint8" and report["quantization"] == "float16"

  assert export_main.main(["--checkpoint", str(tmp_path / "missing"), "--out", str(out)]) == 1
  assert "error:" in capsys.readouterr().err

  assert benchmark.main(["--tflite", str(out), "--repeats", "2"]) == 0
  printed = capsys.readouterr().out
  assert "1 thread(s): median" in printed and "2 thread(s): median" in printed
  latency = litert.tflite_latency(out, num_threads=1, runs=2)
  assert latency["runs"] == 2 and 0 < latency["min_s"] <= latency["median_s"] <= latency["max_s"]


def test_export_job_checks_on_a_dataset_split(micro, tmp_path):
  # configs/export.py with export.verify_split: the quantised model is judged
  # on the dataset's own test images, not on synthetic samples.
  _, variables = micro
  checkpoints.save_model(tmp_path / "ckpt", variables, "student_tiny", MICRO)
  config = default.get_config("runlocal")
  config.data.height, config.data.width = HEIGHT, WIDTH
  config.export.update(
    checkpoint=str(tmp_path / "ckpt"),
    quantization="dynamic_int8",
    verify_split="test",
    verify_limit=5,
  )
  report = export_job.export_from_config(config, str(tmp_path / "run"))
  assert report["verified_on"] == "synthetic test split, 5 images"
  assert report["verification"]["samples"] == 5
  assert report["verification"]["images"] == "given images"
  images = export_job.split_images(config.data, "test", HEIGHT, WIDTH, limit=5)
  assert images.shape == (5, HEIGHT, WIDTH, 3) and images.dtype == np.uint8
  assert (tmp_path / "run" / "student_dynamic_int8.tflite").exists()

  with pytest.raises(ValueError, match=r"uint8 \(N, 96, 128, 3\)"):
    export.export_tflite(
      micro[0], variables, tmp_path / "x.tflite", HEIGHT, WIDTH, images=images[:, :50]
    )
  assert not (tmp_path / "x.tflite").exists()
  with pytest.raises(FileNotFoundError, match="missing is not a directory"):
    export.export_tflite(micro[0], variables, tmp_path / "missing" / "x.tflite", HEIGHT, WIDTH)


@pytest.mark.slow
def test_full_size_student_float32(tmp_path):
  """The real student at UHD-IQA size converts exactly (one image, random weights)."""
  height, width = 1231, 1907
  model = models.create("student")
  variables = random_variables(model, np.zeros((1, height, width, 3), np.float32))
  report = export.export_tflite(
    model,
    variables,
    tmp_path / "student.tflite",
    height,
    width,
    "float32",
    model_name="student",
    samples=1,
  )
  print(f"full-size student: {report['file']['bytes'] / 2**20:.0f} MiB, {report['verification']}")
  assert report["verification"]["max_abs_diff"] <= 1e-4
