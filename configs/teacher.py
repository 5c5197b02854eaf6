"""Teacher training: MobileViTv2-200 + MAL heads on full-resolution images.

  python -m mobileiqa_jax.main --config=configs/teacher.py:uhd_iqa --workdir=runs/teacher

Config arg: a dataset (uhd_iqa, koniq10k, livec, spaq, bid, csv, synthetic;
default synthetic), optionally ',runlocal'.
- The paper's recipe: Adam lr 1e-5 with coupled L2 1e-5, cosine over 50
  epochs stepped per epoch, 10 epochs, batch 8, MSE, seed 3407; best
  checkpoint by SRCC + PLCC + KRCC.
- Hardware: uhd_iqa at 1231x1907 is 748 GFLOPs per image forward; batch 8
  wants an accelerator with >= 40 GB, or grad_accumulation_steps on smaller
  ones (e.g. --config.grad_accumulation_steps=4).
- Expected: a reproduction of this teacher reached SRCC 0.752 / PLCC 0.756 on
  UHD-IQA validation at 1907x1231 (0.416 SRCC at 448x448).
- runlocal: a tiny teacher on 128x128 synthetic images, minutes on a 2-core
  CPU; what it reaches is in the README's tables ("How well the main job
  learns today").
"""

from configs import default


def get_config(arg=None):
  config = default.get_config(arg)
  _, flags = default.parse_arg(arg)
  config.model.name = "teacher_tiny" if "runlocal" in flags else "teacher"
  return config
