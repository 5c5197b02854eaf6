"""launch/stage_data.py for real: a local "bucket" folder, and gs:// through a fake gcloud."""

import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO

SCRIPT = REPO / "launch" / "stage_data.py"
_spec = importlib.util.spec_from_file_location("stage_data", SCRIPT)
stage_data = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(stage_data)

# What `python -m mobileiqa_jax.data.build` leaves in a data_dir, in miniature.
BUILT = {
  "koniq10k/1.0.0/dataset_info.json": b'{"name": "koniq10k"}',
  "koniq10k/1.0.0/koniq10k-train.array_record-00000-of-00001": os.urandom(3000),
  "koniq10k/1.0.0/koniq10k-test.array_record-00000-of-00001": os.urandom(1000),
}


def _built_set(root):
  for name, data in BUILT.items():
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    (root / name).write_bytes(data)
  return root


def _mirrors(dest):
  return all((dest / name).read_bytes() == data for name, data in BUILT.items())


def test_a_shared_folder_is_copied_checked_and_then_reused(tmp_path, capsys):
  source = _built_set(tmp_path / "shared" / "tfds")
  dest = tmp_path / "local" / "tfds"
  assert stage_data.main([str(source), str(dest)]) == 0
  assert _mirrors(dest) and (dest / stage_data.RECORD).is_file()
  assert "staged 3 files" in capsys.readouterr().out
  # The same listing again: nothing to copy.
  stage_data.stage(str(source), str(dest))
  assert "reusing it" in capsys.readouterr().out
  # A damaged copy is not reused: the file is fetched again.
  (dest / "koniq10k/1.0.0/koniq10k-test.array_record-00000-of-00001").write_bytes(b"cut")
  stage_data.stage(str(source), str(dest))
  assert "staged 3 files" in capsys.readouterr().out and _mirrors(dest)
  # Nor is a copy of a source that changed since.
  (source / "koniq10k/1.0.0/extra.json").write_text("{}")
  stage_data.stage(str(source), str(dest))
  assert "staged 4 files" in capsys.readouterr().out
  assert (dest / "koniq10k/1.0.0/extra.json").read_text() == "{}"


def test_a_short_disk_stops_before_copying(tmp_path, monkeypatch):
  source = _built_set(tmp_path / "shared")
  dest = tmp_path / "local"
  monkeypatch.setattr(stage_data, "free_bytes", lambda path: 1000)
  with pytest.raises(SystemExit, match=r"has 1.00 kB free, staging .* needs 4.02 kB more"):
    stage_data.stage(str(source), str(dest))
  assert not dest.exists()


def test_a_copy_that_misses_a_file_names_it_and_records_nothing(tmp_path, monkeypatch):
  source = _built_set(tmp_path / "shared")
  dest = tmp_path / "local"
  lost = "koniq10k/1.0.0/koniq10k-test.array_record-00000-of-00001"
  copy = stage_data.copy
  monkeypatch.setattr(
    stage_data,
    "copy",
    lambda src, target, files: copy(src, target, {k: v for k, v in files.items() if k != lost}),
  )
  with pytest.raises(SystemExit, match=f"1 of 3 files do not match: {lost} \\(missing\\)"):
    stage_data.stage(str(source), str(dest))
  assert not (dest / stage_data.RECORD).exists()


def test_an_empty_or_missing_source_is_named(tmp_path):
  (tmp_path / "empty").mkdir()
  with pytest.raises(SystemExit, match="holds no files; build the set there first"):
    stage_data.stage(str(tmp_path / "empty"), str(tmp_path / "dest"))
  with pytest.raises(SystemExit, match="is not a folder"):
    stage_data.stage(str(tmp_path / "nowhere"), str(tmp_path / "dest"))


FAKE_GCLOUD = """
  import os, shutil, sys
  args = sys.argv[1:]
  local = lambda url: os.path.join(os.environ["FAKE_BUCKETS"], url.removeprefix("gs://"))
  if args[:4] == ["storage", "ls", "-l", "-r"]:
    prefix = args[4].removesuffix("**")
    base = local(prefix)
    for folder, _, names in os.walk(base):
      for name in names:
        path = os.path.join(folder, name)
        relative = os.path.relpath(path, base)
        print(f"{os.path.getsize(path):>10}  2026-12-04T00:00:00Z  {prefix}{relative}")
    print("TOTAL: some objects")
  elif args[:3] == ["storage", "rsync", "-r"]:
    shutil.copytree(local(args[3]), args[4], dirs_exist_ok=True)
  else:
    sys.exit(f"fake gcloud: unexpected {args}")
"""


def test_a_bucket_is_listed_and_copied_with_gcloud(tmp_path):
  _built_set(tmp_path / "buckets" / "bucket" / "tfds")
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir()
  (bin_dir / "gcloud").write_text(f"#!{sys.executable}\n" + textwrap.dedent(FAKE_GCLOUD))
  (bin_dir / "gcloud").chmod(0o755)
  env = {
    **os.environ,
    "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
    "FAKE_BUCKETS": str(tmp_path / "buckets"),
  }
  dest = tmp_path / "local"
  run = lambda: subprocess.run(
    [sys.executable, str(SCRIPT), "gs://bucket/tfds", str(dest)],
    env=env,
    capture_output=True,
    text=True,
    timeout=60,
  )
  first = run()
  assert first.returncode == 0, first.stderr
  assert "staged 3 files" in first.stdout and _mirrors(dest)
  second = run()
  assert second.returncode == 0 and "reusing it" in second.stdout
