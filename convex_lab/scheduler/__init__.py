"""Scheduled functions and crons (reference §8, §9): ``ctx.scheduler``, ``backend.scheduler``."""
