"""Every dataset the project reads, in one registry: its name, the input
size the paper trains it at, and for the public sets the TFDS builder that
`python -m mobileiqa_jax.data.build` runs on the owner's download.

Kept free of heavy imports (configs read it); a builder class is imported
only when asked for.
"""

import dataclasses
import importlib


@dataclasses.dataclass(frozen=True)
class Dataset:
  size: tuple[int, int]  # (height, width) the paper's recipe trains at
  builder: str = ""  # 'module.Class' under data/builders/; '' for sets built elsewhere


DATASETS = {
  "synthetic": Dataset((512, 512)),  # generated on the fly (data/synthetic/)
  "uhd_iqa": Dataset((1231, 1907), "uhd_iqa.UhdIqa"),  # full resolution, official split
  "koniq10k": Dataset((512, 512), "koniq10k.Koniq10k"),
  "livec": Dataset((512, 512), "livec.Livec"),
  "spaq": Dataset((512, 512), "spaq.Spaq"),
  "bid": Dataset((512, 512), "bid.Bid"),
  "csv": Dataset((512, 512)),  # the user's own photos, listed in a CSV
}
NAMES = tuple(DATASETS)
PUBLIC = tuple(name for name, dataset in DATASETS.items() if dataset.builder)


def builder_class(name: str):
  """The TFDS builder class of a public set."""
  if name not in PUBLIC:
    raise ValueError(f"unknown public dataset {name!r}; known: {sorted(PUBLIC)}")
  module, _, cls = DATASETS[name].builder.partition(".")
  return getattr(importlib.import_module(f"mobileiqa_jax.data.builders.{module}"), cls)
