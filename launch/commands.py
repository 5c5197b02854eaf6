"""What every launcher shares: the one training command, and running or printing commands.

Each launcher in this folder starts `python -m mobileiqa_jax.main --config=... --workdir=...`
once per host; they differ only in how the processes are started and how they
find each other (TPU metadata, SLURM variables, or an explicit coordinator).
Standard library only, so the launchers run on a laptop without the package.
"""

import os
import shlex
import subprocess
import sys
import threading


def main_command(python: str, config: str, workdir: str, *extra: str) -> list[str]:
  """The training command line; `extra` carries --config.x=y overrides and distributed flags."""
  return [python, "-m", "mobileiqa_jax.main", f"--config={config}", f"--workdir={workdir}", *extra]


# Where --stage-data copies a built set on each host (stage_data.py).
STAGE_DIR = "~/mobileiqa-data"


def add_staging_options(parser) -> None:
  """--stage-data and --stage-dir, the same in every launcher."""
  parser.add_argument(
    "--stage-data",
    metavar="SOURCE",
    help="a built data_dir (gs://BUCKET/tfds or a shared folder) to copy to each host's disk "
    "before training (launch/stage_data.py); training then reads the copy",
  )
  parser.add_argument(
    "--stage-dir", default=STAGE_DIR, help=f"the copy's folder on each host (default {STAGE_DIR})"
  )


def staging(args, python: str) -> tuple[list[str], list[str]]:
  """(the staging command each host runs from the checkout, the main flag
  that points training at the copy); both empty without --stage-data."""
  if not args.stage_data:
    return [], []
  return (
    [python, "launch/stage_data.py", args.stage_data, args.stage_dir],
    [f"--config.data.data_dir={args.stage_dir}"],
  )


def shell_line(command) -> str:
  return command if isinstance(command, str) else shlex.join(command)


def strip_separator(args: list[str]) -> list[str]:
  """argparse.REMAINDER keeps a leading '--'; it separates, it is not an argument."""
  return args[1:] if args[:1] == ["--"] else args


class Runner:
  """Runs commands, or with `dry_run` prints each as one shell line and runs nothing.

  Dry-run output goes to stdout, one command a line, prefixed with '+ ' so
  that notes (prefixed '# ') and commands are told apart by eye and by tests.
  """

  def __init__(self, dry_run: bool = False, out=None):
    self.dry_run = dry_run
    self.out = out or sys.stdout

  def note(self, message: str):
    print(f"# {message}", file=self.out, flush=True)

  def run(self, command, *, check: bool = True, **kwargs) -> int:
    """Runs `command` (inheriting stdout/stderr, so output streams); 0 in a dry run."""
    print(f"+ {shell_line(command)}", file=self.out, flush=True)
    if self.dry_run:
      return 0
    result = subprocess.run(command, check=False, **kwargs)
    if check and result.returncode:
      raise SystemExit(
        f"command failed with exit status {result.returncode}: {shell_line(command)}"
      )
    return result.returncode

  def probe(self, command) -> bool | None:
    """Whether a read-only `command` succeeds, quietly; None in a dry run (not run)."""
    print(f"+ {shell_line(command)}", file=self.out, flush=True)
    if self.dry_run:
      return None
    return (
      subprocess.run(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
      ).returncode
      == 0
    )


def _pump(stream, prefix: str, out):
  for line in stream:
    out.write(f"{prefix}{line}")
    out.flush()
  stream.close()


def run_together(
  commands: list[list[str]],
  prefixes: list[str],
  envs: list[dict] | None = None,
  cwd: str | None = None,
  out=None,
  hold_stdin: bool = False,
) -> int:
  """Starts every command at once, streams their output line by line with a prefix,
  and waits for all.

  When one fails, the others are stopped: the rest of a distributed job would
  otherwise wait for it at the next collective until a timeout. Returns the
  first non-zero exit status, or 0.

  hold_stdin: give each command a stdin pipe that stays open until the
  command ends or is stopped. Stopping an ssh client does not stop its
  remote command; closing its stdin is what a remote command can watch for
  (`hosts.remote_command`).
  """
  out = out or sys.stdout
  envs = envs or [None] * len(commands)
  procs, pumps = [], []
  try:
    for command, prefix, env in zip(commands, prefixes, envs):
      proc = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.PIPE if hold_stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
      )
      procs.append(proc)
      pump = threading.Thread(target=_pump, args=(proc.stdout, prefix, out), daemon=True)
      pump.start()
      pumps.append(pump)
    status = 0
    pending = list(procs)
    while pending:
      for proc in list(pending):
        try:
          code = proc.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
          continue
        pending.remove(proc)
        if code and not status:
          status = code
          for other in pending:
            _stop(other)
    return status
  finally:
    # Reached with processes still running only on an exception here (e.g.
    # Ctrl-C): stop exactly the processes this call started.
    for proc in procs:
      if proc.poll() is None:
        _stop(proc)
      elif proc.stdin:
        proc.stdin.close()
    for proc in procs:
      try:
        proc.wait(timeout=30)
      except subprocess.TimeoutExpired:
        proc.kill()
    for pump in pumps:
      pump.join(timeout=5)


def _stop(proc: subprocess.Popen):
  """Terminates `proc` and closes the stdin pipe it may hold."""
  proc.terminate()
  if proc.stdin:
    proc.stdin.close()


def environment(**updates) -> dict:
  """os.environ with `updates`; a None value removes the variable."""
  env = dict(os.environ)
  for key, value in updates.items():
    if value is None:
      env.pop(key, None)
    else:
      env[key] = str(value)
  return env
