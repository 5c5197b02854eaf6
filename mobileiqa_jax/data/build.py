"""Builds a public IQA set into ArrayRecord files the pipeline reads.

  python -m mobileiqa_jax.data.build --dataset koniq10k \
      --manual_dir ~/downloads/koniq10k --data_dir ~/tensorflow_datasets
  # the same set stored at its training size (lossless PNG): read with
  # --config.data.stored_size="(512,512)"; no decoding of large originals per epoch
  python -m mobileiqa_jax.data.build --dataset koniq10k --store_size 512x512 ...

Each builder's MANUAL_DOWNLOAD_INSTRUCTIONS says where to get the files and
which folder layout it expects (`--dataset NAME --help_layout` prints them).
"""

import argparse
import pathlib
import sys

from etils import epath
import tensorflow_datasets as tfds

from mobileiqa_jax import sizes
from mobileiqa_jax.data import datasets
from mobileiqa_jax.data.builders import common


def data_dir_path(data_dir: str) -> str:
  """`data_dir` with `~` expanded and any URL scheme kept: a pod reads its sets
  from gs://BUCKET/tfds, which pathlib would turn into gs:/BUCKET/tfds."""
  return str(epath.Path(data_dir).expanduser())


def load_builder(name: str, data_dir: str, stored_size=None) -> common.IqaBuilder:
  """The builder of an already built set (stored_size: of the form stored at
  that (H, W), `IqaBuilder`), or an error saying how to build it."""
  cls = datasets.builder_class(name)
  builder = cls(data_dir=data_dir_path(data_dir), stored_size=stored_size)
  if not builder.is_prepared():
    store = f" --store_size {stored_size[0]}x{stored_size[1]}" if stored_size else ""
    raise common.MissingDataError(
      f"dataset {name!r} is not built: expected it under {builder.data_dir}. Build it with\n"
      f"  python -m mobileiqa_jax.data.build --dataset {name}{store} --manual_dir PATH "
      f"--data_dir {data_dir}\nwhere PATH holds the files described here:\n"
      f"{cls.MANUAL_DOWNLOAD_INSTRUCTIONS}"
    )
  return builder


def build(
  name: str, manual_dir: str, data_dir: str, *, skip_bad_images: bool = False, stored_size=None
) -> common.IqaBuilder:
  """Builds (or reuses) the ArrayRecord files of a public set.

  Args:
    name: one of datasets.PUBLIC.
    manual_dir: the folder holding the owner's files, in the layout the
      builder's MANUAL_DOWNLOAD_INSTRUCTIONS describe.
    data_dir: the TFDS data_dir to write to (the pipeline's `data_dir`).
    skip_bad_images: leave out unreadable images (counted in
      `builder.info.metadata['skipped_images']`) instead of failing.
    stored_size: None keeps the files as distributed; (H, W) stores every
      image resized to it, losslessly (`common.IqaBuilder`).

  Returns:
    The prepared builder.
  """
  cls = datasets.builder_class(name)
  manual = pathlib.Path(manual_dir).expanduser()
  # TFDS would fail on a missing folder with a generic assertion; say what
  # was expected and how to get it.
  common.require(manual, f"the manually downloaded {name} files", cls.MANUAL_DOWNLOAD_INSTRUCTIONS)
  builder = cls(
    data_dir=data_dir_path(data_dir),
    skip_bad_images=skip_bad_images,
    stored_size=stored_size,
    file_format="array_record",
  )
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual))
  return builder


def _parse(argv):
  parser = argparse.ArgumentParser(
    prog="python -m mobileiqa_jax.data.build",
    description=__doc__,
    formatter_class=argparse.RawDescriptionHelpFormatter,
  )
  parser.add_argument("--dataset", required=True, choices=sorted(datasets.PUBLIC))
  parser.add_argument("--manual_dir", help="folder with the owner's files")
  parser.add_argument("--data_dir", default="~/tensorflow_datasets", help="where to write the set")
  parser.add_argument(
    "--skip_bad_images", action="store_true", help="skip and count unreadable images"
  )
  parser.add_argument(
    "--store_size",
    type=sizes.parse_size,
    metavar="HxW",
    help="store every image resized to HxW as lossless PNG (its training size), "
    "instead of the original files",
  )
  parser.add_argument(
    "--help_layout", action="store_true", help="print where to get the files and their layout"
  )
  args = parser.parse_args(argv)
  if not args.help_layout and not args.manual_dir:
    parser.error("--manual_dir is required")
  return args


def main(argv=None) -> int:
  args = _parse(argv)
  if args.help_layout:
    print(datasets.builder_class(args.dataset).MANUAL_DOWNLOAD_INSTRUCTIONS)
    return 0
  builder = build(
    args.dataset,
    args.manual_dir,
    args.data_dir,
    skip_bad_images=args.skip_bad_images,
    stored_size=args.store_size,
  )
  for split, info in builder.info.splits.items():
    print(f"{args.dataset} {split}: {info.num_examples} examples")
  skipped = builder.info.metadata.get("skipped_images", {})
  total = sum(len(v) for v in skipped.values())
  if total:
    print(f"skipped {total} unreadable image(s): {skipped}")
  print(f"written under {builder.data_dir}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
