"""Measurement that can tell an effect from noise: A/B trial sets (:mod:`.trials`), their
statistic (:mod:`.stats`), and the one wording of an effect (:mod:`.effect`)."""

from .effect import describe_effect, held_text, interval_text
from .stats import Estimate, ratio_interval
from .trials import StopRule, TrialRunner, TrialSet

__all__ = ["Estimate", "StopRule", "TrialRunner", "TrialSet", "describe_effect", "held_text",
           "interval_text", "ratio_interval"]
