"""The compiler options every jitted program of the project is built with."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mobileiqa_jax import xla_options


def test_cpu_programs_keep_reductions_in_xla_and_compute_the_same():
  assert xla_options.compiler_options() == {
    "xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"
  }
  # A batch-norm-like reduction beside a dot: the installed XLA must know the
  # option (an unknown name or value fails the compilation) and agree.
  x = np.random.default_rng(0).standard_normal((2, 16, 16, 32)).astype(np.float32)
  w = np.random.default_rng(1).standard_normal((32, 8)).astype(np.float32)
  f = lambda x, w: (jnp.mean(x, axis=(0, 1, 2)) @ w, jnp.sum(jnp.square(x)))
  for a, e in zip(xla_options.jit(f)(x, w), jax.jit(f)(x, w)):
    np.testing.assert_allclose(a, e, rtol=1e-5)
  # And the option does what it says: XLA's default hands the reductions to
  # YNNPACK, the project's programs keep them in XLA's own loops.
  reductions = lambda x: (jnp.mean(x, axis=(0, 1, 2)), jnp.sum(jnp.square(x)))
  default = jax.jit(reductions).lower(x).compile().as_text()
  ours = xla_options.jit(reductions).lower(x).compile().as_text()
  assert "__ynn_fusion" in default and "__ynn_fusion" not in ours


def test_ynnpack_reductions_keep_xlas_default():
  x = np.random.default_rng(0).standard_normal((2, 16, 16, 32)).astype(np.float32)
  reductions = lambda x: (jnp.mean(x, axis=(0, 1, 2)), jnp.sum(jnp.square(x)))
  assert xla_options.compiler_options("ynnpack") is None
  compiled = xla_options.jit(reductions, reductions="ynnpack").lower(x).compile().as_text()
  assert "__ynn_fusion" in compiled
  with pytest.raises(ValueError, match="cpu_reductions must be one of"):
    xla_options.compiler_options("onednn")


def test_the_users_xla_flags_win(monkeypatch):
  monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_experimental_ynn_fusion_type=dot,reduce")
  assert xla_options.compiler_options() is None
  monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
  assert xla_options.compiler_options() is not None
