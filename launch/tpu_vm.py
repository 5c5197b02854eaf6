"""Training on a Cloud TPU VM (one host or a pod slice) with gcloud.

  # create (or reuse) the VM, install this checkout on every worker, train, stream the logs
  python launch/tpu_vm.py up --name=iqa --zone=us-central2-b --accelerator=v4-32 \
      --config=configs/teacher.py:uhd_iqa --workdir=gs://BUCKET/runs/teacher \
      [--version=tpu-ubuntu2204-base] [--project=P] [--spot] [--detach] [--delete-after] \
      [--stage-data=gs://BUCKET/tfds] [--dry-run] [-- --config.batch_size=32]
  python launch/tpu_vm.py logs   --name=iqa --zone=us-central2-b   # follow a --detach run
  python launch/tpu_vm.py delete --name=iqa --zone=us-central2-b

`up` runs, in order (each step printed as it runs; --dry-run prints them all
and runs none):
  1. `describe` the VM; `create` it when it does not exist, else reuse it;
  2. copy this working tree to every worker (`scp --worker=all`), or with
     --git URL [--git-ref REF] clone it there, then `launch/setup_worker.sh tpu` on every
     worker: a Python 3.11 venv with the package, TensorFlow (TensorBoard and
     gs:// files) and jax[tpu] (--skip-install skips step 2 on a reused VM);
  3. with --stage-data gs://BUCKET/tfds, `launch/stage_data.py` on every
     worker: the built set copied to its disk (--stage-dir, default
     ~/mobileiqa-data), checked, and reused when already there; training
     then reads `--config.data.data_dir` there;
  4. the same `python -m mobileiqa_jax.main --distributed` on all workers at
     once (`ssh --worker=all`); JAX finds the other workers from the TPU
     metadata. The output of every worker streams here; with --detach the run
     goes on under nohup and `logs` follows it;
  5. with --delete-after, `delete` the VM when the run ends, failed or not.
The workdir must be one every worker can reach: a gs:// path (orbax and the
TensorBoard writer accept it); a local path would give each worker its own.
"""

import argparse
import pathlib
import shlex
import subprocess
import sys
import tarfile
import tempfile

import commands

REPO = pathlib.Path(__file__).resolve().parents[1]
REMOTE_DIR = "mobileiqa-jax"  # under the worker's home directory
REMOTE_PYTHON = "~/mobileiqa-venv/bin/python"
REMOTE_LOG = "~/mobileiqa-run.log"
# The TPU VM base image of each generation (override with --version).
RUNTIME_VERSIONS = {
  "v2": "tpu-ubuntu2204-base",
  "v3": "tpu-ubuntu2204-base",
  "v4": "tpu-ubuntu2204-base",
  "v5litepod": "v2-alpha-tpuv5-lite",
  "v5p": "v2-alpha-tpuv5",
  "v6e": "v2-alpha-tpuv6e",
}
# Never shipped to the workers: environments, caches and run outputs.
EXCLUDED_PARTS = {".git", ".venv", "venv", "__pycache__", ".pytest_cache", "build", "dist"}


def default_version(accelerator: str) -> str:
  generation = accelerator.rsplit("-", 1)[0]
  if generation not in RUNTIME_VERSIONS:
    raise SystemExit(f"no default runtime version for {accelerator!r}; pass --version")
  return RUNTIME_VERSIONS[generation]


def source_files(root: pathlib.Path) -> list[str]:
  """The working tree's files (tracked or not, .gitignore respected), relative to root."""
  try:
    listed = subprocess.run(
      ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
      cwd=root,
      capture_output=True,
      text=True,
      check=True,
    ).stdout
    names = listed.splitlines()
  except (OSError, subprocess.CalledProcessError):
    names = [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()]
  return sorted(
    n
    for n in names
    if (root / n).is_file()
    and not EXCLUDED_PARTS.intersection(pathlib.PurePath(n).parts)
    and not n.endswith((".egg-info", ".tflite"))
  )


def pack(root: pathlib.Path, out: pathlib.Path) -> int:
  names = source_files(root)
  with tarfile.open(out, "w:gz") as tar:
    for name in names:
      tar.add(root / name, arcname=name)
  return len(names)


class TpuVm:
  """The gcloud commands for one TPU VM."""

  def __init__(self, name: str, zone: str, project: str | None):
    self.name, self.zone, self.project = name, zone, project

  def gcloud(self, verb: str, *args: str) -> list[str]:
    scope = [f"--zone={self.zone}"] + ([f"--project={self.project}"] if self.project else [])
    return ["gcloud", "compute", "tpus", "tpu-vm", verb, *args, *scope]

  def describe(self):
    return self.gcloud("describe", self.name, "--format=value(state)")

  def create(self, accelerator: str, version: str, spot: bool):
    return self.gcloud(
      "create",
      self.name,
      f"--accelerator-type={accelerator}",
      f"--version={version}",
      *(["--spot"] if spot else []),
    )

  def delete(self):
    return self.gcloud("delete", self.name, "--quiet")

  def ssh_all(self, script: str):
    """`script` run on every worker at once, by the login shell (bash on TPU VM images)."""
    return self.gcloud("ssh", self.name, "--worker=all", f"--command={script}")

  def scp_all(self, local: str, remote: str):
    return self.gcloud("scp", local, f"{self.name}:{remote}", "--worker=all")


def remote_main(args) -> str:
  """The training command as each worker runs it (from the copied checkout)."""
  _, data_dir = commands.staging(args, REMOTE_PYTHON)
  command = commands.main_command(
    REMOTE_PYTHON, args.config, args.workdir, "--distributed", *data_dir, *args.overrides
  )
  # The venv path keeps its ~ unquoted so the worker's shell expands it.
  return f"cd ~/{REMOTE_DIR} && {REMOTE_PYTHON} {shlex.join(command[1:])}"


