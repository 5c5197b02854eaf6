"""Knowledge distillation: MobileNetV3-Large student from a frozen teacher.

  python -m mobileiqa_jax.main --config=configs/distill.py:uhd_iqa \
      --config.distill.teacher=runs/teacher --workdir=runs/student

Config arg: a dataset (default synthetic), optionally ',runlocal'.
- Loss: L(student DOF, teacher DOF) + L(student levels, teacher levels)
  + L(student score, label), weights config.loss.*_weight (1, 1, 1 is the
  paper); dof_weight = levels_weight = 0 trains the same student without
  distillation, for comparison. config.loss.feature_norm=True (not the
  paper's) divides each feature term by the teacher's feature energy in the
  batch. config.loss.teacher_score_weight (not the paper's; 0 there, 1 in
  runlocal) adds L(student score, teacher score). The log line, TensorBoard
  and WORKDIR/summary.json show every term, raw and weighted.
- The best checkpoint is chosen on validation (config.eval_split).
- The teacher is frozen in eval mode and never saved with the student; it can
  run at another size (config.distill.teacher_size = (H, W)).
- Hardware: at 1231x1907 the teacher forward (748 GFLOPs) dominates; batch 8
  wants an accelerator; runlocal takes about 2 minutes on a 2-core CPU.
- Expected: the paper's student reaches close to the teacher's SRCC on
  UHD-IQA at 47.8 GMACs per image.
"""

from configs import default


def get_config(arg=None):
  config = default.get_config(arg)
  _, flags = default.parse_arg(arg)
  config.model.name = "student_tiny" if "runlocal" in flags else "student"
  config.distill.enabled = True
  return config
