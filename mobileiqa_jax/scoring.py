"""Scoring photos with a trained network: the `Scorer` API.

  from mobileiqa_jax import Scorer
  scorer = Scorer.from_checkpoint("runs/student")        # or "student.tflite"
  scores = scorer.score(["a.jpg", "b.png"])              # np.ndarray, shape (2,)
  rows = scorer.score_files(paths)                       # [(path, score | None, error | None)]

Every input takes the evaluation pipeline's steps: decode to upright 8-bit RGB
(`data/decode.py`), a bicubic resize to the model's input size and ImageNet
normalisation (`data/preprocess.py`), so a photo scores as it did in training's
evaluation.

Networks trained on crops (data.crop) instead score a photo
of any size at its own resolution: the mean over crop-sized tiles on an even
grid that covers it (`data/tiles.py`), exactly as their evaluation scores an
image. `max_tiles` caps the tiles of a large photo (default 64, spread over
the whole photo; 0 scores every tile of the covering grid).

The input size. The networks run at any size (the heads pool to a fixed grid),
but a score is calibrated only at the size the network was trained at, because
the backbone sees blur and noise at that scale. So:
  - a training workdir: its config.json's `data.height` x `data.width`;
  - a model checkpoint from `python -m mobileiqa_jax.convert`, or the
    original code's .pkl/.pth/.pt state dict (its network recognised from its
    keys and converted in memory): they record no size, so the paper's
    UHD-IQA size 1231x1907, the size the released MobileIQA weights were
    trained at;
  - a .tflite: its fixed input shape (also in the JSON beside it);
and `size=(H, W)` overrides the first two (a .tflite refuses any other size).

Aspect ratio. Training resizes every image to the fixed size whatever its
shape, so the default does the same: scores then match evaluation. With
`keep_aspect=True` the image is scaled to fit inside the size, keeping its
shape, and centred on a border of the ImageNet mean colour. That colour is
(almost exactly) zero after normalisation, the value the convolutions' own
zero padding shows at every image edge, so the border adds no texture and no
colour cast. It is still content the network never saw in training (a flat
area reads as smooth), so letterboxed scores are comparable with each other,
not with stretched ones; use it for sets that mix portrait and landscape.
"""

import collections
from collections.abc import Callable, Iterable, Iterator
from concurrent import futures
import functools
import json
import os
import pathlib
from typing import NamedTuple

import jax
import numpy as np
from PIL import Image, ImageOps

from mobileiqa_jax import checkpoints, models, xla_options
from mobileiqa_jax.data import datasets, decode, preprocess, tiles
from mobileiqa_jax.quality_map import QualityMap

# What converted checkpoints, which carry no size, are scored at.
PAPER_SIZE = datasets.DATASETS["uhd_iqa"].size
# The letterbox border: the ImageNet mean in 0..255, i.e. ~0 once normalised.
PAD_RGB = tuple(round(255 * m) for m in preprocess.IMAGENET_MEAN)
# Failures that belong to one input (unreadable, not an image, too large) and
# become its error row; anything else is a bug or the model's and propagates.
INPUT_ERRORS = (OSError, ValueError, MemoryError)
_DECODE_THREADS = min(4, os.cpu_count() or 1)
_END = object()  # marks an exhausted input iterator


