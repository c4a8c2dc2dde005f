"""Event-level augmentation: transforms applied to a sample's events before framing.

>>> aug = EventAugment.from_table([{"op": "flip_lr", "p": 0.5}, {"op": "drop_event", "p": 0.1}],
...                               source="example")
>>> out = aug(events, (34, 34, 2), seed=0, epoch=3, index=17)   # training: random, reproducible
>>> same = aug.evaluate(events, (34, 34, 2))                      # evaluation: deterministic

Most ops run tonic's own transforms through a dtype hand-off (:mod:`.tonic_compat`,
:mod:`.tonic_ops`); the ones tonic lacks are eventkit's (:mod:`.own_ops`). Every random
draw comes from the seed of (seed, epoch, sample index, step) (:mod:`.seeding`).
See ``docs/augmentation.md``.
"""
from eventkit.augment.base import EventOp
from eventkit.augment.pipeline import EVENT_OPS, EventAugment, OneOf
from eventkit.augment.seeding import preserved_numpy_global, seed_numpy_global, step_generator, step_seed
from eventkit.augment.tonic_compat import POLARITIES, from_tonic, to_tonic

__all__ = ["EventAugment", "EventOp", "OneOf", "EVENT_OPS", "from_tonic", "to_tonic", "POLARITIES", "step_seed",
           "step_generator", "seed_numpy_global", "preserved_numpy_global"]
