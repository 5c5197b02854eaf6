"""Shared test fixtures: where the parity files live and how to load them."""

import importlib.util
import os
import pathlib
import tempfile

import numpy as np
import pytest

from mobileiqa_jax import host_memory
from tests import cpu_time

REPO = pathlib.Path(__file__).resolve().parents[1]

# Many tests compile the same tiny networks, in this process and in the
# subprocesses they start (which inherit the environment): a persistent
# compilation cache turns each repeat from tens of seconds into a few.
os.environ.setdefault(
  "JAX_COMPILATION_CACHE_DIR", os.path.join(tempfile.gettempdir(), "mobileiqa-jax-test-cache")
)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "1")

# The suite's programs compile without LLVM's optimisations, here and in the
# processes the tests start (main, notebooks, sharded steps: they are given
# TEST_XLA_FLAGS). Most tests run tiny networks a few times, so
# compiling is most of their time and LLVM's optimisation about a third of
# compiling (a 6-step teacher_tiny run from a cold cache, on 2 cores: 92 ->
# 66 s of CPU), while the code runs at about half speed. What the tests check
# (parity within 1e-4, two processes or 8 devices against one, exact resume
# after a kill) holds at any optimisation level, and runs compared with each
# other compile alike. The benchmark, not the suite, measures speed.
TEST_XLA_FLAGS = "--xla_backend_optimization_level=0"
if TEST_XLA_FLAGS not in os.environ.get("XLA_FLAGS", ""):  # xdist's workers inherit it
  os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {TEST_XLA_FLAGS}".strip()

# Huge pages for the programs' temporaries (mobileiqa_jax.host_memory), in
# xdist's workers and the processes the tests start, which then need no
# restart of their own.
if host_memory.wanted():
  os.environ["GLIBC_TUNABLES"] = host_memory.TUNABLES

# The end-to-end runs of main (tests/train/test_main.py) and the quickstart
# notebook, which trains the same teacher run: one xdist group, which
# pyproject.toml's --dist=loadgroup hands to one worker as one unit. Its
# runs then follow one another, and each program compiles once, the later
# runs reading it from the persistent compilation cache; on two workers side
# by side, both compiled it.
END_TO_END = pytest.mark.xdist_group("end_to_end")

# Heads smaller still than the tiny presets' (model overrides), for tests whose
# property does not depend on the heads: TFLite conversion time grows with the
# graph, and a train step compiles somewhat faster (the distillation step
# on 8 devices: 76.5 -> 67.6 s from an empty cache).
MICRO = dict(grid=6, dim=16, adapter_hidden=16, head_channels=8, head_hidden=8)


def pytest_addoption(parser):
  cpu_time.pytest_addoption(parser)


def pytest_configure(config):
  cpu_time.pytest_configure(config)


@pytest.hookimpl(trylast=True)  # after pytest-xdist's, which names each test's group
def pytest_collection_modifyitems(config, items):
  """The xdist group of end-to-end runs first, then the other slow tests,
  then the rest, each in its collected order.

  pytest-xdist hands tests out in this order as workers free up, so a
  minute-long test started last keeps one worker busy while the other
  idles; started first, the short tests fill the other worker around it.
  """
  grouped = [item for item in items if item.get_closest_marker("xdist_group")]
  if getattr(config.option, "loadgroup", False) and any("@" not in item.nodeid for item in grouped):
    raise pytest.UsageError(
      "pytest-xdist's --dist=loadgroup is not grouping tests with this pytest "
      "(pytest-xdist issue 1386): install the test extra's pytest<9.2"
    )
  items.sort(
    key=lambda item: (
      item.get_closest_marker("xdist_group") is None,
      item.get_closest_marker("slow") is None,
    )
  )


def parity_dir() -> pathlib.Path:
  """../shared/parity beside the repo, unless MOBILEIQA_PARITY_DIR says otherwise."""
  return pathlib.Path(os.environ.get("MOBILEIQA_PARITY_DIR", REPO.parent / "shared" / "parity"))


@pytest.fixture(scope="session")
def parity():
  """The parity folder's recipe module (synthetic weights and images), loaded in place."""
  folder = parity_dir()
  if not (folder / "recipe.py").exists():
    pytest.fail(f"parity fixtures not found at {folder}; set MOBILEIQA_PARITY_DIR")
  spec = importlib.util.spec_from_file_location("parity_recipe", folder / "recipe.py")
  recipe = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(recipe)
  recipe.DIR = folder
  recipe.reference = lambda model, size: dict(np.load(folder / f"{model}_s0_{size}.npz"))
  recipe.state_dict = lambda model: recipe.synthetic_state_dict(
    recipe.load_keys(folder / f"{model}_keys.json"), seed=0
  )
  recipe.image_nhwc = lambda b, h, w: recipe.synthetic_image(b, h, w, seed=0).transpose(0, 2, 3, 1)
  return recipe


def max_diff_bound(reference: np.ndarray) -> float:
  """The parity tolerance: 1e-4 * (1 + max|reference|)."""
  return 1e-4 * (1.0 + float(np.max(np.abs(reference))))


def tree_shapes(tree) -> dict[str, tuple[int, ...]]:
  """{path: shape} of every leaf, to compare variable trees."""
  import jax  # pylint: disable=g-import-not-at-top

  return {
    jax.tree_util.keystr(path): tuple(leaf.shape)
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree)
  }


def random_variables(model, *inputs, seed=0):
  """`models.random_like` on the variables of any Flax module called on `inputs`."""
  import jax  # pylint: disable=g-import-not-at-top

  from mobileiqa_jax import models  # pylint: disable=g-import-not-at-top

  return models.random_like(jax.eval_shape(model.init, jax.random.key(0), *inputs), seed=seed)
