"""Judging trained models: scores, listening material, reports, history."""
