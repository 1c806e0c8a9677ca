"""fit: ``TrainConfig`` + ``Dataset`` → a run folder; and the machinery around the training loop.

``train`` (the loop, evaluation, writing the run), ``features`` (frozen-backbone
feature cache), ``checkpoints`` (epoch checkpoints, resume), ``evaluation`` (metrics),
``progress`` (progress events), ``jobs`` (the trainer as a background process),
``distributed`` (the Ray engine).  Imports base, data, models, compute and store;
never inference (its sibling).
"""
