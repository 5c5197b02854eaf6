"""The benchmark's smoke mode end to end, and its FLOP counter."""

import json

import jax
import jax.numpy as jnp
import pytest

from mobileiqa_jax.benchmark import __main__ as benchmark
from mobileiqa_jax.benchmark import inference, probes


def test_smoke_mode_writes_table_and_json(tmp_path, capsys):
  path = tmp_path / "bench.json"
  assert benchmark.main(["--smoke", "--json", str(path)]) == 0
  report = json.loads(path.read_text())
  assert [row["model"] for row in report["inference"]] == ["student_tiny", "teacher_tiny"]
  for row in report["inference"]:
    assert row["latency_s"] > 0 and row["compile_s"] > 0 and row["gflop"] > 0
    assert row["peak_rss_bytes"] >= row["base_rss_bytes"] > 0
    assert 0 < row["gemm_fraction"]
  assert report["gemm"]["gflops_per_s"] > 0
  assert "student_tiny" in capsys.readouterr().out


def test_flop_count_multiplies_loops_and_counts_convs():
  w = jnp.ones((8, 16))
  mapped = jax.make_jaxpr(lambda x: jax.lax.map(lambda r: r @ w, x))(jnp.ones((5, 3, 8)))
  assert probes.count_flops(mapped) == 5 * 2 * 3 * 8 * 16
  conv = jax.make_jaxpr(
    lambda x, k: jax.lax.conv_general_dilated(
      x, k, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
  )(jnp.ones((1, 6, 6, 4)), jnp.ones((3, 3, 4, 2)))
  assert probes.count_flops(conv) == 2 * (4 * 4 * 2) * (3 * 3 * 4)


def test_case_labels_round_trip():
  case = inference.Case("student", 1231, 1907, 2)
  assert inference.Case.parse(case.label) == case


def test_only_parses_backends_and_training_steps():
  args = benchmark._parse(
    [
      "--only",
      "litert_int8:student:64x96",
      "--only",
      "teacher:32x48x2",
      "--only",
      "train:distill_step",
      "--only",
      "folder:student:64x96x2",
      "--only",
      "pipeline:64x96",
    ]
  )
  cases, training, inputs = benchmark._cases(args)
  assert cases == (
    inference.Case("student", 64, 96, 1, "litert_int8"),
    inference.Case("teacher", 32, 48, 2, "jax"),
    inference.Case("student", 64, 96, 2, "folder"),
  )
  assert training == ["distill_step"] and inputs == ["pipeline:64x96"]


@pytest.mark.parametrize(
  "spec, why",
  [
    ("bogus", "not a row"),
    ("studnt:64x64", "unknown model 'studnt'"),
    ("foo:student:64x64", "unknown backend 'foo'"),
    ("student:64x", "size must be HEIGHTxWIDTH, e.g. 1231x1907; got '64x'"),
    ("student:0x64", "size must be positive; got '0x64'"),
    ("student:64x64x0", "batch '0' is not a positive integer"),
    ("student:64x64x2x1", "size must be HEIGHTxWIDTH, e.g. 1231x1907; got '64x64x2x1'"),
    ("train", "unknown training step"),
    ("train:nope", "unknown training step"),
    ("pipeline:12", "size must be HEIGHTxWIDTH"),
  ],
)
def test_only_names_what_is_wrong_with_a_row_in_one_line(spec, why):
  with pytest.raises(SystemExit) as exit_info:
    benchmark._cases(benchmark._parse(["--only", spec]))
  message = str(exit_info.value.code)
  assert message.startswith(f"error: --only {spec!r}: {why}") and "\n" not in message


def test_litert_backend_smoke():
  row = inference.measure_litert(
    inference.Case("student_tiny", 64, 96, backend="litert"), repeats=1, warmup=1
  )
  assert row["latency_s"] > 0 and row["gflop"] > 0 and row["threads"] >= 1
  assert row["peak_rss_bytes"] >= row["base_rss_bytes"] > 0


def test_folder_rows_score_generated_photos_against_the_network(tmp_path, monkeypatch):
  monkeypatch.setattr(inference, "FOLDER_PHOTOS", 3)
  monkeypatch.setattr(inference, "FOLDER_PHOTO_SIZE", (120, 160))
  row = inference.measure_folder(inference.Case("student_tiny", 64, 96, 2, "folder"), 1, 1)
  assert row["photos"] == "3 JPEGs 120x160" and row["images_per_s"] > 0
  assert row["folder_fraction"] == pytest.approx(row["images_per_s"] / row["network_images_per_s"])
  report = {
    "gemm": {},
    "inference": [
      dict(row, label="x", backend="folder", model="student_tiny", batch=2, height=64, width=96)
    ],
    "training": [],
  }
  assert "of network" in benchmark.format_table(report)
