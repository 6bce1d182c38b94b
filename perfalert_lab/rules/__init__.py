"""The rule model (frozen, validated value objects) and its file formats."""

from .model import (
    AGGREGATES,
    CHANNELS,
    OPERATORS,
    SEVERITIES,
    Channel,
    ChannelLimits,
    Escalation,
    EscalationLevel,
    LognormalDelay,
    Responders,
    Rule,
    RuleSet,
    Silence,
)
from .yaml_io import load_rules, parse_rules, rules_to_yaml, save_rules

__all__ = [
    "AGGREGATES",
    "CHANNELS",
    "OPERATORS",
    "SEVERITIES",
    "Channel",
    "ChannelLimits",
    "Escalation",
    "EscalationLevel",
    "LognormalDelay",
    "Responders",
    "Rule",
    "RuleSet",
    "Silence",
    "load_rules",
    "parse_rules",
    "rules_to_yaml",
    "save_rules",
]
