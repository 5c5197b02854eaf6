"""Unit tests for the head pieces where a reshape or index bug would hide."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mobileiqa_jax.models import heads


def pool_reference(x, out):
  """PyTorch adaptive_avg_pool2d on NHWC, by its definition, with float bounds."""
  b, h, w, c = x.shape
  y = np.zeros((b, out, out, c), np.float64)
  for i in range(out):
    r0, r1 = math.floor(i * h / out), math.ceil((i + 1) * h / out)
    for j in range(out):
      c0, c1 = math.floor(j * w / out), math.ceil((j + 1) * w / out)
      y[:, i, j] = x[:, r0:r1, c0:c1].mean(axis=(1, 2))
  return y


@pytest.mark.parametrize("h,w", [(7, 7), (8, 13), (22, 22), (23, 45), (44, 44), (97, 61)])
def test_adaptive_pool_matches_definition(h, w):
  x = np.random.default_rng(0).standard_normal((2, h, w, 3)).astype(np.float32)
  got = heads.adaptive_avg_pool(jnp.asarray(x), 22)
  np.testing.assert_allclose(got, pool_reference(x, 22), rtol=1e-5, atol=1e-6)


def test_adaptive_pool_divisible_is_plain_average_pool():
  x = np.random.default_rng(1).standard_normal((1, 44, 66, 2)).astype(np.float32)
  expected = x.reshape(1, 22, 2, 22, 3, 2).mean(axis=(2, 4))
  np.testing.assert_allclose(
    heads.adaptive_avg_pool(jnp.asarray(x), 22), expected, rtol=1e-5, atol=1e-6
  )


def test_adaptive_pool_smaller_input_repeats_cells():
  x = np.arange(7, dtype=np.float32).reshape(1, 7, 1, 1) * np.ones((1, 1, 7, 1), np.float32)
  rows = np.asarray(heads.adaptive_avg_pool(jnp.asarray(x), 22))[0, :, 0, 0]
  # Every output row is one input row (windows of length 1 or 2 over 7 inputs).
  assert rows[0] == 0 and rows[-1] == 6
  assert len(set(rows.tolist())) < 22  # some input rows feed several cells


def _softmax(z):
  z = z - z.max(-1, keepdims=True)
  e = np.exp(z)
  return e / e.sum(-1, keepdims=True)


def attention_block_reference(p, x):
  """The original AB, with its transpose + memory reinterpretation spelled out."""
  q = x @ p["c_q"]["kernel"] + p["c_q"]["bias"]
  k = x @ p["c_k"]["kernel"] + p["c_k"]["bias"]
  v = x @ p["c_v"]["kernel"] + p["c_v"]["bias"]
  b, t, d = x.shape
  y = _softmax(q @ k.transpose(0, 2, 1) / math.sqrt(d)) @ v
  # torch: y.transpose(1, 2) is a view; .reshape copies it contiguously, then
  # re-reads that memory as (B, T, D).
  memory = np.ascontiguousarray(y.transpose(0, 2, 1)).ravel()
  return memory.reshape(b, t, d) + x, y + x


def test_attention_block_reproduces_transpose_then_reshape():
  block = heads.AttentionBlock(dim=6)
  x = np.random.default_rng(2).standard_normal((2, 4, 6)).astype(np.float32)
  variables = block.init(jax.random.key(0), x)
  got = np.asarray(block.apply(variables, x))
  p = jax.tree.map(np.asarray, variables["params"])
  literal, naive = attention_block_reference(p, x)
  np.testing.assert_allclose(got, literal, rtol=1e-5, atol=1e-5)
  assert not np.allclose(got, naive, atol=1e-3)  # the quirk is really there


def test_attention_block_dropout_only_in_training():
  block = heads.AttentionBlock(dim=8)
  x = np.ones((1, 3, 8), np.float32)
  variables = block.init(jax.random.key(0), x)
  a = block.apply(variables, x, train=False)
  b = block.apply(variables, x, train=False)
  np.testing.assert_array_equal(a, b)
  c = block.apply(variables, x, train=True, rngs={"dropout": jax.random.key(1)})
  assert not np.allclose(a, c)


def mal_reference(variables, maps):
  """MAL by the original's einops strings, index by index, in NCHW terms."""
  n, b, s, _, d = maps.shape
  p = jax.tree.map(np.asarray, variables["params"])
  views = []
  for j in range(n):
    sa = heads.SelfAttention()
    views.append(np.asarray(sa.apply({"params": p[f"attention_module_{j}"]}, maps[j])))
  f = np.stack(views).transpose(0, 1, 4, 2, 3)  # (n, B, D, S, S), PyTorch layout
  big_n = s * s
  t = np.zeros((b, n * d, big_n), np.float32)  # 'n b c h w -> b (n c) (h w)'
  for j in range(n):
    for c in range(d):
      t[:, j * d + c] = f[j, :, c].reshape(b, big_n)
  pm = np.zeros((b, d, n * big_n), np.float32)  # 'b (w c) h -> b w (c h)', w=D, c=n
  for w in range(d):
    for c in range(n):
      pm[:, w, c * big_n : (c + 1) * big_n] = t[:, w * n + c]
  feat, _ = attention_block_reference(p["feature_attention"], pm)
  back = np.zeros_like(t)  # 'b w (c h) -> b (w c) h'
  for w in range(d):
    for c in range(n):
      back[:, w * n + c] = feat[:, w, c * big_n : (c + 1) * big_n]
  chan, _ = attention_block_reference(p["channel_attention"], t.transpose(0, 2, 1))
  r = ((back + chan.transpose(0, 2, 1)) / 2).reshape(b, n, d, big_n).mean(axis=1)
  return r.transpose(0, 2, 1).reshape(b, s, s, d)


