"""Every knob of the data layer, with defaults that run anywhere.

The training config embeds this as `config.data` and may override any field.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  """Returns the data config.

  Fields:
    name: one of datasets.NAMES. 'synthetic' needs no files and is the default.
    data_dir: where `python -m mobileiqa_jax.data.build` wrote the public sets
      (the TFDS data_dir); unused by 'synthetic' and 'csv'.
    csv: for name='csv', a CSV with columns `path,mos[,split]`.
    image_root: for name='csv', the folder relative paths are resolved against
      (default: the CSV's own folder).
    csv_mos_range: for name='csv', the (low, high) range the MOS column is in;
      labels are scaled linearly from it to 0..1 and values outside it fail
      naming the row. () instead min-max scales over the whole CSV.
    split: 'official' (the owner's train/validation/test, where the set has
      one; UHD-IQA, KonIQ-10k) or 'random' (seeded, `splits.random_split`).
    split_seed: the seed of the random split.
    test_fraction: the random split's test share: the paper's held-out 20%.
    validation_fraction: the random split's validation share, taken out of
      the paper's training 80% (0: no validation split, the original's
      protocol of selecting the best checkpoint on test).
    height, width: the size every image is resized to (bicubic).
    crop: () or (h, w). Set, training takes one random (h, w) crop of each
      (height, width) image, and evaluation scores an image as the mean over
      the (h, w) tiles that cover it (`tiles.py`); a `Scorer` of such a run
      tiles photos of any size the same way, at their own resolution. With
      height and width at the images' stored size, nothing is resized: the
      network learns damage at the pixel scale it has in photographs.
    stored_size: () reads a public set as its owner distributed it; (H, W)
      reads the form built with `--store_size HxW` (each image already
      resized to H x W, stored losslessly), which must equal (height, width):
      no large JPEG is decoded per epoch, and the pixels are the same.
    num_workers: grain worker processes per JAX process (0 = in-process).
    worker_buffer_size: batches each worker prepares ahead.
    seed: the default shuffle/flip seed of the loaders.
    skip_bad_images: skip (and count) unreadable images instead of failing.
    synthetic: the generated dataset (see `synthetic/source.py`).
  """
  config = ml_collections.ConfigDict()
  config.name = "synthetic"
  config.data_dir = "~/tensorflow_datasets"
  config.csv = ""
  config.image_root = ""
  config.csv_mos_range = (0.0, 1.0)
  config.split = "random"
  config.split_seed = 3407
  config.test_fraction = 0.2
  config.validation_fraction = 0.1
  config.height = 512
  config.width = 512
  config.crop = ()
  config.stored_size = ()
  config.num_workers = 2
  config.worker_buffer_size = 2
  config.seed = 3407
  config.skip_bad_images = False

  config.synthetic = ml_collections.ConfigDict()
  config.synthetic.seed = 0
  config.synthetic.num_train = 2048
  config.synthetic.num_validation = 256
  config.synthetic.num_test = 256
  # The size images are generated at (before the pipeline's resize). Generating
  # at the training size skips the resize; any size up to 4K works.
  config.synthetic.height = 512
  config.synthetic.width = 512
  # Probability that an image is left clean (label 1.0).
  config.synthetic.clean_fraction = 0.05
  # At most this many distortions are stacked on one image. One: stacking
  # makes the damage easier to read from global statistics (a linear fit on
  # hand-made features: test SRCC 0.74 at one, 0.79 at two, 0.81 at three;
  # 1024 train and 512 test images at 128 px).
  config.synthetic.max_distortions = 1
  # Splits are generated once into this folder and then read back; '' makes
  # every example afresh each time it is read.
  config.synthetic.cache_dir = "~/.cache/mobileiqa_jax/synthetic"
  return config