def to_rgb_array(item) -> np.ndarray:
  """A path, encoded bytes, PIL image or array -> upright (H, W, 3) uint8 RGB.

  Paths and bytes are decoded exactly as the datasets are (EXIF orientation,
  16-bit, CMYK, palette, alpha dropped). PIL images get the same conversion,
  so `Image.open(p)` scores as `p`. Arrays must be uint8: (H, W, 3), (H, W, 4)
  (alpha dropped) or grayscale (H, W) / (H, W, 1).

  Raises:
    decode.BadImageError: a file or bytes that do not decode.
    OSError: a file that cannot be read.
    ValueError: an array of another dtype or shape.
    TypeError: anything else.
  """
  if isinstance(item, (str, os.PathLike)):
    return decode.decode_rgb(pathlib.Path(item).read_bytes(), str(item))
  if isinstance(item, (bytes, bytearray)):
    return decode.decode_rgb(bytes(item))
  if isinstance(item, Image.Image):
    # exif_transpose drops the orientation tag once applied, so an image the
    # caller already turned upright is left as it is.
    # pylint: disable-next=protected-access
    return np.asarray(decode.to_rgb(ImageOps.exif_transpose(item)))
  if isinstance(item, np.ndarray):
    if item.dtype != np.uint8:
      # A float array could be 0..1 or 0..255; guessing would shift every score.
      raise ValueError(f"image arrays must be uint8 RGB in 0..255, got {item.dtype}")
    if item.ndim == 2:
      item = item[..., None]
    if item.ndim != 3 or item.shape[-1] not in (1, 3, 4):
      raise ValueError(f"image arrays must be (H, W, 3) RGB, got shape {item.shape}")
    if item.shape[-1] == 1:
      item = np.repeat(item, 3, axis=-1)
    return np.ascontiguousarray(item[..., :3])
  raise TypeError(
    f"cannot score a {type(item).__name__}: pass a path, bytes, "
    "a PIL image or a uint8 (H, W, 3) array"
  )


def _letterbox(h: int, w: int, height: int, width: int) -> tuple[int, int, int, int]:
  """Where an h x w image lands letterboxed in height x width: (top, left,
  inner_h, inner_w)."""
  scale = min(height / h, width / w)
  inner_h = min(height, max(1, round(h * scale)))
  inner_w = min(width, max(1, round(w * scale)))
  return (height - inner_h) // 2, (width - inner_w) // 2, inner_h, inner_w


def fit(image: np.ndarray, height: int, width: int, keep_aspect: bool = False) -> np.ndarray:
  """(H, W, 3) uint8 -> (height, width, 3) uint8, stretched or letterboxed.

  See the module docstring for why these two policies.
  """
  if not keep_aspect:
    return preprocess.resize_bicubic(image, height, width)
  top, left, inner_h, inner_w = _letterbox(*image.shape[:2], height, width)
  out = np.empty((height, width, 3), np.uint8)
  out[...] = PAD_RGB
  out[top : top + inner_h, left : left + inner_w] = preprocess.resize_bicubic(
    image, inner_h, inner_w
  )
  return out


def _trained_data(path) -> tuple[dict, pathlib.Path]:
  """The data config of the training run at `path` ({} when it has no
  config.json, as converted checkpoints do), and the file it came from."""
  config_file = pathlib.Path(path) / "config.json"
  if not config_file.is_file():
    return {}, config_file
  return json.loads(config_file.read_text()).get("data", {}), config_file


def trained_size(path) -> tuple[tuple[int, int], str]:
  """((height, width), where it came from) for the checkpoint at `path`."""
  data, config_file = _trained_data(path)
  if "height" in data and "width" in data:
    return (int(data["height"]), int(data["width"])), f"trained size, from {config_file}"
  return tuple(PAPER_SIZE), "the paper's UHD-IQA size (the checkpoint records none)"


def trained_tiles(path) -> tuple[int, int] | None:
  """The (h, w) crops the run at `path` trained on (its config.json's
  data.crop), or None: it trained on whole images, or records nothing."""
  crop = _trained_data(path)[0].get("crop")
  return (int(crop[0]), int(crop[1])) if crop else None


def _apply_scores(module, variables, images):
  scores, _ = module.apply(variables, images, train=False)
  return scores


def _apply_scores_and_maps(module, variables, images):
  scores, taps = module.apply(variables, images, train=False)
  return scores, taps["quality_map"]


@functools.cache
def _jax_call(with_maps: bool):
  # Built on first use, once the backend (which chooses the compiler options)
  # is up. The module is a static argument (linen modules hash by their
  # fields), so every Scorer of the same network and batch shape shares one
  # compilation.
  return xla_options.jit(_apply_scores_and_maps if with_maps else _apply_scores, static_argnums=0)


