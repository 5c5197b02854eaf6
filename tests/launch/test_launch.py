"""The launchers, against fake gcloud, srun and ssh on PATH.

Each launcher is run twice over: with --dry-run (it prints its commands and
the fakes must see none of them) and for real against the fakes, which record
every call. The fake srun and ssh go further and start the processes they are
asked for on this machine, with a stand-in for main (main_probe.py) that joins
jax.distributed through main's own flag handling: so the SLURM variables and
the coordinator flags are shown to reach jax.distributed.initialize and
connect the processes. The local launcher's real two-process training run is
tests/train/test_main.py's two-process test, which also checks that it
agrees with one process.
"""

import json
import os
import pathlib
import re
import shlex
import socket
import subprocess
import sys
import tarfile
import textwrap
import time

import pytest

from tests.conftest import REPO

LAUNCH = REPO / "launch"
PROBE = REPO / "tests" / "launch" / "main_probe.py"
CONFIG = "configs/teacher.py:runlocal"
OVERRIDE = "--config.batch_size=4"

# Each fake appends its argv to $FAKE_LOG as one JSON line, then acts.
FAKE_GCLOUD = """
  if "describe" in args:
    sys.exit(0 if os.environ.get("FAKE_TPU_EXISTS") == "1" else 1)
  if "scp" in args:  # keep the archive, to look inside
    shutil.copy(args[args.index("scp") + 1], os.environ["FAKE_DIR"] + "/archive.tar.gz")
  if any("mobileiqa_jax.main" in a for a in args):
    sys.exit(int(os.environ.get("FAKE_MAIN_STATUS", "0")))
"""
# ssh HOST COMMAND: run COMMAND here, as the host's shell would: in a
# session of its own, as sshd starts it, reading this ssh's stdin. Like a
# real ssh client, stopping this one leaves the command running.
FAKE_SSH = """
  host, command = args[-2], args[-1]
  if host == os.environ.get("FAKE_FAILING_HOST"):
    sys.exit(3)
  sys.exit(subprocess.run(["bash", "-c", command], start_new_session=True).returncode)
"""
# srun [OPTIONS] COMMAND...: SLURM_NTASKS tasks here, one per "node".
FAKE_SRUN = """
  command = args[next(i for i, a in enumerate(args) if not a.startswith("-")):]
  procs = [subprocess.Popen(command, env=dict(os.environ, SLURM_PROCID=str(i), SLURM_LOCALID="0",
                                              SLURM_NODEID=str(i)))
           for i in range(int(os.environ["SLURM_NTASKS"]))]
  sys.exit(max(p.wait() for p in procs))
"""
# The interpreter the launchers name: runs the probe instead of main, and
# the staging script for real.
FAKE_PYTHON = f"""
  if args[:1] == ["launch/stage_data.py"]:
    os.execv(sys.executable, [sys.executable, *args])
  assert args[:2] == ["-m", "mobileiqa_jax.main"], args
  os.execv(sys.executable, [sys.executable, {str(PROBE)!r}, *args[2:]])
"""


def _write_fake(path, body):
  path.write_text(
    f"#!{sys.executable}\nimport json, os, shutil, subprocess, sys\n"
    "args = sys.argv[1:]\n"
    "with open(os.environ['FAKE_LOG'], 'a') as log:\n"
    "  log.write(json.dumps([os.path.basename(sys.argv[0])] + args) + '\\n')\n"
    + textwrap.dedent(body)
  )
  path.chmod(0o755)


@pytest.fixture
def fakes(tmp_path):
  """(environment with the fakes first on PATH, function returning the recorded calls)."""
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir()
  for name, body in (
    ("gcloud", FAKE_GCLOUD),
    ("ssh", FAKE_SSH),
    ("srun", FAKE_SRUN),
    ("python", FAKE_PYTHON),
  ):
    _write_fake(bin_dir / name, body)
  log = tmp_path / "calls.jsonl"
  env = {
    **os.environ,
    "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
    "FAKE_LOG": str(log),
    "FAKE_DIR": str(tmp_path),
    "JAX_PLATFORMS": "cpu",
    "XLA_FLAGS": "",
  }

  def calls():
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

  return env, calls


