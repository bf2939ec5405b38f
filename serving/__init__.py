"""Scoring: one core (``score_customers``) that batch scoring (local and Spark), the HTTP
service and the demo call with a loaded ``ModelPair``."""

from retain.serving.models import LoadedPair, load_model_pair
from retain.serving.scoring import ModelPair, ScoredBatch, score_customers

__all__ = ["LoadedPair", "ModelPair", "ScoredBatch", "load_model_pair", "score_customers"]
