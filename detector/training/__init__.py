"""Synthetic training data, training and evaluation for streetwatch's default model (DESIGN §4).

The default model is trained only on renders of :mod:`detector.training.scenes`; the same renderer
makes the demo clips in ``sample_videos/`` (:mod:`detector.training.clips`).
"""
