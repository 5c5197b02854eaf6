"""Optimisers: the paper's recipe and a modern alternative.

'adam_l2' is PyTorch's `Adam(weight_decay=wd)`: the decay is added to the
gradient before the moments (coupled L2, not AdamW), with CosineAnnealingLR
stepped once per epoch. 'adamw' is decoupled decay with linear warmup and a
per-step cosine decay to zero.
"""

import math

import jax.numpy as jnp
import ml_collections
import optax

from mobileiqa_jax import errors


def learning_rate_schedule(cfg: ml_collections.ConfigDict, steps_per_epoch: int, total_steps: int):
  if cfg.name == "adam_l2":
    t_max = cfg.cosine_t_max_epochs

    def per_epoch_cosine(step):
      # PyTorch CosineAnnealingLR's closed form with eta_min = 0, at whole epochs.
      epoch = jnp.floor_divide(step, steps_per_epoch)
      return cfg.learning_rate * 0.5 * (1.0 + jnp.cos(math.pi * epoch / t_max))

    return per_epoch_cosine
  if cfg.name == "adamw":
    return optax.warmup_cosine_decay_schedule(
      0.0, cfg.learning_rate, cfg.warmup_steps, max(total_steps, cfg.warmup_steps + 1)
    )
  raise errors.InvalidInput(f"optimizer.name must be 'adam_l2' or 'adamw', got {cfg.name!r}")


def create(cfg: ml_collections.ConfigDict, steps_per_epoch: int, total_steps: int):
  """(optax transformation, learning-rate schedule) from `config.optimizer`."""
  schedule = learning_rate_schedule(cfg, steps_per_epoch, total_steps)
  parts = [optax.clip_by_global_norm(cfg.clip_norm)] if cfg.clip_norm else []
  if cfg.name == "adam_l2":
    parts += [
      optax.add_decayed_weights(cfg.weight_decay),
      optax.scale_by_adam(b1=cfg.b1, b2=cfg.b2, eps=cfg.eps),
      optax.scale_by_learning_rate(schedule),
    ]
  else:
    parts.append(
      optax.adamw(schedule, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps, weight_decay=cfg.weight_decay)
    )
  return optax.chain(*parts), schedule
