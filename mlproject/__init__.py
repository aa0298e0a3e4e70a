"""Thin entry points that `MLproject` calls; all logic lives in `depth_experiments`."""
