"""Builds a public IQA set into ArrayRecord files the pipeline reads.

  python -m mobileiqa_jax.data.build --dataset koniq10k \
      --manual_dir ~/downloads/koniq10k --data_dir ~/tensorflow_datasets

Each builder's MANUAL_DOWNLOAD_INSTRUCTIONS says where to get the files and
which folder layout it expects (`--dataset NAME --help_layout` prints them).
"""

import pathlib

from absl import app, flags
import tensorflow_datasets as tfds

from mobileiqa_jax.data.builders import bid, common, koniq10k, livec, spaq, uhd_iqa

BUILDERS: dict[str, type[common.IqaBuilder]] = {
  "uhd_iqa": uhd_iqa.UhdIqa,
  "koniq10k": koniq10k.Koniq10k,
  "livec": livec.Livec,
  "spaq": spaq.Spaq,
  "bid": bid.Bid,
}


def builder_class(name: str) -> type[common.IqaBuilder]:
  """The builder class of a public set."""
  if name not in BUILDERS:
    raise ValueError(f"unknown public dataset {name!r}; known: {sorted(BUILDERS)}")
  return BUILDERS[name]


def load_builder(name: str, data_dir: str) -> common.IqaBuilder:
  """The builder of an already built set, or an error saying how to build it."""
  cls = builder_class(name)
  builder = cls(data_dir=str(pathlib.Path(data_dir).expanduser()))
  if not builder.is_prepared():
    raise common.MissingDataError(
      f"dataset {name!r} is not built: expected it under {builder.data_dir}. Build it with\n"
      f"  python -m mobileiqa_jax.data.build --dataset {name} --manual_dir PATH "
      f"--data_dir {data_dir}\nwhere PATH holds the files described here:\n"
      f"{cls.MANUAL_DOWNLOAD_INSTRUCTIONS}"
    )
  return builder


def build(
  name: str, manual_dir: str, data_dir: str, *, skip_bad_images: bool = False
) -> common.IqaBuilder:
  """Builds (or reuses) the ArrayRecord files of a public set.

  Args:
    name: one of BUILDERS.
    manual_dir: the folder holding the owner's files, in the layout the
      builder's MANUAL_DOWNLOAD_INSTRUCTIONS describe.
    data_dir: the TFDS data_dir to write to (the pipeline's `data_dir`).
    skip_bad_images: leave out unreadable images (counted in
      `builder.info.metadata['skipped_images']`) instead of failing.

  Returns:
    The prepared builder.
  """
  cls = builder_class(name)
  manual = pathlib.Path(manual_dir).expanduser()
  # TFDS would fail on a missing folder with a generic assertion; say what
  # was expected and how to get it.
  common.require(manual, f"the manually downloaded {name} files", cls.MANUAL_DOWNLOAD_INSTRUCTIONS)
  builder = cls(
    data_dir=str(pathlib.Path(data_dir).expanduser()),
    skip_bad_images=skip_bad_images,
    file_format="array_record",
  )
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual))
  return builder


def main(argv):
  del argv
  flags_ = flags.FLAGS
  if flags_.help_layout:
    print(builder_class(flags_.dataset).MANUAL_DOWNLOAD_INSTRUCTIONS)
    return
  if not flags_.manual_dir:
    raise app.UsageError("--manual_dir is required")
  builder = build(
    flags_.dataset, flags_.manual_dir, flags_.data_dir, skip_bad_images=flags_.skip_bad_images
  )
  for split, info in builder.info.splits.items():
    print(f"{flags_.dataset} {split}: {info.num_examples} examples")
  skipped = builder.info.metadata.get("skipped_images", {})
  total = sum(len(v) for v in skipped.values())
  if total:
    print(f"skipped {total} unreadable image(s): {skipped}")
  print(f"written under {builder.data_dir}")


def _define_flags():
  flags.DEFINE_enum("dataset", None, sorted(BUILDERS), "Which public set to build.")
  flags.DEFINE_string("manual_dir", None, "Folder with the owner's files.")
  flags.DEFINE_string("data_dir", "~/tensorflow_datasets", "Where to write the dataset.")
  flags.DEFINE_bool("skip_bad_images", False, "Skip and count unreadable images.")
  flags.DEFINE_bool("help_layout", False, "Print where to get the files and their layout.")
  flags.mark_flag_as_required("dataset")


if __name__ == "__main__":
  _define_flags()
  app.run(main)
