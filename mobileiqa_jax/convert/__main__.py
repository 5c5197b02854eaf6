"""Converts PyTorch weights into a MobileIQA-JAX model checkpoint.

  python -m mobileiqa_jax.convert --model student --torch-checkpoint best.pkl --out ckpt/
  python -m mobileiqa_jax.convert --model teacher --timm-safetensors model.safetensors --out ckpt/

With `--timm-safetensors` only the backbone comes from the file; the heads are
freshly initialised from `--seed` (an ImageNet-initialised starting point for
training). Nothing is written unless every tensor fits.
"""

import argparse
import logging
import sys

from mobileiqa_jax import checkpoints, convert, models


def _parse(argv):
  parser = argparse.ArgumentParser(
    prog="python -m mobileiqa_jax.convert",
    description=__doc__,
    formatter_class=argparse.RawDescriptionHelpFormatter,
  )
  parser.add_argument("--model", required=True, choices=sorted(models.PRESETS))
  source = parser.add_mutually_exclusive_group(required=True)
  source.add_argument(
    "--torch-checkpoint", help="torch.save(model.state_dict()) file (.pkl/.pth/.pt)"
  )
  source.add_argument("--timm-safetensors", help="timm backbone weights (model.safetensors)")
  parser.add_argument("--out", required=True, help="output checkpoint directory (must not exist)")
  parser.add_argument(
    "--seed", type=int, default=0, help="initialises the heads with --timm-safetensors"
  )
  parser.add_argument("--force", action="store_true", help="overwrite --out if it exists")
  return parser.parse_args(argv)


def main(argv=None) -> int:
  logging.basicConfig(level=logging.INFO, format="%(message)s")
  args = _parse(argv)
  model = models.create(args.model)
  try:
    if args.torch_checkpoint:
      variables, source = convert.from_torch(args.torch_checkpoint, model), args.torch_checkpoint
    else:
      backbone = convert.from_timm(args.timm_safetensors, model)
      initial = models.initial_variables(model, seed=args.seed)
      variables = convert.merge_variables(initial, backbone)
      source = args.timm_safetensors
    checkpoints.save_model(args.out, variables, args.model, force=args.force, source=str(source))
  except (convert.ConversionError, ValueError, FileNotFoundError, FileExistsError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  print(
    f"wrote {args.out}: {args.model}, "
    f"{models.count_params(variables['params']) / 1e6:.2f}M parameters from {source}"
  )
  return 0


if __name__ == "__main__":
  sys.exit(main())
