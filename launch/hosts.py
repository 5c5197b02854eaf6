"""Training on a few GPU (or CPU) machines without a scheduler: one process a host, over ssh.

  python launch/hosts.py --hosts=gpu1,gpu2 --config=configs/teacher.py:uhd_iqa \
      --workdir=/shared/runs/teacher [--port=8476] [--coordinator=10.0.0.1:8476] \
      [--remote-dir=~/mobileiqa-jax] [--python=~/mobileiqa-venv/bin/python] \
      [--env=NCCL_DEBUG=INFO] [--stage-data=/shared/tfds [--stage-dir=/scratch/tfds]] \
      [--dry-run] [-- --config.batch_size=64]

Process i runs on host i with --coordinator_address=HOST0:PORT
--num_processes=N --process_id=i, the arguments main hands to
jax.distributed.initialize; each drives all GPUs of its host. Every host
needs the checkout at --remote-dir (e.g. installed with
`launch/setup_worker.sh cuda12`), passwordless ssh from here, and the workdir
on a file system they share. Output streams here with a [host] prefix; if one
process fails, the ssh sessions of the others are closed, and with them their
processes (each remote command stops when its ssh session's stdin closes).
With --stage-data, each host first copies the built set to its own disk
(launch/stage_data.py) and trains from the copy.

Without ssh, run the same command on each host yourself:
  python -m mobileiqa_jax.main --config=... --workdir=... \
      --coordinator_address=gpu1:8476 --num_processes=2 --process_id=0   # 1 on gpu2
"""

import argparse
import shlex
import sys

import commands


def remote_command(args, process_id: int) -> str:
  stage, data_dir = commands.staging(args, args.python)
  main = commands.main_command(
    args.python,
    args.config,
    args.workdir,
    f"--coordinator_address={args.coordinator}",
    f"--num_processes={len(args.hosts)}",
    f"--process_id={process_id}",
    *data_dir,
    *args.overrides,
  )
  env = "".join(f"{shlex.quote(e)} " for e in args.env)
  # The directory and interpreter stay unquoted so the remote shell expands ~.
  staged = f"{args.python} {shlex.join(stage[1:])} && " if stage else ""
  # sshd runs the command in a session of its own, and a closed ssh session
  # does not stop it: a watcher holds the session's stdin (the launcher keeps
  # it open, run_together(hold_stdin=True)) and, when it closes, kills the
  # session's whole process group (staging, main). Otherwise a host left
  # running after another failed would keep training, or wait at the
  # coordinator, with its GPUs held.
  watch = "exec 3<&0 </dev/null; (cat <&3 >/dev/null 2>&1; kill 0) & "
  return (
    f"{watch}cd {args.remote_dir} && {staged}exec env {env}{args.python} {shlex.join(main[1:])}"
  )


def ssh_commands(args) -> list[list[str]]:
  return [
    ["ssh", "-o", "BatchMode=yes", host, remote_command(args, i)]
    for i, host in enumerate(args.hosts)
  ]


def parse_args(argv):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument(
    "--hosts",
    required=True,
    type=lambda s: [h for h in s.split(",") if h],
    help="comma-separated; the first is process 0 and the coordinator",
  )
  parser.add_argument("--port", type=int, default=8476, help="coordinator port on the first host")
  parser.add_argument(
    "--coordinator", help="host:port the others reach process 0 at (default: FIRST_HOST:PORT)"
  )
  parser.add_argument("--config", required=True)
  parser.add_argument("--workdir", required=True, help="on a file system every host shares")
  parser.add_argument("--remote-dir", default="~/mobileiqa-jax", help="the checkout on each host")
  parser.add_argument(
    "--python", default="~/mobileiqa-venv/bin/python", help="the interpreter on each host"
  )
  parser.add_argument(
    "--env",
    action="append",
    default=[],
    metavar="KEY=VALUE",
    help="an environment variable for every process (repeatable)",
  )
  commands.add_staging_options(parser)
  parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
  parser.add_argument(
    "overrides",
    nargs=argparse.REMAINDER,
    help="after '--': more flags for main, e.g. --config.batch_size=64",
  )
  args = parser.parse_args(argv)
  args.overrides = commands.strip_separator(args.overrides)
  if not args.hosts:
    parser.error("--hosts names no host")
  if any("=" not in e for e in args.env):
    parser.error("--env takes KEY=VALUE")
  args.coordinator = args.coordinator or f"{args.hosts[0]}:{args.port}"
  return args


def main(argv=None) -> int:
  args = parse_args(argv)
  cmds = ssh_commands(args)
  for cmd in cmds:
    print(f"+ {shlex.join(cmd)} &", flush=True)
  if args.dry_run:
    return 0
  status = commands.run_together(cmds, [f"[{host}] " for host in args.hosts], hold_stdin=True)
  if status:
    print(f"# a process failed with exit status {status}", file=sys.stderr)
  return status


if __name__ == "__main__":
  sys.exit(main())
