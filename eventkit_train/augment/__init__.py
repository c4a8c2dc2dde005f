"""Augmentation for training: a recipe's ``[augment]`` table, frame ops on the device, loaders.

- :class:`AugmentConfig` — ``AugmentConfig.from_table(recipe["augment"], source=path)``:
  ``.event`` (:class:`eventkit.augment.EventAugment`, applied to events in the loader
  workers before framing) and ``.frame`` (:class:`FrameAugment`, applied to float
  ``[T, B, C, H, W]`` batches on the device); ``.is_empty``.
- :func:`make_augmented_loader` — the training (or evaluation) loader of a dataset split
  with the event part applied.
- :class:`MixedTargets` — what ``mixup``/``cutmix`` return instead of labels;
  ``targets.loss(loss_fn, output)`` mixes any integer-label loss.

See ``docs/augmentation.md``.
"""
from eventkit_train.augment.config import AugmentConfig, FrameAugment, frame_seed
from eventkit_train.augment.frame import FRAME_OPS, MixedTargets
from eventkit_train.augment.loader import make_augmented_loader, needs_event_store

__all__ = ["AugmentConfig", "FrameAugment", "MixedTargets", "FRAME_OPS", "frame_seed", "make_augmented_loader",
           "needs_event_store"]
