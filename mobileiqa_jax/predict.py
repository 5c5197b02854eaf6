"""Scores photos with a checkpoint or an exported .tflite.

  python -m mobileiqa_jax.predict --checkpoint runs/student photos/ more/*.jpg
  python -m mobileiqa_jax.predict --checkpoint student.tflite photos/ --output scores.csv
  python -m mobileiqa_jax.predict --checkpoint ckpt/student 'shots/**/*.png' --output scores.json
  python -m mobileiqa_jax.predict --checkpoint best.pkl photos/ --maps maps/

IMAGES are files (scored whatever their extension), folders (searched
recursively for image extensions, hidden entries skipped) and globs (quoted
globs are expanded here, `**` included). Each row has `path`, `score` and
`error`: a file that cannot be read or decoded gets an error and no score, and
the others are still scored. --output writes CSV or JSON (by its extension)
through a temporary file renamed into place, so it is complete or absent;
without it a table goes to stdout. The input size is the checkpoint's trained
size unless --size says otherwise; a network trained on crops scores each photo
at its own resolution, as the mean over crop-sized tiles (see
`mobileiqa_jax/scoring.py`).

Exit status: 0 every image scored; 2 some could not be (their rows say why);
1 nothing was scored (no checkpoint, no images, bad options).
"""

import argparse
import csv
import glob
import io
import json
import os
import pathlib
import sys
import time
import uuid

import numpy as np

from mobileiqa_jax import host_memory, sizes

# Quality map pictures are drawn at most this many pixels on their long side.
MAP_MAX_SIDE = 1280
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
OUTPUT_FORMATS = (".csv", ".json")
EXIT_OK, EXIT_FATAL, EXIT_SOME_FAILED = 0, 1, 2


def _walk(folder: str) -> list[str]:
  found = []
  for root, dirs, files in os.walk(folder):
    # Hidden entries are thumbnails caches and macOS '._x.jpg' resource forks,
    # which carry image extensions but no image.
    dirs[:] = sorted(d for d in dirs if not d.startswith("."))
    found += [
      os.path.join(root, name)
      for name in sorted(files)
      if not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS
    ]
  return found


def find_images(arguments: list[str]) -> list[str]:
  """Files, folders and globs -> the files to score, in order, each once.

  An argument that is no file, folder or matching glob is kept as it is, so
  that it gets a "no such file" row instead of silently vanishing.
  """
  paths = []
  for argument in arguments:
    if os.path.isdir(argument):
      paths += _walk(argument)
    elif os.path.exists(argument) or not glob.has_magic(argument):
      paths.append(argument)
    else:
      matches = sorted(glob.glob(argument, recursive=True)) or [argument]
      for match in matches:
        paths += _walk(match) if os.path.isdir(match) else [match]
  seen, unique = set(), []
  for path in paths:
    key = os.path.normcase(os.path.abspath(path))
    if key not in seen:
      seen.add(key)
      unique.append(path)
  return unique


def _score_text(score) -> str:
  # repr of the float32 score as a Python float is exact and round-trips.
  return "" if score is None else repr(score)


def format_csv(rows, map_files: dict | None = None) -> str:
  """CSV of (path, score, error) rows; with `map_files` (path -> PNG) a
  `map` column too."""
  buffer = io.StringIO()
  writer = csv.writer(buffer, lineterminator="\n")
  writer.writerow(["path", "score", "error"] + (["map"] if map_files is not None else []))
  for path, score, error, *_ in rows:
    extra = [map_files.get(path, "")] if map_files is not None else []
    writer.writerow([path, _score_text(score), error or ""] + extra)
  return buffer.getvalue()


def format_json(rows, map_files: dict | None = None) -> str:
  """JSON of the same rows as `format_csv`."""
  records = []
  for path, score, error, *_ in rows:
    record = dict(path=path, score=score, error=error)
    if map_files is not None:
      record["map"] = map_files.get(path)
    records.append(record)
  return json.dumps(records, indent=2) + "\n"


def format_table(rows) -> str:
  width = max([len("path")] + [len(path) for path, *_ in rows])
  lines = [f"{'path':<{width}}  {'score':>8}  error"]
  for path, score, error, *_ in rows:
    shown = "-" if score is None else f"{score:.4f}"
    lines.append(f"{path:<{width}}  {shown:>8}  {error or ''}".rstrip())
  return "\n".join(lines) + "\n"


def write_atomically(path, content: str | bytes) -> None:
  """Writes text or bytes to `path` via a temporary file beside it and a rename.

  Readers see the old file or the complete new one, never a part, and an
  interrupted run leaves no output.
  """
  path = pathlib.Path(path)
  # A unique name opened exclusively (not mkstemp, whose 0600 mode the
  # rename would carry over): the file gets the umask's usual permissions.
  temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
  text_mode = {} if isinstance(content, bytes) else dict(encoding="utf-8", newline="")
  try:
    with open(temp, "x" if text_mode else "xb", **text_mode) as f:
      f.write(content)
      f.flush()
      os.fsync(f.fileno())
    os.replace(temp, path)
  finally:
    temp.unlink(missing_ok=True)