class _Backend:
  """uint8 (n, H, W, 3) -> scores (n,), and with `with_maps` the quality map
  cells too; subclasses run the network in `_run`."""

  def _run(self, images: np.ndarray, with_maps: bool):
    raise NotImplementedError

  def __call__(self, images: np.ndarray) -> np.ndarray:
    return self._run(images, with_maps=False)

  def with_maps(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (n, H, W, 3) -> scores (n,) and quality map cells (n, M, M)."""
    return self._run(images, with_maps=True)


class JaxBackend(_Backend):
  """uint8 batches -> scores (and quality maps) with a Flax module, one
  compiled batch shape."""

  def __init__(self, module, variables, batch_size: int):
    self.module = module
    self.variables = jax.device_put(variables)
    self.batch_size = batch_size
    self.map_geometry = (module.grid, module.head_pool)
    self.score_range = (0.0, 1.0) if module.sigmoid else None

  def _run(self, images: np.ndarray, with_maps: bool):
    count = len(images)
    # A short last batch is padded to the full batch, so it reuses the
    # compilation instead of triggering another.
    batch = np.zeros((self.batch_size,) + images.shape[1:], np.float32)
    batch[:count] = preprocess.normalise(images)
    out = _jax_call(with_maps)(self.module, self.variables, batch)
    return jax.tree.map(lambda x: np.asarray(x, np.float32)[:count], out)


class TFLiteBackend(_Backend):
  """uint8 images -> scores with a LiteRT interpreter, one image at a time.

  The file's input is fixed at batch 1. Whether it takes raw uint8 pixels or
  ImageNet-normalised float32 comes from the JSON the export writes beside it;
  without that file the input dtype says the same (the export writes only
  those two kinds), and where both exist they must agree.
  """

  def __init__(self, path, num_threads: int | None = None):
    # LiteRT belongs to the optional `export` extra.
    from mobileiqa_jax.export import verify  # pylint: disable=g-import-not-at-top

    path = pathlib.Path(path)
    if not path.is_file():
      raise FileNotFoundError(f"{path}: no such .tflite file")
    self.interpreter = verify.make_interpreter(path, num_threads)
    self._invoke_each = functools.partial(verify.invoke_each, self.interpreter)
    (self.input,) = self.interpreter.get_input_details()
    try:
      self.output, self.map_output = verify.score_and_map_outputs(self.interpreter)
    except ValueError as error:
      raise ValueError(f"{path}: {error}") from None
    shape = tuple(int(d) for d in self.input["shape"])
    if len(shape) != 4 or shape[0] != 1 or shape[3] != 3:
      raise ValueError(f"{path}: expected a (1, H, W, 3) input, found {shape}")
    self.size = shape[1:3]
    self.raw_pixels = np.dtype(self.input["dtype"]) == np.uint8
    self.sidecar = path.with_suffix(".json")
    self.model_name = None
    self.tiles = None
    self.map_geometry = None  # (grid, pool), from the JSON of an export with a map
    self.score_range = None
    if self.sidecar.is_file():
      self._check_sidecar(json.loads(self.sidecar.read_text()), shape)

  def _check_sidecar(self, report: dict, shape: tuple[int, ...]):
    described = report.get("input", {})
    kind = described.get("kind")
    if kind not in ("uint8", "float32"):
      raise ValueError(f"{self.sidecar}: unknown input kind {kind!r}")
    if (kind == "uint8") != self.raw_pixels or list(described.get("shape", shape)) != list(shape):
      raise ValueError(
        f"{self.sidecar} describes a {kind} {described.get('shape')} input but the "
        f"model takes {np.dtype(self.input['dtype'])} {list(shape)}; "
        "is it the JSON of another export?"
      )
    for field, expected in (("mean", preprocess.IMAGENET_MEAN), ("std", preprocess.IMAGENET_STD)):
      if not np.allclose(described.get(field, expected), expected):
        raise ValueError(
          f"{self.sidecar}: input {field} {described[field]} is not ImageNet's, "
          "which is the only normalisation the networks are trained with"
        )
    self.model_name = report.get("model")
    described_map = report.get("quality_map")
    if (described_map is not None) != (self.map_output is not None):
      raise ValueError(
        f"{self.sidecar} and the model disagree on a quality map output; "
        "is it the JSON of another export?"
      )
    if described_map:
      self.map_geometry = (int(described_map["grid"]), int(described_map["pool"]))
    fields = {**models.PRESETS.get(self.model_name, {}), **report.get("overrides", {})}
    if fields.get("sigmoid"):
      self.score_range = (0.0, 1.0)
    if report.get("tiles"):
      self.tiles = tuple(int(t) for t in report["tiles"])
      if self.tiles != self.size:
        raise ValueError(f"{self.sidecar}: tiles {self.tiles} but the input is {self.size}")

  def _run(self, images: np.ndarray, with_maps: bool):
    inputs = images if self.raw_pixels else preprocess.normalise(images)
    return self._invoke_each(inputs, self.output, self.map_output if with_maps else None)


class Result(NamedTuple):
  """One scored input: `score` is None exactly when `error` says why."""

  path: str
  score: float | None
  error: str | None


class MappedResult(NamedTuple):
  """A `Result` with the input's quality map (None with the error)."""

  path: str
  score: float | None
  error: str | None
  quality_map: QualityMap | None


class _Views(NamedTuple):
  """What the network scores of one input, and where on it each view lies."""

  views: np.ndarray  # (n, h, w, 3) uint8
  boxes: np.ndarray  # (n, 4) (top, left, height, width) in the input's pixels
  image_size: tuple[int, int]


def _tiling(max_tiles: int) -> str:
  limit = f"at most {max_tiles}" if max_tiles else "all"
  return f"photos tiled at their own resolution ({limit} tiles, scores averaged)"


class Scorer:
  """Scores images with a checkpoint or a .tflite; build with `from_checkpoint`."""

  def __init__(
    self,
    backend: Callable[[np.ndarray], np.ndarray],
    size: tuple[int, int],
    *,
    keep_aspect: bool = False,
    batch_size: int = 8,
    description: str = "",
    tiled: bool = False,
    max_tiles: int = 64,
  ):
    """Wraps `backend`, which maps uint8 (n, H, W, 3) with n <= batch_size to scores (n,).

    `size` is what the backend takes: whole images are resized to it, or,
    with `tiled`, images are cut into tiles of that size (at most
    `max_tiles`, 0: all) and score as the tiles' mean.
    """
    if batch_size < 1:
      raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if max_tiles < 0:
      raise ValueError(f"max_tiles must be 0 (no limit) or more, got {max_tiles}")
    if tiled and keep_aspect:
      raise ValueError(
        "keep_aspect letterboxes a resized image, but this network scores photos "
        "in tiles at their own resolution; drop keep_aspect, or pass a size to resize"
      )
    self.backend = backend
    self.size = tuple(size)
    self.keep_aspect = keep_aspect
    self.batch_size = batch_size
    self.description = description
    self.tiled = tiled
    self.max_tiles = max_tiles

  @classmethod
  def from_checkpoint(
    cls,
    path,
    size: tuple[int, int] | None = None,
    keep_aspect: bool = False,
    batch_size: int = 8,
    max_tiles: int = 64,
  ) -> "Scorer":
    """A Scorer for a model checkpoint, a training workdir or a .tflite file.

    Args:
      path: a checkpoint directory (`load_model` reads it) or a `.tflite`.
      size: (height, width) to resize to; default: the trained size (see the
        module docstring). A crop-trained run scores in tiles unless a size
        is given.
      keep_aspect: letterbox instead of stretching.
      batch_size: images (or tiles) per compiled JAX call (the last batch is
        padded); also how many a .tflite scorer decodes at a time.
      max_tiles: a crop-trained network's tiles per photo at most (0: all).

    Raises:
      FileNotFoundError: nothing to load at `path`.
      ValueError: a .tflite with a different input size than `size`, or a
        JSON beside it that does not match it.
    """
    aspect = "letterboxed" if keep_aspect else "stretched"
    if str(path).endswith(".tflite"):
      backend = TFLiteBackend(path)
      if size is not None and tuple(size) != backend.size:
        raise ValueError(
          f"{path} takes {backend.size[0]}x{backend.size[1]} images only, "
          f"not {size[0]}x{size[1]}; export it again at that size"
        )
      kind = "uint8" if backend.raw_pixels else "float32"
      name = backend.model_name or "model"
      tiled = backend.tiles is not None and size is None
      how = _tiling(max_tiles) if tiled else aspect
      description = (
        f"{name} from {path} (TFLite, {kind} input) at {backend.size[0]}x{backend.size[1]}, {how}"
      )
      return cls(
        backend,
        backend.size,
        keep_aspect=keep_aspect,
        batch_size=batch_size,
        description=description,
        tiled=tiled,
        max_tiles=max_tiles,
      )
    module, variables, metadata = checkpoints.load_model(path)
    crop = trained_tiles(path)
    tiled = crop is not None and size is None
    if tiled:
      size, origin, how = crop, "the crops it trained on", _tiling(max_tiles)
    elif size is None:
      (size, origin), how = trained_size(path), aspect
    else:
      origin, how = "as asked", aspect
    description = (
      f"{metadata['model']} from {path} (JAX) at {size[0]}x{size[1]} ({origin}), "
      f"{how}, batches of {batch_size}"
    )
    return cls(
      JaxBackend(module, variables, batch_size),
      size,
      keep_aspect=keep_aspect,
      batch_size=batch_size,
      description=description,
      tiled=tiled,
      max_tiles=max_tiles,
    )

  def in_tiles(self, max_tiles: int = 0) -> "Scorer":
    """The same network scoring photos as a crop-trained one does: tiles of
    its input size at the photo's own resolution (at most `max_tiles`, 0:
    every tile of the covering grid), their mean the score."""
    return type(self)(
      self.backend,
      self.size,
      batch_size=self.batch_size,
      description=f"{self.description}; here in tiles of that size",
      tiled=True,
      max_tiles=max_tiles,
    )

  def prepare(self, item) -> np.ndarray:
    """One input -> what the network sees (uint8, before normalisation): the
    (H, W, 3) resized image, or its (tiles, h, w, 3) tiles when tiled."""
    prepared = self._prepare(item)
    return prepared.views if self.tiled else prepared.views[0]

  def views(self, item) -> np.ndarray:
    """`prepare`, always as a stack (views, h, w, 3) whose mean score is the input's."""
    return self._prepare(item).views

  def _prepare(self, item) -> _Views:
    image = to_rgb_array(item)
    image_h, image_w = image.shape[:2]
    height, width = self.size
    if not self.tiled:
      view = fit(image, height, width, keep_aspect=self.keep_aspect)
      box = (0.0, 0.0, image_h, image_w)
      if self.keep_aspect:  # the view reaches past the photo by the border
        top, left, inner_h, inner_w = _letterbox(image_h, image_w, height, width)
        scale_h, scale_w = image_h / inner_h, image_w / inner_w
        box = (-top * scale_h, -left * scale_w, height * scale_h, width * scale_w)
      return _Views(view[None], np.asarray([box]), (image_h, image_w))
    enlarged = tiles.enlarge_to_hold(image, height, width, preprocess.resize_bicubic)
    scale_h, scale_w = image_h / enlarged.shape[0], image_w / enlarged.shape[1]
    views = tiles.cut(enlarged, height, width, self.max_tiles)
    corners = tiles.grid(*enlarged.shape[:2], height, width, self.max_tiles)  # where cut cut
    boxes = [(top * scale_h, x * scale_w, height * scale_h, width * scale_w) for top, x in corners]
    return _Views(views, np.asarray(boxes), (image_h, image_w))

  def _score_views(self, prepared: list[_Views], maps: bool = False):
    """Each input's views -> its score, the mean over them (and with `maps`
    its QualityMap); the views of several inputs share backend calls of up
    to batch_size."""
    flat = np.concatenate([p.views for p in prepared])
    call = self._map_backend() if maps else self.backend
    outputs = [call(flat[i : i + self.batch_size]) for i in range(0, len(flat), self.batch_size)]
    if maps:
      scores, cells = (np.concatenate(parts) for parts in zip(*outputs))
    else:
      scores = np.concatenate(outputs)
    ends = np.cumsum([len(p.views) for p in prepared])[:-1]
    means = np.asarray([part.mean() for part in np.split(scores, ends)], np.float32)
    if not maps:
      return means
    grid, pool = self.backend.map_geometry
    quality_maps = [
      QualityMap(part, p.boxes, p.image_size, grid, pool)
      for part, p in zip(np.split(cells, ends), prepared)
    ]
    return means, quality_maps

  @property
  def score_range(self) -> tuple[float, float] | None:
    """(0, 1) for a network whose scores end in a sigmoid, else None."""
    return getattr(self.backend, "score_range", None)

  def check_maps(self):
    """Raises ValueError unless the backend gives quality maps."""
    if getattr(self.backend, "map_geometry", None) is None:
      raise ValueError(
        f"{self.description or 'this backend'} gives no quality maps; use a JAX checkpoint, "
        "or a .tflite exported with export.quality_map=True beside its JSON (which "
        "says where the cells lie)"
      )

  def _map_backend(self):
    self.check_maps()
    return self.backend.with_maps

  def score(self, inputs, maps: bool = False):
    """Scores of one input or a list of them, as float32 of shape (N,).

    An input is a path, encoded bytes, a PIL image or a uint8 (H, W, 3)
    array; a (N, H, W, 3) array is N inputs. With `maps`, returns
    (scores, [QualityMap per input]) (see `mobileiqa_jax.quality_map`).

    Raises:
      decode.BadImageError, OSError, ValueError, TypeError: an input that
        cannot be read (`score_files` reports those per file instead).
    """
    if isinstance(inputs, (str, bytes, os.PathLike, Image.Image)) or (
      isinstance(inputs, np.ndarray) and inputs.ndim <= 3
    ):
      inputs = [inputs]
    scores, quality_maps = [], []
    for chunk in self._batches(inputs):
      for _, prepared in chunk:
        if isinstance(prepared, BaseException):
          raise prepared
      out = self._score_views([prepared for _, prepared in chunk], maps)
      scores.append(out[0] if maps else out)
      quality_maps += out[1] if maps else []
    scores = np.concatenate(scores) if scores else np.zeros((0,), np.float32)
    return (scores, quality_maps) if maps else scores

  def iter_score_files(self, paths: Iterable, maps: bool = False) -> Iterator[Result]:
    """Yields a `Result` per path, in order, a batch at a time; with `maps`
    a `MappedResult`, the same with the path's QualityMap.

    A file that cannot be read or decoded gets its error and no score; the
    others are scored as usual.
    """
    for chunk in self._batches(paths):
      good = [prepared for _, prepared in chunk if not isinstance(prepared, BaseException)]
      scores, quality_maps = [], []
      if good:
        out = self._score_views(good, maps)
        scores, quality_maps = out if maps else (out, [])
      scores, quality_maps = iter(scores), iter(quality_maps)
      for path, prepared in chunk:
        failed = isinstance(prepared, BaseException)
        row = (
          (str(path), None, str(prepared) or type(prepared).__name__)
          if failed
          else (str(path), float(next(scores)), None)
        )
        if maps:
          yield MappedResult(*row, None if failed else next(quality_maps))
        else:
          yield Result(*row)

  def score_files(self, paths: Iterable, maps: bool = False) -> list[Result]:
    """`iter_score_files` as a list of (path, score or None, error or None)
    (and the quality map, with `maps`)."""
    return list(self.iter_score_files(paths, maps))

  def _prepare_or_error(self, item):
    try:
      return self._prepare(item)
    except INPUT_ERRORS as error:
      return error

  def _batches(self, items: Iterable) -> Iterator[list[tuple]]:
    """Chunks of up to `batch_size` (item, its views or the error preparing it).

    Decoding and resizing run on threads (PIL releases the GIL for both) up
    to two batches ahead, so they overlap the network; the bound keeps at
    most that many full-size images in memory however many files there are.
    """
    ahead = 2 * self.batch_size
    with futures.ThreadPoolExecutor(_DECODE_THREADS) as pool:
      pending = collections.deque()
      chunk = []
      items = iter(items)
      while True:
        while len(pending) < ahead:
          item = next(items, _END)
          if item is _END:
            break
          pending.append((item, pool.submit(self._prepare_or_error, item)))
        if not pending:
          break
        item, future = pending.popleft()
        chunk.append((item, future.result()))
        if len(chunk) == self.batch_size:
          yield chunk
          chunk = []
      if chunk:
        yield chunk