def _randomised_gamma(variables, rng):
  """gamma starts at 0, which would hide the self-attention path entirely."""

  def fix(path, x):
    return rng.uniform(0.2, 0.8, x.shape).astype(np.float32) if path[-1].key == "gamma" else x

  return jax.tree_util.tree_map_with_path(fix, variables)


def test_mal_matches_original_rearranges():
  mal = heads.MAL(num_views=3)
  maps = np.random.default_rng(3).standard_normal((3, 2, 4, 4, 8)).astype(np.float32)
  variables = _randomised_gamma(mal.init(jax.random.key(0), maps), np.random.default_rng(0))
  got = np.asarray(mal.apply(variables, maps))
  np.testing.assert_allclose(got, mal_reference(variables, maps), rtol=1e-4, atol=1e-5)


def test_mal_keeps_batch_elements_apart():
  mal = heads.MAL(num_views=5)
  maps = np.random.default_rng(4).standard_normal((5, 2, 6, 6, 16)).astype(np.float32)
  variables = _randomised_gamma(mal.init(jax.random.key(0), maps), np.random.default_rng(1))
  both = np.asarray(mal.apply(variables, maps))
  for i in range(2):
    alone = np.asarray(mal.apply(variables, maps[:, i : i + 1]))
    np.testing.assert_allclose(both[i : i + 1], alone, rtol=1e-5, atol=1e-5)
  # Changing one image's maps leaves the other's output untouched.
  changed = maps.copy()
  changed[:, 1] += 1.0
  np.testing.assert_array_equal(np.asarray(mal.apply(variables, changed))[0], both[0])


