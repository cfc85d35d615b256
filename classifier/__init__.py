"""The rule classifier: text and headers in, signals with evidence out. Pure: no I/O.

`load_rules` (the only function that reads files) compiles the packaged rules/*.toml and a
team's own rule files into a frozen RuleSet; `classify` reads a message with it.
"""

from classifier.engine import classify
from classifier.model import (
    MISSING_INFO,
    PROBLEM_CATEGORIES,
    Category,
    Classification,
    Evidence,
    MachineKind,
)
from classifier.rules import RuleFileError, compile_rules, load_rules
from classifier.ruleset import RuleSet
from classifier.text import own_text

__all__ = [
    "MISSING_INFO",
    "PROBLEM_CATEGORIES",
    "Category",
    "Classification",
    "Evidence",
    "MachineKind",
    "RuleFileError",
    "RuleSet",
    "classify",
    "compile_rules",
    "load_rules",
    "own_text",
]
