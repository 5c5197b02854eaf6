"""The real main on the synthetic set: teacher, distillation, evaluation;
two jax.distributed processes (started by launch/local.py); SIGKILL and resume.

One uninterrupted teacher run is the reference for the other runs (and the
teacher of the distillation run), so every run here has the same shapes and
the persistent compilation cache serves the repeats. That run is made once
per test session, however many xdist workers ask for it (`shared_run`).
"""

import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from mobileiqa_jax import checkpoints
from tests.conftest import END_TO_END, MICRO, REPO, TEST_XLA_FLAGS

# One xdist group (conftest.END_TO_END): these tests share the teacher and
# student runs, so they run in one worker, the whole group started first.
pytestmark = [pytest.mark.slow, END_TO_END]

SMALL = [  # a few seconds a step on two cores
  "--config.data.height=64",
  "--config.data.width=64",
  "--config.data.synthetic.height=64",
  "--config.data.synthetic.width=64",
  "--config.data.synthetic.num_train=48",
  "--config.data.synthetic.num_validation=16",
  "--config.data.synthetic.num_test=16",
  "--config.batch_size=8",
  "--config.eval_batch_size=8",
  "--config.num_train_steps=6",
  # Each save costs a second or two; the killed run asks for more.
  "--config.checkpoint_every_steps=6",
  "--config.eval_every_steps=3",
  "--config.log_every_steps=1",
  # Smaller heads, set as a user would on the command line, so that these
  # runs also check that model overrides reach the checkpoint. No property
  # here depends on the heads' size; nor, with a warm compilation cache, does
  # this file's cost (361 CPU s with them against 354 without, one run each).
  *(f"--config.model.overrides.{field}={value}" for field, value in MICRO.items()),
]
TEACHER = ["--config=configs/teacher.py:runlocal", *SMALL]
ENV = {
  **os.environ,
  "JAX_PLATFORMS": "cpu",
  "PYTHONPATH": str(REPO),
  "XLA_FLAGS": TEST_XLA_FLAGS,
}


def main_command(workdir, *args):
  return [sys.executable, "-m", "mobileiqa_jax.main", f"--workdir={workdir}", *args]


def main_result(workdir, *args, timeout=600):
  return subprocess.run(
    main_command(workdir, *args), cwd=REPO, env=ENV, capture_output=True, text=True, timeout=timeout
  )


def run_main(workdir, *args, timeout=600):
  result = main_result(workdir, *args, timeout=timeout)
  assert result.returncode == 0, result.stderr[-5000:]
  return result


def latest_params(workdir):
  _, variables, metadata = checkpoints.load_model(workdir, which="latest")
  return variables, metadata


