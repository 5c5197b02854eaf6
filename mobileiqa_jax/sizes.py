"""Image sizes as command lines spell them: 'HEIGHTxWIDTH'."""

import argparse


class SizeError(ValueError, argparse.ArgumentTypeError):
  """A size that is not HEIGHTxWIDTH of positive integers. Being an
  ArgumentTypeError, argparse prints its message as it is."""


def parse_size(text: str) -> tuple[int, int]:
  """'1231x1907' -> (1231, 1907).

  Raises:
    SizeError: naming the text, for anything else.
  """
  try:
    height, width = (int(part) for part in text.lower().split("x"))
  except ValueError:
    raise SizeError(f"size must be HEIGHTxWIDTH, e.g. 1231x1907; got '{text}'") from None
  if height < 1 or width < 1:
    raise SizeError(f"size must be positive; got '{text}'")
  return height, width
