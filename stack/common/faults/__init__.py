"""Fault injection: catalogue (registry), stored state (store), per-process engine, middleware."""

from stack.common.faults.engine import FaultEngine, identity, mark_span, parse_baggage
from stack.common.faults.model import Fault, FaultSpec
from stack.common.faults.registry import FAULT_KINDS, catalogue

__all__ = [
    "FAULT_KINDS",
    "Fault",
    "FaultEngine",
    "FaultSpec",
    "catalogue",
    "identity",
    "mark_span",
    "parse_baggage",
]