def parse_range(text: str) -> tuple[float, float]:
  """'LOW,HIGH' -> (LOW, HIGH) with LOW < HIGH."""
  try:
    low, high = (float(part) for part in text.split(","))
  except ValueError:
    raise argparse.ArgumentTypeError(f"range must be LOW,HIGH, e.g. 0,1; got '{text}'") from None
  if not low < high:
    raise argparse.ArgumentTypeError(f"range must have LOW < HIGH; got '{text}'")
  return low, high


class MapWriter:
  """Draws each scored photo with its quality map into a folder of PNGs.

  A PNG is named after its photo (`a.jpg` -> `a.png`, then `a-2.png` for a
  second `a.*` in the run) and written atomically. Colours span
  `value_range`: the score's range for networks that end in a sigmoid, else
  each photo's own map and score range unless one is given.
  """

  def __init__(self, folder, value_range: tuple[float, float] | None = None):
    self.folder = pathlib.Path(folder)
    self.value_range = value_range
    self.taken: set[str] = set()

  def _name(self, photo_path: str) -> pathlib.Path:
    stem = pathlib.Path(photo_path).stem or "image"
    name, n = f"{stem}.png", 1
    while name.lower() in self.taken:
      n += 1
      name = f"{stem}-{n}.png"
    self.taken.add(name.lower())
    return self.folder / name

  def write(self, row) -> str:
    """A `scoring.MappedResult` with a score -> the PNG's path."""
    # Scoring's imports (JAX) load only once the arguments are known good.
    from PIL import Image  # pylint: disable=g-import-not-at-top

    from mobileiqa_jax import overlay, scoring  # pylint: disable=g-import-not-at-top

    photo = scoring.to_rgb_array(row.path)
    height, width = photo.shape[:2]
    scale = min(1.0, MAP_MAX_SIDE / max(height, width))
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    if size != (height, width):
      photo = np.asarray(Image.fromarray(photo).resize(size[::-1], Image.BILINEAR))
    quality_map = row.quality_map.image(size)
    value_range = self.value_range or overlay.value_range(quality_map, row.score)
    buffer = io.BytesIO()
    overlay.render(photo, quality_map, row.score, value_range).save(buffer, "PNG")
    path = self._name(row.path)
    write_atomically(path, buffer.getvalue())
    return str(path)


class Progress:
  """`done/total, failed, rate, eta` on one carriage-returned stderr line."""

  def __init__(self, total: int, stream=sys.stderr, enabled: bool = True, interval_s: float = 0.2):
    self.total, self.done, self.failed = total, 0, 0
    self.stream, self.enabled, self.interval_s = stream, enabled, interval_s
    self.start = self.shown_at = time.monotonic()

  def update(self, failed: bool):
    self.done += 1
    self.failed += failed
    now = time.monotonic()
    if self.enabled and (now - self.shown_at >= self.interval_s or self.done == self.total):
      self.shown_at = now
      rate = self.done / max(now - self.start, 1e-9)
      eta = int((self.total - self.done) / rate)
      self.stream.write(
        f"\r{self.done}/{self.total} images, {self.failed} failed, "
        f"{rate:.2f}/s, eta {eta // 60}m{eta % 60:02d}s "
      )
      self.stream.flush()

  def close(self):
    if self.enabled and self.done:
      self.stream.write("\n")
      self.stream.flush()


class _Parser(argparse.ArgumentParser):
  """argparse, but usage errors exit 1: 2 means that some images failed."""

  def error(self, message):
    self.print_usage(sys.stderr)
    self.exit(EXIT_FATAL, f"{self.prog}: error: {message}\n")


