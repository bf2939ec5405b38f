"""Batch scoring jobs (``retain score``): every customer of a dataset folder, on one machine
(``local``) or on Spark (``spark``, imported only when asked for: it needs pyspark). Both
engines score chunks of customers with ``chunks.score_chunk`` and finish with
``chunks.finish_score_job``, so they write the same file."""

from retain.serving.jobs.chunks import ScoreJob, ScoreSummary
from retain.serving.jobs.local import run_score_job

__all__ = ["ScoreJob", "ScoreSummary", "run_score_job"]
