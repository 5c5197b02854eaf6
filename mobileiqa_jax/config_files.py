"""Config files (configs/*.py), found and loaded the way `--config` loads them.

The files in configs/ start from configs/default.py through `from configs
import default`, as in the flax examples, so the folder that holds configs/
must be on sys.path. `python -m mobileiqa_jax.main` from the repository root
has it there (the current folder); the `mobileiqa` console script, a notebook
or a job started from another folder do not, so they call `make_importable`.
"""

import importlib.util
import pathlib
import sys

import ml_collections

# The checkout's configs/, beside the package (the README installs it editable).
REPO_CONFIGS = pathlib.Path(__file__).resolve().parent.parent / "configs"


def make_importable(config_file: str | pathlib.Path) -> None:
  """Puts the folder above `config_file`'s folder on sys.path, once."""
  root = str(pathlib.Path(config_file).expanduser().resolve().parent.parent)
  if root not in sys.path:
    sys.path.insert(0, root)


def resolve(path: str | pathlib.Path) -> pathlib.Path:
  """A config file's path: as given (absolute, or relative to the current
  folder) if it exists, else relative to the checkout.

  Raises:
    FileNotFoundError: naming both places, when neither holds it.
  """
  given = pathlib.Path(path).expanduser()
  if given.is_file():
    return given
  in_checkout = REPO_CONFIGS.parent / given
  if not given.is_absolute() and in_checkout.is_file():
    return in_checkout
  raise FileNotFoundError(
    f"config file {str(path)!r} not found (looked in {pathlib.Path.cwd()} and "
    f"{REPO_CONFIGS.parent}); give a path to one of configs/*.py"
  )


def load(spec: str) -> ml_collections.ConfigDict:
  """'configs/NAME.py[:ARG]' -> `get_config(ARG)` of that file, as
  `--config=configs/NAME.py:ARG` would give it."""
  path, _, arg = spec.partition(":")
  file = resolve(path)
  make_importable(file)
  module_spec = importlib.util.spec_from_file_location(file.stem, file)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg or None)


def config_flag_path(argv: list[str], name: str = "config") -> str | None:
  """The file part of `--NAME=FILE[:ARG]` (or `--NAME FILE[:ARG]`) in argv."""
  for i, word in enumerate(argv):
    if word.startswith(f"--{name}="):
      return word.split("=", 1)[1].partition(":")[0]
    if word == f"--{name}" and i + 1 < len(argv):
      return argv[i + 1].partition(":")[0]
  return None
