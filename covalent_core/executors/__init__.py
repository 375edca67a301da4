"""Executors: the base class every executor plugin subclasses, and the built-in local one."""

from .base import Executor, TaskContext, TaskOutcome

__all__ = ["Executor", "TaskContext", "TaskOutcome"]