def test_score_head_pools_like_the_original_and_maps_each_cell():
  import flax.linen as nn

  class Head(nn.Module):
    pool: int

    @nn.compact
    def __call__(self, x):
      return heads.score_head(x, pool=self.pool, sigmoid=self.pool == 2)

  x = np.random.default_rng(5).standard_normal((2, 22, 22, 256)).astype(np.float32)
  for pool in (2, 4):
    head = Head(pool)
    variables = head.init(jax.random.key(0), x)
    assert set(variables["params"]) == {"cnn_0", "cnn_3", "fc_score_0", "fc_score_3"}
    scores, cells = (np.asarray(y) for y in head.apply(variables, x))
    assert scores.shape == (2,) and np.all(np.isfinite(scores))
    # The map's cells: 22 // pool - 2 a side (9x9 student, 3x3 teacher).
    assert cells.shape == (2, 22 // pool - 2, 22 // pool - 2)
    if pool == 2:
      assert np.all((scores > 0) & (scores < 1))  # the student's sigmoid
    # A feature equal at every position gives equal cells, each the score.
    flat = np.broadcast_to(x[:, :1, :1], x.shape)
    flat_scores, flat_cells = (np.asarray(y) for y in head.apply(variables, flat))
    np.testing.assert_allclose(
      flat_cells, flat_scores[:, None, None] * np.ones_like(flat_cells), rtol=1e-5, atol=1e-6
    )
    # The cells differ where the feature does, and the score is not their mean.
    assert np.ptp(cells[0]) > 1e-3 and not np.allclose(cells.mean(axis=(1, 2)), scores)


@pytest.mark.parametrize("size,out", [(7, 22), (22, 22), (23, 22), (45, 22), (616, 22), (13, 5)])
def test_pool_bands_rebuild_the_pooling_matrix(size, out):
  starts, weights = heads.pool_bands(size, out)
  rebuilt = np.zeros((out, size), np.float32)
  for i, start in enumerate(starts):
    assert 0 <= start and start + weights.shape[1] <= size
    rebuilt[i, start : start + weights.shape[1]] += weights[i]
  np.testing.assert_array_equal(rebuilt, heads.adaptive_pool_matrix(size, out))


@pytest.mark.parametrize("h,w", [(5, 9), (7, 30), (22, 22), (23, 45), (61, 97), (44, 3)])
def test_banded_adapter_equals_plain(h, w):
  rng = np.random.default_rng(6)
  x = jnp.asarray(rng.standard_normal((2, h, w, 5)).astype(np.float32))
  kernel = jnp.asarray(rng.standard_normal((5, 16)).astype(np.float32))
  bias = jnp.asarray(rng.standard_normal((16,)).astype(np.float32))
  plain = heads.pooled_pointwise_gelu(x, kernel, bias, 22, bands="none")
  banded = jax.jit(heads.pooled_pointwise_gelu, static_argnums=(3, 4))(x, kernel, bias, 22, "map")
  unrolled = heads.pooled_pointwise_gelu(x, kernel, bias, 22, "unrolled", "tflite")
  np.testing.assert_allclose(banded, plain, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(unrolled, plain, rtol=1e-5, atol=1e-6)
  y = np.asarray(x) @ np.asarray(kernel) + np.asarray(bias)
  gelu = 0.5 * y * (1 + np.vectorize(math.erf)(y / math.sqrt(2)))
  np.testing.assert_allclose(plain, pool_reference(gelu, 22), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("bands", ["map", "unrolled"])
def test_banded_adapter_gradients_equal_plain(bands):
  # Bands are recomputed in the backward pass; the gradients must not change.
  rng = np.random.default_rng(8)
  args = [
    jnp.asarray(rng.standard_normal(shape).astype(np.float32))
    for shape in ((2, 47, 30, 5), (5, 16), (16,))
  ]
  out_grad = jnp.asarray(rng.standard_normal((2, 22, 22, 16)).astype(np.float32))

  def grads(bands):
    f = lambda *args: heads.pooled_pointwise_gelu(*args, 22, bands)
    return jax.jit(lambda *args: jax.vjp(f, *args)[1](out_grad))(*args)

  for a, e in zip(grads(bands), grads("none")):
    np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-5)


def test_level_adapter_keeps_conv_parameter_names_and_bands_exactly():
  x = np.random.default_rng(7).standard_normal((1, 50, 31, 6)).astype(np.float32)
  plain = heads.LevelAdapter(grid=7, hidden=8, dim=4, band_threshold=1 << 30)
  banded = heads.LevelAdapter(grid=7, hidden=8, dim=4, band_threshold=0)
  variables = plain.init(jax.random.key(0), x)
  shapes = jax.tree.map(np.shape, variables["params"])
  assert shapes == {
    "cnn1": {"kernel": (1, 1, 6, 8), "bias": (8,)},
    "cnn2": {"kernel": (1, 1, 8, 4), "bias": (4,)},
  }
  np.testing.assert_allclose(
    banded.apply(variables, x), plain.apply(variables, x), rtol=1e-5, atol=1e-6
  )
