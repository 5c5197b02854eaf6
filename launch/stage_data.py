"""Copies a built dataset folder onto this host's disk before training, checked.

  python launch/stage_data.py SOURCE DEST [--dry-run]

SOURCE is a TFDS data_dir written by `python -m mobileiqa_jax.data.build`
(or any folder): a gs:// URL, copied with `gcloud storage rsync`, or a path
on a shared file system. DEST becomes an exact mirror of it, and training
then reads `--config.data.data_dir=DEST`: grain cannot open ArrayRecord files
on gs:// (google/array_record issue #120), and a local disk feeds a host
faster than a network file system.

In order:
  1. list SOURCE (every file and its size);
  2. reuse DEST if a previous staging of the same listing completed there
     (DEST/.staged.json) and every file still has its size;
  3. check DEST's disk has room for what is missing, or stop saying how much
     is free and how much is needed;
  4. copy, then list DEST and compare: a missing or different file stops the
     run naming it. The record of a complete staging is written last, so an
     interrupted copy is never taken for a finished one.
The launchers run this on every host before training (--stage-data).
Standard library only, like the launchers.
"""

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys

RECORD = ".staged.json"


class StagingError(SystemExit):
  """Staging cannot go on; the message says why and what to do."""

  def __init__(self, message: str):
    super().__init__(f"stage_data: {message}")


def is_url(source: str) -> bool:
  return "://" in source


def list_local(root: pathlib.Path) -> dict[str, int]:
  """{path relative to root: size} of every file under root, the record left out."""
  if not root.is_dir():
    raise StagingError(f"{root} is not a folder; give the data_dir the build wrote")
  found = {}
  for folder, _, names in os.walk(root):
    for name in names:
      path = pathlib.Path(folder) / name
      relative = path.relative_to(root).as_posix()
      if relative != RECORD:
        found[relative] = path.stat().st_size
  return found


def list_bucket(url: str) -> dict[str, int]:
  """{path relative to url: size} from `gcloud storage ls -l -r URL/**`."""
  prefix = url.rstrip("/") + "/"
  result = subprocess.run(
    ["gcloud", "storage", "ls", "-l", "-r", prefix + "**"],
    capture_output=True,
    text=True,
    check=False,
  )
  if result.returncode:
    raise StagingError(f"cannot list {url}: {result.stderr.strip() or 'gcloud failed'}")
  found = {}
  for line in result.stdout.splitlines():
    words = line.split()
    # "SIZE  DATE  gs://..." per object; folders and the TOTAL line differ.
    if len(words) >= 3 and words[0].isdigit() and words[-1].startswith(prefix):
      found[words[-1][len(prefix) :]] = int(words[0])
  return found


def listing(source: str) -> dict[str, int]:
  files = list_bucket(source) if is_url(source) else list_local(pathlib.Path(source))
  if not files:
    raise StagingError(f"{source} holds no files; build the set there first")
  return files


def differences(expected: dict[str, int], dest: pathlib.Path) -> list[str]:
  """What in DEST is missing or has another size than `expected` says."""
  problems = []
  for name, size in sorted(expected.items()):
    path = dest / name
    if not path.is_file():
      problems.append(f"{name} (missing)")
    elif path.stat().st_size != size:
      problems.append(f"{name} ({path.stat().st_size} bytes, expected {size})")
  return problems


def already_staged(source: str, files: dict[str, int], dest: pathlib.Path) -> bool:
  try:
    record = json.loads((dest / RECORD).read_text())
  except (OSError, ValueError):
    return False
  return record == {"source": source, "files": files} and not differences(files, dest)


def free_bytes(dest: pathlib.Path) -> int:
  existing = dest
  while not existing.exists():
    existing = existing.parent
  return shutil.disk_usage(existing).free


def copy(source: str, dest: pathlib.Path, files: dict[str, int]) -> None:
  dest.mkdir(parents=True, exist_ok=True)
  if is_url(source):
    command = ["gcloud", "storage", "rsync", "-r", source.rstrip("/"), str(dest)]
    if subprocess.run(command, check=False).returncode:
      raise StagingError(f"copy failed: {' '.join(command)}")
    return
  root = pathlib.Path(source)
  for name, size in files.items():
    target = dest / name
    if target.is_file() and target.stat().st_size == size:
      continue  # left by an earlier, interrupted staging
    target.parent.mkdir(parents=True, exist_ok=True)
    # Whole files only, renamed into place: a reader (or a second host
    # staging onto the same shared disk) never sees half of one.
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.copyfile(root / name, temporary)
    os.replace(temporary, target)


def size(count: int) -> str:
  for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
    if count >= scale / 10:
      return f"{count / scale:.2f} {unit}"
  return f"{count} bytes"


def stage(source: str, dest: str, *, dry_run: bool = False, out=None) -> pathlib.Path:
  """Mirrors `source` into `dest` (see the module docstring); returns DEST."""
  out = out or sys.stdout
  target = pathlib.Path(dest).expanduser()
  files = listing(source)
  total = sum(files.values())
  say = lambda message: print(f"stage_data: {message}", file=out, flush=True)
  if already_staged(source, files, target):
    say(f"{target} already holds {len(files)} files ({size(total)}) of {source}; reusing it")
    return target
  missing = total - sum(
    size for name, size in files.items() if not differences({name: size}, target)
  )
  free = free_bytes(target)
  if missing > free:
    raise StagingError(
      f"{target} has {size(free)} free, staging {source} needs {size(missing)} more; "
      "free space there or choose another folder (--stage-dir)"
    )
  if dry_run:
    say(f"would copy {len(files)} files ({size(missing)} to fetch) to {target}")
    return target
  (target / RECORD).unlink(missing_ok=True)
  copy(source, target, files)
  problems = differences(files, target)
  if problems:
    more = len(problems) - 10
    shown = ", ".join(problems[:10]) + (f" and {more} more" if more > 0 else "")
    raise StagingError(
      f"after copying {source} to {target}, {len(problems)} of {len(files)} files "
      f"do not match: {shown}. Run again to retry the copy."
    )
  temporary = target / f"{RECORD}.{os.getpid()}.tmp"
  temporary.write_text(json.dumps({"source": source, "files": files}))
  os.replace(temporary, target / RECORD)
  say(f"staged {len(files)} files ({size(total)}) of {source} in {target}")
  return target


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("source", help="gs://BUCKET/tfds or a shared folder")
  parser.add_argument("dest", help="a folder on this host's disk")
  parser.add_argument("--dry-run", action="store_true", help="check and report, copy nothing")
  args = parser.parse_args(argv)
  stage(args.source, args.dest, dry_run=args.dry_run)
  return 0


if __name__ == "__main__":
  sys.exit(main())
