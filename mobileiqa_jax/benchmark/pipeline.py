"""Input rows: the input pipeline and the synthetic generator.

Pipeline (`pipeline:HxW`): UHD-IQA-like 3840x2160 JPEGs, written to a
temporary folder and read as a CSV dataset, through the training loader:
decode, bicubic resize to HxW, flips and batching of uint8 pixels (the
steps normalise on the device), with 2 grain workers. Stored
(`pipeline_stored:HxW`): the same images as a set built with
`--store_size HxW` holds them (resized once, lossless PNG), through the same
loader, whose resize is then a copy. Generator (`generator:HxW`):
`synthetic.source.generate` in one process.
"""

import pathlib
import tempfile
import time

import numpy as np
from PIL import Image

from mobileiqa_jax.data import config, decode, pipeline, preprocess
from mobileiqa_jax.data.synthetic import scenes
from mobileiqa_jax.data.synthetic import source as synthetic_source


def _write_set(
  folder: pathlib.Path, count: int, height: int, width: int, stored_size=None
) -> pathlib.Path:
  """`count` photo-like HxW JPEGs, or with stored_size those images as a
  `--store_size` build keeps them (resized, PNG), and a CSV listing them;
  returns the CSV."""
  lines = ["path,mos"]
  for i in range(count):
    # Rendering at full 4K is slow; a quarter-size scene upscaled still
    # gives the decoder a realistic 4K JPEG to chew on.
    small = scenes.render_scene(np.random.default_rng(i), max(16, height // 4), max(16, width // 4))
    image = Image.fromarray((small * 255).astype(np.uint8)).resize((width, height), Image.BICUBIC)
    name = f"{i}.png" if stored_size else f"{i}.jpg"
    if stored_size:
      resized = preprocess.resize_bicubic(np.asarray(image), *stored_size)
      (folder / name).write_bytes(decode.encode_png(resized))
    else:
      image.save(folder / name, "JPEG", quality=90)
    lines.append(f"{name},{i / max(1, count - 1):.4f}")
  (folder / "set.csv").write_text("\n".join(lines) + "\n")
  return folder / "set.csv"


def pipeline_images_per_second(
  csv_path: pathlib.Path, *, height: int, width: int, workers: int, batch: int, batches: int
) -> float:
  """Images/s of the training loader over a CSV dataset, after one warm-up batch."""
  cfg = config.get_config()
  cfg.name, cfg.csv, cfg.csv_mos_range, cfg.split = "csv", str(csv_path), (0.0, 1.0), "random"
  cfg.test_fraction, cfg.validation_fraction = 0.01, 0.0
  cfg.height, cfg.width, cfg.num_workers = height, width, workers
  loader = pipeline.make_loader(
    cfg, "train", global_batch_size=batch, train=True, seed=0, process_index=0, process_count=1
  )
  iterator = iter(loader)
  for _ in range(max(1, workers)):
    next(iterator)  # worker start-up is not throughput
  start = time.perf_counter()
  for _ in range(batches):
    next(iterator)
  return batches * batch / (time.perf_counter() - start)


def synthetic_images_per_second(height: int, width: int, seconds: float) -> float:
  """Images/s of the synthetic generator in one process."""
  synthetic_source.generate(0, "train", 0, height, width)  # warm caches
  count, start = 0, time.perf_counter()
  while time.perf_counter() - start < seconds or count < 2:
    synthetic_source.generate(0, "train", count + 1, height, width)
    count += 1
  return count / (time.perf_counter() - start)


# The row's defaults: UHD-IQA-like 4K JPEGs into the paper's input size.
SOURCE_SIZE = (2160, 3840)
WORKERS, BATCH, FILES, BATCHES = 2, 4, 12, 12


def measure_pipeline(height: int, width: int, smoke: bool = False, stored: bool = False) -> dict:
  """The `pipeline:HxW` row: images/s of the training loader from 4K JPEGs;
  with `stored`, the `pipeline_stored:HxW` row, from the stored form."""
  source, files, batches = ((96, 160), 4, 2) if smoke else (SOURCE_SIZE, FILES, BATCHES)
  with tempfile.TemporaryDirectory() as folder:
    csv_path = _write_set(
      pathlib.Path(folder), files, *source, stored_size=(height, width) if stored else None
    )
    rate = pipeline_images_per_second(
      csv_path, height=height, width=width, workers=WORKERS, batch=BATCH, batches=batches
    )
  form = f"stored {width}x{height} PNG" if stored else f"{source[1]}x{source[0]} JPEG"
  return {
    "height": height,
    "width": width,
    "images_per_s": rate,
    # grain's workers each take a core; the loader's own thread is light.
    "images_per_s_per_core": rate / WORKERS,
    "what": f"{form} -> {width}x{height}, {WORKERS} workers, batch {BATCH}",
  }


def measure_stored_pipeline(height: int, width: int, smoke: bool = False) -> dict:
  """The `pipeline_stored:HxW` row (see `measure_pipeline`)."""
  return measure_pipeline(height, width, smoke, stored=True)


def measure_generator(height: int, width: int, smoke: bool = False) -> dict:
  """The `generator:HxW` row: images/s of the synthetic generator, one process."""
  rate = synthetic_images_per_second(height, width, 0.2 if smoke else 10.0)
  return {"height": height, "width": width, "images_per_s": rate, "what": "1 process"}