def launch(script, *args, env, timeout=120):
  command = (
    ["bash", str(LAUNCH / script)]
    if script.endswith(".sbatch")
    else [sys.executable, str(LAUNCH / script)]
  )
  return subprocess.run(
    [*command, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
  )


def printed(stdout):
  """The commands a launcher printed ('+ ' lines), each split into its arguments."""
  return [
    shlex.split(line[2:].removesuffix(" &"))
    for line in stdout.splitlines()
    if line.startswith("+ ")
  ]


def probes(output):
  """Every `PROBE {...}` report in the output. Two processes share one pipe, so
  two reports can land on one line: decode each object where it starts."""
  decoder = json.JSONDecoder()
  parts = output.split("PROBE ")[1:]
  return sorted((decoder.raw_decode(part)[0] for part in parts), key=lambda r: r["process_index"])


def free_port():
  with socket.socket() as sock:
    sock.bind(("127.0.0.1", 0))
    return sock.getsockname()[1]


# TPU VM --------------------------------------------------------------------------------------

TPU = ["--name=iqa", "--zone=us-central2-b"]
TPU_UP = [
  "up",
  *TPU,
  "--accelerator=v4-32",
  f"--config={CONFIG}",
  "--workdir=gs://bucket/runs/teacher",
]


def _gcloud_verbs(commands):
  return [c[4] for c in commands if c[0] == "gcloud"]


def _assert_tpu_commands(commands, *, create=True, delete=False):
  for command in commands:
    assert command[:4] == ["gcloud", "compute", "tpus", "tpu-vm"], command
    assert "--zone=us-central2-b" in command
  verbs = [
    "describe",
    *(["create"] if create else []),
    "scp",
    "ssh",
    "ssh",
    *(["delete"] if delete else []),
  ]
  assert _gcloud_verbs(commands) == verbs
  if create:
    assert {"--accelerator-type=v4-32", "--version=tpu-ubuntu2204-base"} <= set(commands[1])
  scp, install, train = commands[1 + create : 4 + create]
  # Everything on the workers runs on all of them at once.
  assert all("--worker=all" in c for c in (scp, install, train))
  assert "setup_worker.sh tpu" in install[-2]
  remote = shlex.split(train[-2].removeprefix("--command="))
  main = remote[remote.index("mobileiqa_jax.main") + 1 :]
  assert main[:4] == [
    f"--config={CONFIG}",
    "--workdir=gs://bucket/runs/teacher",
    "--distributed",
    OVERRIDE,
  ]
  if delete:
    assert "--quiet" in commands[-1]


def test_tpu_dry_run_prints_every_command_and_runs_none(fakes):
  env, calls = fakes
  result = launch("tpu_vm.py", *TPU_UP, "--dry-run", "--delete-after", "--", OVERRIDE, env=env)
  assert result.returncode == 0, result.stderr
  _assert_tpu_commands(printed(result.stdout), delete=True)
  assert calls() == []


def test_tpu_runs_those_commands_and_ships_the_checkout(fakes, tmp_path):
  env, calls = fakes
  dry = launch("tpu_vm.py", *TPU_UP, "--dry-run", "--", OVERRIDE, env=env)
  result = launch("tpu_vm.py", *TPU_UP, "--", OVERRIDE, env=env)
  assert result.returncode == 0, result.stderr
  ran = calls()
  _assert_tpu_commands(ran)
  # The real run is the dry run's list, but for the archive's temporary path.
  scrub = lambda cmds: [
    [re.sub(r"^/.*/mobileiqa-jax\.tar\.gz$", "ARCHIVE", a) for a in c] for c in cmds
  ]
  assert scrub(ran) == scrub(printed(dry.stdout))
  with tarfile.open(tmp_path / "archive.tar.gz") as tar:
    names = set(tar.getnames())
  assert {
    "pyproject.toml",
    "mobileiqa_jax/main.py",
    "configs/teacher.py",
    "launch/setup_worker.sh",
  } <= names
  assert not any(n.startswith((".git/", ".venv/")) or "__pycache__" in n for n in names)


def test_tpu_dry_run_stages_the_data_on_every_worker_before_training(fakes):
  env, calls = fakes
  result = launch(
    "tpu_vm.py", *TPU_UP, "--dry-run", "--stage-data=gs://bucket/tfds", "--", OVERRIDE, env=env
  )
  assert result.returncode == 0, result.stderr
  commands = printed(result.stdout)
  assert _gcloud_verbs(commands) == ["describe", "create", "scp", "ssh", "ssh", "ssh"]
  install, stage, train = commands[3:]
  assert "setup_worker.sh tpu" in install[-2]
  assert "--worker=all" in stage
  remote = shlex.split(stage[-2].removeprefix("--command="))
  assert remote[-3:] == ["launch/stage_data.py", "gs://bucket/tfds", "~/mobileiqa-data"]
  remote = shlex.split(train[-2].removeprefix("--command="))
  main = remote[remote.index("mobileiqa_jax.main") + 1 :]
  assert main[2:5] == ["--distributed", "--config.data.data_dir=~/mobileiqa-data", OVERRIDE]
  assert calls() == []


def test_tpu_reuses_an_existing_vm_and_deletes_it_even_after_a_failure(fakes):
  env, calls = fakes
  env = {**env, "FAKE_TPU_EXISTS": "1", "FAKE_MAIN_STATUS": "7"}
  result = launch("tpu_vm.py", *TPU_UP, "--skip-install", "--delete-after", env=env)
  assert result.returncode == 7
  assert "reusing" in result.stdout
  assert _gcloud_verbs(calls()) == ["describe", "ssh", "delete"]


def test_tpu_detached_run_logs_and_delete(fakes):
  env, calls = fakes
  env = {**env, "FAKE_TPU_EXISTS": "1"}
  assert launch("tpu_vm.py", *TPU_UP, "--skip-install", "--detach", env=env).returncode == 0
  assert launch("tpu_vm.py", "logs", *TPU, env=env).returncode == 0
  assert launch("tpu_vm.py", "delete", *TPU, env=env).returncode == 0
  _, detached, logs, delete = calls()
  assert detached[-2].startswith("--command=nohup ") and "--worker=all" in detached
  assert "mobileiqa-run.log" in logs[-2] and "--worker=0" in logs
  assert delete[4] == "delete" and "--quiet" in delete


# SLURM ---------------------------------------------------------------------------------------


def _slurm_env(env):
  return {
    **env,
    "SLURM_JOB_ID": "4242",
    "SLURM_NTASKS": "2",
    "SLURM_JOB_NUM_NODES": "2",
    "SLURM_STEP_NODELIST": "localhost",
    "SLURM_JOB_NODELIST": "localhost",
    "SLURM_GPUS_ON_NODE": "2",
    "JAX_COORDINATOR_PORT": str(free_port()),
    "MOBILEIQA_PYTHON": str(LAUNCH.parent / "unused"),
  }


def test_slurm_batch_script_header_asks_one_task_per_node():
  lines = (LAUNCH / "slurm.sbatch").read_text().splitlines()
  header = [line for line in lines if line.startswith("#SBATCH")]
  assert "#SBATCH --ntasks-per-node=1" in header
  assert any(line.startswith("#SBATCH --gpus-per-node=") for line in header)


def test_slurm_dry_run(fakes):
  env, calls = fakes
  result = launch(
    "slurm.sbatch", "--dry-run", CONFIG, "/shared/runs/x", OVERRIDE, env=_slurm_env(env)
  )
  assert result.returncode == 0, result.stderr
  (command,) = printed(result.stdout)
  assert command[:3] == ["srun", "--ntasks-per-node=1", "--kill-on-bad-exit=1"]
  assert command[4:] == [
    "-m",
    "mobileiqa_jax.main",
    f"--config={CONFIG}",
    "--workdir=/shared/runs/x",
    "--distributed",
    OVERRIDE,
  ]
  assert "devices 0,1 per process" in result.stdout
  assert calls() == []


def test_slurm_tasks_join_one_runtime_with_all_gpus_each(fakes, tmp_path):
  env, calls = fakes
  env = dict(_slurm_env(env), MOBILEIQA_PYTHON=str(tmp_path / "bin" / "python"))
  result = launch("slurm.sbatch", CONFIG, str(tmp_path / "run"), OVERRIDE, env=env)
  assert result.returncode == 0, result.stderr[-3000:]
  (srun,) = [c for c in calls() if c[0] == "srun"]
  assert srun[-3:] == [f"--workdir={tmp_path / 'run'}", "--distributed", OVERRIDE]
  reports = probes(result.stdout)
  # JAX read the SLURM variables: two processes, ids 0 and 1, one runtime;
  # and each process keeps both of its node's GPUs, not just SLURM_LOCALID's.
  assert [(r["process_index"], r["process_count"]) for r in reports] == [(0, 2), (1, 2)]
  assert all(r["cuda_visible_devices"] == "0,1" for r in reports)
  assert all(r["config_model"] == "teacher_tiny" and r["batch_size"] == 4 for r in reports)


def test_slurm_dry_run_stages_the_data_first(fakes):
  env, calls = fakes
  result = launch(
    "slurm.sbatch",
    "--dry-run",
    "--stage-data=/shared/tfds",
    "--stage-dir=/scratch/tfds",
    CONFIG,
    "/shared/runs/x",
    OVERRIDE,
    env=_slurm_env(env),
  )
  assert result.returncode == 0, result.stderr
  stage, train = printed(result.stdout)
  assert stage[:3] == ["srun", "--ntasks-per-node=1", "--kill-on-bad-exit=1"]
  assert stage[4:] == ["launch/stage_data.py", "/shared/tfds", "/scratch/tfds"]
  assert train[-3:] == ["--distributed", "--config.data.data_dir=/scratch/tfds", OVERRIDE]
  assert calls() == []


# Plain hosts over ssh --------------------------------------------------------------------------


def _hosts_args(tmp_path, port):
  return [
    "--hosts=127.0.0.1,localhost",
    f"--port={port}",
    f"--config={CONFIG}",
    f"--workdir={tmp_path / 'run'}",
    f"--remote-dir={REPO}",
    f"--python={tmp_path / 'bin' / 'python'}",
    "--env=JAX_PLATFORMS=cpu",
    "--",
    OVERRIDE,
  ]


def test_hosts_dry_run(fakes, tmp_path):
  env, calls = fakes
  result = launch("hosts.py", "--dry-run", *_hosts_args(tmp_path, 8476), env=env)
  assert result.returncode == 0, result.stderr
  commands = printed(result.stdout)
  assert [c[:4] for c in commands] == [
    ["ssh", "-o", "BatchMode=yes", "127.0.0.1"],
    ["ssh", "-o", "BatchMode=yes", "localhost"],
  ]
  for i, command in enumerate(commands):
    remote = command[4]
    main = shlex.split(remote)[shlex.split(remote).index("mobileiqa_jax.main") + 1 :]
    assert main == [
      f"--config={CONFIG}",
      f"--workdir={tmp_path / 'run'}",
      "--coordinator_address=127.0.0.1:8476",
      "--num_processes=2",
      f"--process_id={i}",
      OVERRIDE,
    ]
  assert calls() == []


def test_hosts_processes_join_one_runtime(fakes, tmp_path):
  env, calls = fakes
  result = launch("hosts.py", *_hosts_args(tmp_path, free_port()), env=env)
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  # The hosts are started concurrently, so their calls arrive in any order.
  assert sorted(c[3] for c in calls() if c[0] == "ssh") == ["127.0.0.1", "localhost"]
  reports = probes(result.stdout)
  assert [(r["process_index"], r["process_count"]) for r in reports] == [(0, 2), (1, 2)]
  assert "[localhost] PROBE" in result.stdout


def test_hosts_stage_the_data_then_train_from_the_copy(fakes, tmp_path):
  env, _ = fakes
  shared = tmp_path / "shared" / "tfds" / "koniq10k" / "1.0.0"
  shared.mkdir(parents=True)
  (shared / "koniq10k-train.array_record-00000-of-00001").write_bytes(os.urandom(2048))
  (shared / "dataset_info.json").write_text("{}")
  local = tmp_path / "local-disk" / "tfds"
  args = _hosts_args(tmp_path, free_port())
  staging = [f"--stage-data={tmp_path / 'shared' / 'tfds'}", f"--stage-dir={local}"]
  result = launch("hosts.py", *staging, *args, env=env)
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  # Both "hosts" are this machine, so they staged onto one disk at once.
  assert result.stdout.count("stage_data: staged 2 files") + result.stdout.count("reusing") == 2
  copied = local / "koniq10k" / "1.0.0" / "koniq10k-train.array_record-00000-of-00001"
  assert copied.read_bytes() == (shared / copied.name).read_bytes()
  reports = probes(result.stdout)
  assert [r["data_dir"] for r in reports] == [str(local)] * 2


def test_hosts_one_failure_stops_the_others(fakes, tmp_path):
  env, _ = fakes
  # Process 1 fails at once; process 0 would wait for it at the coordinator.
  env = {**env, "FAKE_FAILING_HOST": "localhost"}
  result = launch("hosts.py", *_hosts_args(tmp_path, free_port()), env=env, timeout=60)
  assert result.returncode == 3
  # ...and process 0 does not outlive its closed ssh session.
  workdir = f"--workdir={tmp_path / 'run'}"
  deadline = time.monotonic() + 20
  while (left := _processes_with(workdir)) and time.monotonic() < deadline:
    time.sleep(0.2)
  assert not left, f"still running after the launcher returned: {left}"


def _processes_with(argument: str) -> list[str]:
  """Command lines of this machine's processes that have `argument`."""
  found = []
  for cmdline in pathlib.Path("/proc").glob("[0-9]*/cmdline"):
    try:
      args = cmdline.read_bytes().split(b"\0")
    except OSError:  # gone meanwhile
      continue
    if argument.encode() in args:
      found.append(b" ".join(args).decode(errors="replace"))
  return found


# Local processes ------------------------------------------------------------------------------


def test_local_dry_run(fakes):
  env, _ = fakes
  result = launch(
    "local.py",
    "--num-processes=3",
    "--devices-per-process=4",
    f"--config={CONFIG}",
    "--workdir=/tmp/x",
    "--port=1234",
    "--dry-run",
    "--",
    OVERRIDE,
    env=env,
  )
  assert result.returncode == 0, result.stderr
  lines = [line for line in result.stdout.splitlines() if line.startswith("+ ")]
  assert len(lines) == 3
  for i, line in enumerate(lines):
    assert "JAX_PLATFORMS=cpu XLA_FLAGS=--xla_force_host_platform_device_count=4 " in line
    assert line.endswith(
      f" --coordinator_address=127.0.0.1:1234 --num_processes=3 --process_id={i} {OVERRIDE} &"
    )
