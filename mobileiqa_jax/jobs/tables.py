"""The one results table: runs by split, with SRCC, PLCC and KRCC."""


def _describe_run(summary: dict) -> list[str]:
  """The run's columns: steps, images seen, wall time, selected checkpoint."""
  if not summary:
    return ["?", "?", "?", "?"]
  seconds = int(summary["wall_seconds"])
  if "steps" not in summary:  # a fit, not a training run
    return ["-", "-", f"{seconds // 60}m{seconds % 60:02d}s", "-"]
  selected = summary["selected_step"]
  return [
    str(summary["steps"]),
    str(summary["images_seen"]),
    f"{seconds // 60}m{seconds % 60:02d}s",
    f"{'?' if selected is None else selected} ({summary['selection_split']})",
  ]


def format_runs(results: dict, summaries: dict | None = None) -> str:
  """One row per run and split with its correlations. With `summaries`
  ({run: summary.json}), each run's first row also says what it did: steps,
  images seen, wall time and the selected checkpoint, the one scored."""
  header = ["run", "steps", "images", "time", "selected step", "split", "SRCC", "PLCC", "KRCC"]
  widths = [8, 5, 6, 6, 16, 10, 7, 7, 7]
  if summaries is None:
    header, widths = header[:1] + header[5:], widths[:1] + widths[5:]
  right = {"steps", "images", "time", "SRCC", "PLCC", "KRCC"}

  def row(cells):
    return "  ".join(
      c.rjust(w) if h in right else c.ljust(w) for c, w, h in zip(cells, widths, header)
    ).rstrip()

  lines = [row(header)]
  for run, splits in results.items():
    described = [run] if summaries is None else [run, *_describe_run(summaries.get(run, {}))]
    for split, m in splits.items():
      lines.append(row([*described, split, *(f"{m[k]:.4f}" for k in ("srcc", "plcc", "krcc"))]))
      described = [""] * len(described)
  return "\n".join(lines)