def shared_run(tmp_path_factory, worker_id, name, *commands):
  """(workdir, [result, ...]) of main run with each of `commands` in turn, in
  one workdir, once per test session; each result is {"stdout", "stderr"}.

  Under xdist every worker has its own session fixtures, so a plain one
  would train the same run once per worker. Here the first worker to ask
  runs main in the directory all workers share (the parent of their own),
  under a lock; the others wait for it and read its workdir and logs. A
  failed run fails each asker.
  """
  root = tmp_path_factory.getbasetemp()
  if worker_id != "master":
    root = root.parent
  workdir, log = root / name, root / f"{name}.log"
  with open(root / f"{name}.lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
    if not log.exists():
      results = []
      for args in commands:
        result = main_result(workdir, *args)
        results.append(vars(result))
        if result.returncode:
          break
      log.write_text(json.dumps(results))
  results = json.loads(log.read_text())
  for result in results:
    assert result["returncode"] == 0, result["stderr"][-5000:]
  return workdir, results


@pytest.fixture(scope="session")
def teacher_run(tmp_path_factory, worker_id):
  """(workdir, log) of the reference teacher run; read it, do not write to it."""
  workdir, (result,) = shared_run(tmp_path_factory, worker_id, "teacher", TEACHER)
  return workdir, result["stderr"]


@pytest.fixture(scope="session")
def student_run(tmp_path_factory, worker_id, teacher_run):
  """(workdir, distillation result, evaluation result): a student distilled
  from the teacher run, then evaluated by the evaluation job in its workdir."""
  distill = ["--config=configs/distill.py:runlocal", *SMALL]
  distill.append(f"--config.distill.teacher={teacher_run[0]}")
  evaluate = ["--config=configs/eval.py:runlocal", *SMALL]
  workdir, results = shared_run(tmp_path_factory, worker_id, "student", distill, evaluate)
  return workdir, *results


def _evaluations(log):
  """{step: SRCC + PLCC + KRCC} of the log's evaluations, and their split(s)."""
  sums, split_names = {}, set()
  for line in log.splitlines():
    if " eval " in line:
      words = line.split()
      split_names.add(words[words.index("eval") + 1])
      step = int(words[words.index("step") + 1].rstrip(":"))
      sums[step] = sum(float(words[words.index(k) + 1]) for k in ("SRCC", "PLCC", "KRCC"))
  return sums, split_names


def test_teacher_run_trains_evaluates_and_checkpoints(teacher_run):
  workdir, log = teacher_run
  assert "step 6/6" in log and "ETA" in log and "= score " in log
  # The best checkpoint is chosen on validation: every evaluation during
  # training is of validation, and the selected step is validation's best.
  sums, split_names = _evaluations(log)
  assert split_names == {"validation"} and set(sums) == {3, 6}
  summary = json.loads((workdir / "summary.json").read_text())
  assert summary["selection_split"] == "validation"
  assert summary["selected_step"] == max(sums, key=lambda step: (sums[step], -step))
  assert (summary["steps"], summary["images_seen"]) == (6, 48)
  assert summary["loss_terms"]["logged_steps"] == 6
  assert set(summary["loss_terms"]["last"]) == {"loss", "loss_score", "loss_score_weighted"}
  variables, metadata = latest_params(workdir)
  assert metadata["step"] == 6 and metadata["model"] == "teacher_tiny"
  assert metadata["overrides"] == MICRO  # from the command line into the checkpoint
  assert (workdir / "checkpoints" / "best").exists()
  assert any((workdir / "tensorboard").iterdir())
  assert json.loads((workdir / "config.json").read_text())["model"]["name"] == "teacher_tiny"


def _free_port():
  with socket.socket() as sock:
    sock.bind(("127.0.0.1", 0))
    return sock.getsockname()[1]


def run_processes(workdir, *args, count=2):
  """The main in `count` jax.distributed processes; their outputs."""
  port = _free_port()
  procs = [
    subprocess.Popen(
      main_command(
        workdir,
        *args,
        f"--coordinator_address=127.0.0.1:{port}",
        f"--num_processes={count}",
        f"--process_id={i}",
      ),
      cwd=REPO,
      env=ENV,
      stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT,
      text=True,
    )
    for i in range(count)
  ]
  outputs = [p.communicate(timeout=900)[0] for p in procs]
  for p, out in zip(procs, outputs):
    assert p.returncode == 0, out[-5000:]
  return outputs


def test_two_processes_agree_with_one(teacher_run, tmp_path):
  # Started by the local launcher, so that this one two-process run checks
  # launch/local.py too: its processes join one runtime, its output is
  # prefixed per process, and they train to the end.
  reference, _ = latest_params(teacher_run[0])
  workdir = tmp_path / "two"
  result = subprocess.run(
    [
      sys.executable,
      str(REPO / "launch" / "local.py"),
      "--num-processes=2",
      TEACHER[0],
      f"--workdir={workdir}",
      "--",
      *TEACHER[1:],
      # Evaluations cost seconds each across processes and change no loss:
      # one, at the end, is what this test reads.
      "--config.eval_every_steps=6",
    ],
    cwd=REPO,
    env=ENV,
    capture_output=True,
    text=True,
    timeout=900,
  )
  assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
  output = result.stdout
  assert "[1] " in output and "process 1 of 2" in output
  first = "\n".join(line for line in output.splitlines() if line.startswith("[0] "))
  assert "2 processes" in first and "step 6/6" in first
  assert (workdir / checkpoints.LATEST / "6").is_dir()
  # The same examples in every step, so the same losses (up to the order of
  # the float32 reductions, which sharding changes, and the log's five
  # decimals)...
  assert len(_losses(first)) == 6
  np.testing.assert_allclose(_losses(first), _losses(teacher_run[1]), rtol=1e-4, atol=1e-5)
  # ...and parameters: Adam divides by sqrt(v), which turns the last-bit
  # differences of near-zero gradients into visible ones, so the bound is
  # the size of a few learning-rate steps, not float32 epsilon.
  got, _ = latest_params(workdir)
  diffs = jax.tree.map(lambda a, b: float(np.max(np.abs(a - b))), got, reference)
  worst = max(jax.tree.leaves(diffs))
  print(f"two processes vs one: max |param diff| after 6 steps {worst:.2e}")
  assert worst <= 1e-3


def test_two_process_evaluation_equals_one(student_run, tmp_path):
  # One checkpoint, evaluated by one process (the student run's evaluation
  # job) and by two that each score half of every batch and gather: the same
  # scores, so the same metrics. (Metrics of the two training runs above may
  # not agree: these tiny models' scores are near ties, whose ranks the
  # parameters' last bits decide.)
  workdir = tmp_path / "two"
  run_processes(
    workdir,
    "--config=configs/eval.py:runlocal",
    *SMALL,
    f"--config.eval.checkpoint={student_run[0]}",
  )
  one, two = (json.loads((w / "eval.json").read_text()) for w in (student_run[0], workdir))
  assert set(one) == set(two) and {"validation", "test"} <= set(one)
  for split in ("validation", "test"):
    assert two[split] == pytest.approx(one[split], abs=1e-5), split


def _losses(log):
  return [
    float(line.split(" loss ")[1].split()[0]) for line in log.splitlines() if " loss " in line
  ]


def _kill_when(proc, condition, timeout=600):
  deadline = time.time() + timeout
  while time.time() < deadline:
    if proc.poll() is not None:
      raise AssertionError(f"run ended before it could be killed: {proc.stderr.read()[-3000:]}")
    if condition():
      proc.send_signal(signal.SIGKILL)
      proc.wait()
      return
    time.sleep(0.05)
  raise AssertionError("condition never met")


def test_killed_runs_resume_to_exactly_the_same_parameters(teacher_run, tmp_path):
  reference, _ = latest_params(teacher_run[0])
  workdir = tmp_path / "killed"
  latest = workdir / "checkpoints" / "latest"

  def saving_over_a_complete_checkpoint():
    entries = [p.name for p in latest.iterdir()] if latest.exists() else []
    return any("tmp" in name for name in entries) and any(name.isdigit() for name in entries)

  # Saves every other step, so that one is under way over a complete one.
  killed = [*TEACHER, "--config.checkpoint_every_steps=2"]
  run = subprocess.Popen(
    main_command(workdir, *killed),
    cwd=REPO,
    env=ENV,
    stdout=subprocess.DEVNULL,
    stderr=subprocess.PIPE,
    text=True,
  )
  # One kill covers both hazards: a checkpoint half written (which the
  # resumed run must ignore) on top of a complete, older one (which it must
  # resume from, data position included).
  _kill_when(run, saving_over_a_complete_checkpoint)
  complete = sorted(int(p.name) for p in latest.iterdir() if p.name.isdigit())
  assert complete and complete[-1] < 6
  result = run_main(workdir, *killed)
  assert f"resumed from {latest} at step {complete[-1]}" in result.stderr, result.stderr[-3000:]
  got, metadata = latest_params(workdir)
  assert metadata["step"] == 6
  jax.tree.map(np.testing.assert_array_equal, got, reference)


def test_distillation_then_evaluation(student_run):
  workdir, distilled, evaluated = student_run
  log = distilled["stderr"]
  assert "distilling from teacher" in log and "step 6/6" in log
  # Every loss term is shown: weighted in the sum, raw beside it.
  assert " + dof " in log and " + levels " in log and " + teacher_score " in log
  assert "(raw: dof " in log
  terms = json.loads((workdir / "summary.json").read_text())["loss_terms"]["last"]
  names = ("score", "dof", "levels", "teacher_score")
  weighted = [terms[f"loss_{name}_weighted"] for name in names]
  assert terms["loss"] == pytest.approx(sum(weighted), rel=1e-5)
  # runlocal weighs the feature terms at 0.1 and the teacher's score as the
  # label (the paper: 1, 1, 1 and no teacher score).
  assert terms["loss_dof_weighted"] == pytest.approx(0.1 * terms["loss_dof"], rel=1e-5)
  assert terms["loss_teacher_score_weighted"] == pytest.approx(terms["loss_teacher_score"])
  # Only the student is saved.
  variables, metadata = latest_params(workdir)
  assert metadata["model"] == "student_tiny"
  assert set(variables["params"]) >= {"local_cnn"} and "global_vit" not in variables["params"]

  report = evaluated["stdout"]
  assert "SRCC" in report and "validation" in report and "test" in report
  table = json.loads((workdir / "eval.json").read_text())
  assert set(table) == {"checkpoint", "validation", "test"}
  # The evaluation job scores the checkpoint that training selected, so on
  # validation it finds the figures the selection was made by.
  selected = json.loads((workdir / "summary.json").read_text())["selected_metrics"]
  assert selected == pytest.approx({**table["validation"], "sum": selected["sum"]}, abs=1e-5)
  assert set(table["test"]) >= {"srcc", "plcc", "krcc"}
  assert all(np.isfinite(value) for value in table["test"].values())


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(teacher_run, tmp_path):
  workdir = tmp_path / "diverged"
  shutil.copytree(teacher_run[0], workdir)  # latest checkpoint: step 6
  result = subprocess.run(
    main_command(
      workdir, *TEACHER, "--config.num_train_steps=9", "--config.optimizer.learning_rate=1e30"
    ),
    cwd=REPO,
    env=ENV,
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert result.returncode != 0
  assert "NonFiniteLossError: non-finite loss" in result.stderr
  assert "the last good checkpoint is step 6" in result.stderr
  _, metadata = latest_params(workdir)
  assert metadata["step"] == 6


def test_compilation_cache_is_set_once_and_can_be_turned_off(tmp_path):
  from mobileiqa_jax import main  # pylint: disable=g-import-not-at-top

  chosen = jax.config.jax_compilation_cache_dir
  try:
    jax.config.update("jax_compilation_cache_dir", None)
    main.use_compilation_cache("")
    assert jax.config.jax_compilation_cache_dir is None
    main.use_compilation_cache(str(tmp_path / "cache"))
    assert jax.config.jax_compilation_cache_dir == str(tmp_path / "cache")
    # A directory already chosen (the environment's, or an earlier call's) stays.
    main.use_compilation_cache(str(tmp_path / "other"))
    assert jax.config.jax_compilation_cache_dir == str(tmp_path / "cache")
  finally:
    jax.config.update("jax_compilation_cache_dir", chosen)