def _parse(argv):
  parser = _Parser(
    prog="python -m mobileiqa_jax.predict",
    description=__doc__,
    formatter_class=argparse.RawDescriptionHelpFormatter,
  )
  parser.add_argument(
    "--checkpoint",
    required=True,
    help="a model checkpoint, a training workdir, an exported .tflite, or a .pkl/.pth/.pt "
    "state dict of the original PyTorch code (converted in memory)",
  )
  parser.add_argument("images", nargs="+", metavar="IMAGES", help="files, folders or globs")
  parser.add_argument(
    "--output", help="write rows to this .csv or .json (default: a table on stdout)"
  )
  parser.add_argument(
    "--batch-size",
    type=int,
    default=8,
    help="images per JAX call; the last batch is padded (default: 8)",
  )
  parser.add_argument(
    "--size",
    type=sizes.parse_size,
    help="HEIGHTxWIDTH to resize to (default: the checkpoint's trained size; "
    "1231x1907 for converted checkpoints)",
  )
  parser.add_argument(
    "--keep-aspect",
    action="store_true",
    help="fit inside the size keeping the aspect ratio, padded with the "
    "ImageNet mean colour (default: stretch, as in training)",
  )
  parser.add_argument(
    "--max-tiles",
    type=int,
    default=64,
    help="networks trained on crops score a photo as the mean over tiles at its "
    "own resolution: at most this many, spread over the photo (0: every tile; "
    "default: 64)",
  )
  parser.add_argument(
    "--maps",
    metavar="FOLDER",
    help="also write each photo's quality map (the photo tinted from red, low quality, "
    "to blue, high, with a colour bar and the score) as a PNG into FOLDER, created if "
    "needed; the rows get a 'map' column naming it",
  )
  parser.add_argument(
    "--map-range",
    type=parse_range,
    help="LOW,HIGH the map colours span (default: 0,1 for networks whose scores "
    "end in a sigmoid, else each photo's own range)",
  )
  parser.add_argument(
    "--progress",
    action=argparse.BooleanOptionalAction,
    default=None,
    help="show a progress line on stderr (default: when stderr is a terminal)",
  )
  args = parser.parse_args(argv)
  if args.batch_size < 1:
    parser.error("--batch-size must be at least 1")
  if args.max_tiles < 0:
    parser.error("--max-tiles must be 0 (every tile) or more")
  if args.output:
    output = pathlib.Path(args.output)
    if output.suffix.lower() not in OUTPUT_FORMATS:
      parser.error(f"--output must end in {' or '.join(OUTPUT_FORMATS)}, got '{args.output}'")
    # Checked now rather than after an hour of scoring.
    if not output.parent.is_dir():
      parser.error(f"--output: folder '{output.parent}' does not exist")
  if args.maps:
    maps = pathlib.Path(args.maps)
    if maps.exists() and not maps.is_dir():
      parser.error(f"--maps: '{maps}' is a file, not a folder")
    if not maps.parent.is_dir():
      parser.error(f"--maps: folder '{maps.parent}' does not exist")
  elif args.map_range:
    parser.error("--map-range needs --maps")
  return args


def main(argv=None) -> int:
  args = _parse(argv)
  paths = find_images(args.images)
  if not paths:
    print(f"error: no images found in {' '.join(args.images)}", file=sys.stderr)
    return EXIT_FATAL
  # JAX and the checkpoint code load only once the arguments are known good.
  from mobileiqa_jax import scoring  # pylint: disable=g-import-not-at-top

  try:
    scorer = scoring.Scorer.from_checkpoint(
      args.checkpoint,
      size=args.size,
      keep_aspect=args.keep_aspect,
      batch_size=args.batch_size,
      max_tiles=args.max_tiles,
    )
  except (FileNotFoundError, ValueError) as error:
    print(f"error: {error}", file=sys.stderr)
    return EXIT_FATAL
  except ImportError as error:
    print(
      f"error: {error}; .tflite files need the export extra: pip install -e '.[export]'",
      file=sys.stderr,
    )
    return EXIT_FATAL
  print(f"scoring {len(paths)} image(s) with {scorer.description}", file=sys.stderr)

  progress = Progress(
    len(paths), enabled=sys.stderr.isatty() if args.progress is None else args.progress
  )
  rows, map_writer, map_files = [], None, None
  if args.maps:
    try:
      scorer.check_maps()
    except ValueError as error:
      print(f"error: {error}", file=sys.stderr)
      return EXIT_FATAL
    pathlib.Path(args.maps).mkdir(exist_ok=True)
    map_writer, map_files = MapWriter(args.maps, args.map_range or scorer.score_range), {}
  try:
    for row in scorer.iter_score_files(paths, maps=bool(args.maps)):
      rows.append(row)
      if map_writer and row.error is None:
        map_files[row.path] = map_writer.write(row)
      progress.update(failed=row.error is not None)
  finally:
    progress.close()

  failed = [row for row in rows if row.error is not None]
  if map_writer:
    print(f"wrote {len(map_files)} quality map(s) to {args.maps}", file=sys.stderr)
  if args.output:
    json_out = pathlib.Path(args.output).suffix.lower() == ".json"
    write_atomically(args.output, (format_json if json_out else format_csv)(rows, map_files))
    print(f"wrote {len(rows)} row(s) to {args.output}", file=sys.stderr)
  else:
    sys.stdout.write(format_table(rows))
  if failed:
    print(
      f"{len(failed)} of {len(rows)} image(s) could not be scored, e.g. {failed[0].path}: "
      f"{failed[0].error}",
      file=sys.stderr,
    )
    return EXIT_SOME_FAILED
  return EXIT_OK


def cli():
  """`python -m mobileiqa_jax.predict` and `mobileiqa-predict`, restarted with
  huge pages first (host_memory: the full-size networks' temporaries)."""
  host_memory.restart_with_huge_pages()
  sys.exit(main())


if __name__ == "__main__":
  cli()
