"""The jobs `python -m mobileiqa_jax.main` runs besides training: evaluation,
export, the whole recipe and its seeds. Only jobs compose train/, export/ and
data/; each of those does its own part.
"""
