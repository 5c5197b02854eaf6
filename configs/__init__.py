"""Configs for `python -m mobileiqa_jax.main --config=configs/NAME.py[:ARG]`."""