def install(vm: TpuVm, args, runner: commands.Runner):
  setup = f"bash ~/{REMOTE_DIR}/launch/setup_worker.sh tpu"
  if args.git:
    branch = f" --branch {shlex.quote(args.git_ref)}" if args.git_ref else ""
    runner.run(
      vm.ssh_all(
        f"set -e; rm -rf ~/{REMOTE_DIR}; git clone --depth 1{branch} "
        f"{shlex.quote(args.git)} ~/{REMOTE_DIR}; {setup}"
      )
    )
    return
  with tempfile.TemporaryDirectory() as tmp:
    archive = pathlib.Path(tmp) / f"{REMOTE_DIR}.tar.gz"
    if runner.dry_run:
      runner.note(f"would pack {len(source_files(REPO))} files of {REPO} into {archive.name}")
    else:
      runner.note(f"packed {pack(REPO, archive)} files of {REPO}")
    runner.run(vm.scp_all(str(archive), f"~/{archive.name}"))
  runner.run(
    vm.ssh_all(
      f"set -e; rm -rf ~/{REMOTE_DIR}; mkdir -p ~/{REMOTE_DIR}; "
      f"tar xzf ~/{REMOTE_DIR}.tar.gz -C ~/{REMOTE_DIR}; {setup}"
    )
  )


def up(args, runner: commands.Runner) -> int:
  vm = TpuVm(args.name, args.zone, args.project)
  exists = runner.probe(vm.describe())
  if exists:
    runner.note(f"reusing the TPU VM {args.name}")
  else:
    if exists is None:
      runner.note(f"dry run: assuming {args.name} does not exist yet")
    runner.run(
      vm.create(args.accelerator, args.version or default_version(args.accelerator), args.spot)
    )
  status = 1
  try:
    if not args.skip_install:
      install(vm, args, runner)
    stage, _ = commands.staging(args, REMOTE_PYTHON)
    if stage:
      runner.run(vm.ssh_all(f"cd ~/{REMOTE_DIR} && {REMOTE_PYTHON} {shlex.join(stage[1:])}"))
    train = remote_main(args)
    if args.detach:
      status = runner.run(
        vm.ssh_all(f"nohup bash -c {shlex.quote(train)} > {REMOTE_LOG} 2>&1 < /dev/null &"),
        check=False,
      )
      runner.note(
        f"running detached; follow with: python launch/tpu_vm.py logs "
        f"--name={args.name} --zone={args.zone}"
      )
    else:
      status = runner.run(
        vm.ssh_all(f"set -o pipefail; {train} 2>&1 | tee {REMOTE_LOG}"), check=False
      )
  finally:
    if args.delete_after:
      runner.run(vm.delete(), check=False)
  return status


def parse_args(argv):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  sub = parser.add_subparsers(dest="action", required=True)
  common = argparse.ArgumentParser(add_help=False)
  common.add_argument("--name", required=True, help="TPU VM name")
  common.add_argument("--zone", required=True, help="e.g. us-central2-b")
  common.add_argument("--project", help="GCP project (default: gcloud's)")
  common.add_argument("--dry-run", action="store_true", help="print every command, run none")

  start = sub.add_parser("up", parents=[common], help="create or reuse, install, train")
  start.add_argument("--accelerator", required=True, help="accelerator type, e.g. v4-32")
  start.add_argument("--version", help="TPU runtime version (default: by generation)")
  start.add_argument("--config", required=True, help="e.g. configs/teacher.py:uhd_iqa")
  start.add_argument("--workdir", required=True, help="gs://BUCKET/runs/NAME")
  start.add_argument("--spot", action="store_true", help="a Spot VM (preemptible, cheaper)")
  start.add_argument(
    "--git", help="a repository URL to clone on the workers instead of copying this working tree"
  )
  start.add_argument("--git-ref", help="the branch or tag of --git to clone")
  start.add_argument("--skip-install", action="store_true", help="reuse what the VM has")
  commands.add_staging_options(start)
  start.add_argument("--detach", action="store_true", help="run under nohup; see `logs`")
  start.add_argument("--delete-after", action="store_true", help="delete the VM at the end")
  start.add_argument(
    "overrides",
    nargs=argparse.REMAINDER,
    help="after '--': more flags for main, e.g. --config.batch_size=32",
  )

  logs = sub.add_parser("logs", parents=[common], help="follow a detached run's log")
  logs.add_argument("--worker", default="0", help="which worker's log ('all' for every one)")
  sub.add_parser("delete", parents=[common], help="delete the TPU VM")
  args = parser.parse_args(argv)
  if args.action == "up":
    args.overrides = commands.strip_separator(args.overrides)
    if not args.workdir.startswith("gs://"):
      print(
        f"warning: workdir {args.workdir} is not on GCS: each worker writes its own copy",
        file=sys.stderr,
      )
  return args


def main(argv=None) -> int:
  args = parse_args(argv)
  runner = commands.Runner(args.dry_run)
  if args.action == "up":
    return up(args, runner)
  vm = TpuVm(args.name, args.zone, args.project)
  if args.action == "logs":
    return runner.run(
      vm.gcloud(
        "ssh", args.name, f"--worker={args.worker}", f"--command=tail -n +1 -F {REMOTE_LOG}"
      ),
      check=False,
    )
  return runner.run(vm.delete(), check=False)


if __name__ == "__main__":
  sys.exit(main())
