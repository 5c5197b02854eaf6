"""MobileIQA in JAX/Flax: no-reference image quality assessment of photos.

`mobileiqa_jax.Scorer` scores images (see `mobileiqa_jax.scoring`). It is
imported on first use, so `import mobileiqa_jax` does not load JAX.
"""

__all__ = ["Scorer"]


def __getattr__(name):
  if name == "Scorer":
    from mobileiqa_jax.scoring import Scorer  # pylint: disable=g-import-not-at-top

    return Scorer
  raise AttributeError(f"module 'mobileiqa_jax' has no attribute {name!r}")


def __dir__():
  return sorted(list(globals()) + __all__)
