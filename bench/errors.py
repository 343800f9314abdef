"""Named errors of the harness: each says what went wrong and how to fix it.

The CLI prints ``ErrorName: message`` on one line (no traceback unless ``--debug``).
"""
from __future__ import annotations


class BenchError(Exception):
    """Base of every error the harness reports to a user."""


class TaskSpecError(BenchError):
    """A task spec cannot be read or is not a frozen task."""


class SpecDriftError(TaskSpecError):
    """A task spec's fingerprint differs from the frozen one."""


class DataError(BenchError):
    """A data store is missing, in the wrong schema or on the wrong grid."""


class SubmissionError(BenchError):
    """A submission directory or its ``submission.yaml`` is invalid."""


class OutputShapeError(SubmissionError):
    """A model returned an array of the wrong shape."""


class OutputDtypeError(SubmissionError):
    """A model returned an array of a non-floating dtype."""


class NonFiniteOutputError(SubmissionError):
    """A model returned NaN or infinite values."""


class LatentShapeError(OutputShapeError):
    """A codec's encoder returned latents of another shape than the latent_shape it declared."""


class NonFiniteLatentError(NonFiniteOutputError):
    """A codec's encoder returned NaN or infinite latents."""


class CodecContractError(SubmissionError):
    """A codec submission does not provide encode, decode, latent_shape and describe() as the contract says."""


class OutputUnitsError(SubmissionError):
    """A forecast lies outside the physical range of its variable (wrong units?)."""


class SubmissionCrashedError(SubmissionError):
    """A code submission raised an exception or its process died."""


class SubmissionTimeoutError(SubmissionError):
    """A code submission ran past its time limit."""


class SubmissionMemoryError(SubmissionError):
    """A code submission used more memory than its limit."""


class TargetAccessError(SubmissionError):
    """A code submission tried to read the evaluation data (the test targets)."""


class SubmissionProtocolError(SubmissionError):
    """A code submission's process sent something other than a valid answer (bad frame, dtype, header)."""


class SandboxError(SubmissionError):
    """The sandbox cannot run this submission safely here (e.g. the data lies inside a readable path)."""


class PredictionsFileError(SubmissionError):
    """A predictions file is not in the WeatherBench2 forecast layout the task needs."""


class MissingChannelsError(DataError):
    """A store lacks some of the channels a task needs (e.g. the real ERA5 sample has no z500 or t850)."""


class DataIntegrityError(DataError):
    """A prepared data directory no longer matches its fingerprint (changed after preparation)."""


class ResultsError(BenchError):
    """A results file is malformed or of an unknown schema version."""


class CheckpointError(BenchError):
    """Model weights are missing, unreadable or made for another task."""


class WeightsMissingError(CheckpointError):
    """A submission's weights file (or its config/meta) is not where its model expects it."""


class FingerprintMismatchError(CheckpointError):
    """Weights were trained for a task spec whose fingerprint differs from the task being run."""


class TrainingError(BenchError):
    """A training config or training run is invalid."""


class SchedulerError(BenchError):
    """The dask scheduler named by --scheduler cannot be reached or started."""


class ReproduceError(BenchError):
    """bench reproduce cannot start: no committed results, an unknown submission, a missing input."""
