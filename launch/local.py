"""N training processes on this machine, joined by jax.distributed: a pod on one host.

  python launch/local.py --num-processes=2 --config=configs/teacher.py:runlocal \
      --workdir=runs/local [--devices-per-process=4] [--dry-run] [-- --config.num_train_steps=20]

Each process runs the same `python -m mobileiqa_jax.main` on CPU devices with
--coordinator_address=127.0.0.1:PORT --num_processes=N --process_id=i, which
is exactly what a TPU pod or a GPU cluster does across hosts; the tests use
it to check multi-host data loading, checkpointing and evaluation. Output is
streamed with a [i] prefix; if one process fails the others are stopped.
"""

import argparse
import os
import shlex
import socket
import sys

import commands

DEVICE_COUNT_FLAG = "--xla_force_host_platform_device_count"


def free_port() -> int:
  with socket.socket() as sock:
    sock.bind(("127.0.0.1", 0))
    return sock.getsockname()[1]


def xla_flags(existing: str, devices: int) -> str:
  """`existing` XLA flags with this launcher's device count instead of any other.

  One device is the CPU default, so then no flag is added: an unchanged
  XLA_FLAGS keeps the persistent compilation cache's keys unchanged too.
  """
  flags = [f for f in existing.split() if not f.startswith(DEVICE_COUNT_FLAG)]
  if devices > 1:
    flags.append(f"{DEVICE_COUNT_FLAG}={devices}")
  return " ".join(flags)


def process_commands(args, port: int) -> list[list[str]]:
  return [
    commands.main_command(
      args.python,
      args.config,
      args.workdir,
      f"--coordinator_address=127.0.0.1:{port}",
      f"--num_processes={args.num_processes}",
      f"--process_id={i}",
      *args.overrides,
    )
    for i in range(args.num_processes)
  ]


def parse_args(argv):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--num-processes", type=int, default=2)
  parser.add_argument(
    "--devices-per-process",
    type=int,
    default=1,
    help="CPU devices each process simulates (XLA host platform devices)",
  )
  parser.add_argument("--config", required=True, help="e.g. configs/teacher.py:runlocal")
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--port", type=int, default=0, help="coordinator port (0: a free one)")
  parser.add_argument("--python", default=sys.executable)
  parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
  parser.add_argument(
    "overrides",
    nargs=argparse.REMAINDER,
    help="after '--': more flags for main, e.g. --config.batch_size=8",
  )
  args = parser.parse_args(argv)
  args.overrides = commands.strip_separator(args.overrides)
  if args.num_processes < 1 or args.devices_per_process < 1:
    parser.error("--num-processes and --devices-per-process must be at least 1")
  return args


def main(argv=None) -> int:
  args = parse_args(argv)
  port = args.port or free_port()
  # CPU only, even on a machine with an accelerator: N processes cannot share one GPU.
  env_updates = {
    "JAX_PLATFORMS": "cpu",
    "XLA_FLAGS": xla_flags(os.environ.get("XLA_FLAGS", ""), args.devices_per_process),
  }
  runner = commands.Runner(args.dry_run)
  cmds = process_commands(args, port)
  for cmd in cmds:
    shown = " ".join(f"{k}={shlex.quote(v)}" for k, v in env_updates.items())
    print(f"+ {shown} {shlex.join(cmd)} &", flush=True)
  if args.dry_run:
    return 0
  runner.note(
    f"{args.num_processes} processes x {args.devices_per_process} CPU devices, "
    f"coordinator 127.0.0.1:{port}"
  )
  status = commands.run_together(
    cmds, [f"[{i}] " for i in range(len(cmds))], [commands.environment(**env_updates)] * len(cmds)
  )
  if status:
    print(f"# a process failed with exit status {status}", file=sys.stderr)
  return status


if __name__ == "__main__":
  sys.exit(main())
