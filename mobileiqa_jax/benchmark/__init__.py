"""Speed and memory of the networks, the training steps and the input
pipeline: `python -m mobileiqa_jax.benchmark --help`. Nothing in the library
imports this package."""
