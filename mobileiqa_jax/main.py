"""Entry point: `python -m mobileiqa_jax.main --config=configs/distill.py --workdir=DIR`.

`config.mode` picks the job: train (teacher or distillation, by the config),
eval, export, recipe (teacher, then distilled student, then the table), or
seeds (the recipe at several seeds, mean ± sd).
On a pod or cluster the same command runs once per host; with
--coordinator_address (or on TPU/SLURM, where JAX finds it) the processes
join one jax.distributed runtime first.
"""

from mobileiqa_jax import host_memory

if __name__ == "__main__":
  # First, so that the restart (host_memory) does not import JAX twice.
  host_memory.restart_with_huge_pages()

import logging as std_logging
import os
import sys

from absl import app, flags, logging
import jax
from ml_collections import config_flags

from mobileiqa_jax import config_files, errors
from mobileiqa_jax.jobs import evaluation, recipe
from mobileiqa_jax.train import loop

_CONFIG = config_flags.DEFINE_config_file(
  "config", None, "Config file (configs/*.py[:arg]).", lock_config=True
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory (checkpoints, logs).")
_DISTRIBUTED = flags.DEFINE_bool(
  "distributed", False, "Join a jax.distributed runtime (implied by --coordinator_address)."
)
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "host:port of process 0.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Processes in the runtime.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index.")


def initialize_distributed():
  """Joins the runtime; arguments left None are found by JAX (TPU, SLURM, ...)."""
  if _DISTRIBUTED.value or _COORDINATOR.value:
    jax.distributed.initialize(
      coordinator_address=_COORDINATOR.value,
      num_processes=_NUM_PROCESSES.value,
      process_id=_PROCESS_ID.value,
    )


def use_compilation_cache(directory: str) -> None:
  """Turns on JAX's persistent compilation cache in `directory` ('' leaves
  it off), unless the environment already chose one."""
  if directory and not jax.config.jax_compilation_cache_dir:
    jax.config.update("jax_compilation_cache_dir", os.path.expanduser(directory))


def run(config, workdir: str):
  """Runs the job `config.mode` names; what tests and notebooks call too."""
  if config.mode == "train":
    return loop.train_and_evaluate(config, workdir)
  if config.mode == "eval":
    return evaluation.evaluate(config, workdir)
  if config.mode == "export":
    # TensorFlow is imported only for this job.
    from mobileiqa_jax.jobs import export  # pylint: disable=g-import-not-at-top

    return export.export_from_config(config, workdir)
  if config.mode == "recipe":
    return recipe.teacher_then_student(config, workdir)
  if config.mode == "seeds":
    return recipe.over_seeds(config, workdir)
  raise errors.InvalidInput(
    f"config.mode must be train, eval, export, recipe or seeds, got {config.mode!r}"
  )


def _console_logging():
  """Our progress lines to stderr; other libraries' INFO logs off."""
  logging.set_verbosity(logging.WARNING)
  logger = std_logging.getLogger("mobileiqa_jax")
  handler = std_logging.StreamHandler()
  handler.setFormatter(std_logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
  logger.handlers = [handler]
  logger.setLevel(std_logging.INFO)
  logger.propagate = False
  return logger


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if not _WORKDIR.value:
    raise app.UsageError("--workdir is required")
  logger = _console_logging()
  use_compilation_cache(_CONFIG.value.compilation_cache_dir)
  initialize_distributed()
  logger.info(
    "process %d of %d, %d local / %d global devices (%s)",
    jax.process_index(),
    jax.process_count(),
    jax.local_device_count(),
    jax.device_count(),
    jax.devices()[0].platform,
  )
  try:
    run(_CONFIG.value, _WORKDIR.value)
  except errors.InputError as error:
    # The user's to fix, not a bug: one line, no traceback.
    print(f"error: {error}", file=sys.stderr)
    sys.exit(1)


def parse_flags(argv):
  """absl's flag parsing, but a --config.FIELD=VALUE naming no field of the
  config is reported in one line (exit status 1), not as ml_collections'
  traceback. Other flag errors keep absl's own one-line report."""
  try:
    return app.parse_flags_with_usage(argv)
  except (AttributeError, KeyError) as error:
    # ml_collections nests the KeyError of the missing name, whose message
    # is the quoted name and, where one is close, a "Did you mean" line.
    message = error
    while isinstance(message, BaseException) and message.args:
      message = message.args[0]
    missing, _, hint = str(message).partition("\n")
    missing = missing.strip("\"'")
    named = [
      arg.partition("=")[0]
      for arg in argv[1:]
      if arg.startswith("--config.") and missing in arg.partition("=")[0].split(".")
    ]
    if not named:  # not an override's fault: a bug, with its traceback
      raise
    hint = f" {hint.strip()}" if hint.strip() else ""
    print(
      f"error: {named[0]}: the config has no field {missing!r}.{hint} The fields and "
      "their defaults are in configs/default.py (and the --config file).",
      file=sys.stderr,
    )
    sys.exit(1)


def run_app(main_function):
  """absl's `app.run(main_function)`, once --config's file can import
  configs.default whichever folder the command runs from."""
  config_file = config_files.config_flag_path(sys.argv[1:])
  if config_file:
    config_files.make_importable(config_file)
  app.run(main_function, flags_parser=parse_flags)


def cli():
  """`python -m mobileiqa_jax.main`, and the `mobileiqa` console script."""
  host_memory.restart_with_huge_pages()  # the console script's way in
  flags.mark_flags_as_required(["config"])
  run_app(main)


if __name__ == "__main__":
  cli()
