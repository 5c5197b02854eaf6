"""TensorBoard scalars, written and read without importing TensorFlow.

A TensorBoard log folder holds `events.out.tfevents.*` files: `Event` protos,
each framed as a TFRecord (length, masked CRC32C of the length, the bytes,
their masked CRC32C). tensorboard's own protos and record framing import no
TensorFlow, so a training run writes its scalars after 0.2 s of imports
instead of the 3 s that tf.summary (clu's writer) costs each process. The
scalars are written as tf.summary.scalar writes them (a float32 tensor tagged
for the scalars plugin), so TensorBoard shows them the same way.

Files go through etils epath: a gs:// workdir works as everywhere else (epath
then uses TensorFlow's file system, as tf.summary would).
"""

from collections.abc import Mapping
import itertools
import os
import socket
import struct
import time

from etils import epath
import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.scalar import metadata as scalar_metadata
from tensorboard.summary.writer import record_writer
from tensorboard.util import tensor_util

# How often buffered events reach the file: a flush of a gs:// file uploads
# all of it, so not at every step.
FLUSH_EVERY_SECONDS = 10.0
_SCALAR_METADATA = scalar_metadata.create_summary_metadata(display_name="", description="")
_file_numbers = itertools.count()  # tells apart the files one process opens in one second


class ScalarWriter:
  """Appends scalars to a new event file in `logdir` (created if missing)."""

  def __init__(self, logdir):
    logdir = epath.Path(logdir)
    logdir.mkdir(parents=True, exist_ok=True)
    # tf.summary's naming: TensorBoard reads a folder's files in name order,
    # so a resumed run's file (a later time) follows the first one's.
    host, pid, number = socket.gethostname(), os.getpid(), next(_file_numbers)
    name = f"events.out.tfevents.{int(time.time())}.{host}.{pid}.{number}.v2"
    self.path = logdir / name
    self._records = record_writer.RecordWriter(self.path.open("wb"))
    self._last_flush = time.monotonic()
    self._write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))
    self.flush()

  def write_scalars(self, step: int, scalars: Mapping[str, float]):
    values = [
      summary_pb2.Summary.Value(
        tag=tag,
        tensor=tensor_util.make_tensor_proto(np.float32(value)),
        metadata=_SCALAR_METADATA,
      )
      for tag, value in scalars.items()
    ]
    self._write(
      event_pb2.Event(wall_time=time.time(), step=step, summary=summary_pb2.Summary(value=values))
    )
    if time.monotonic() - self._last_flush >= FLUSH_EVERY_SECONDS:
      self.flush()

  def flush(self):
    self._records.flush()
    self._last_flush = time.monotonic()

  def close(self):
    if not self._records.closed:
      self._records.flush()
      self._records.close()

  def _write(self, event: event_pb2.Event):
    self._records.write(event.SerializeToString())


class NoWriter:
  """What processes other than the first write: nothing (the first writes for all)."""

  def write_scalars(self, step: int, scalars: Mapping[str, float]):
    del step, scalars

  def flush(self):
    pass

  def close(self):
    pass


def _records(path: epath.Path):
  """The framed records of one event file; a record cut short by a killed
  writer ends the file."""
  data = path.read_bytes()
  offset = 0
  while offset + 12 <= len(data):
    (length,) = struct.unpack_from("<Q", data, offset)
    start, end = offset + 12, offset + 12 + length
    if end + 4 > len(data):
      return
    yield data[start:end]
    offset = end + 4


def read_scalars(logdir) -> dict[str, tuple[list[int], list[float]]]:
  """{tag: (steps, values)} of every scalar in a TensorBoard log folder's
  event files (this module's or tf.summary's), in the order written."""
  curves = {}
  for path in sorted(epath.Path(logdir).glob("events.out.tfevents.*")):
    for record in _records(path):
      event = event_pb2.Event.FromString(record)
      for value in event.summary.value:
        if value.HasField("tensor"):
          number = float(tensor_util.make_ndarray(value.tensor))
        elif value.HasField("simple_value"):
          number = float(value.simple_value)
        else:
          continue
        steps, numbers = curves.setdefault(value.tag, ([], []))
        steps.append(int(event.step))
        numbers.append(number)
  return curves
