"""Normalisation and assertion stages that run after extraction (see docs/normalization.md).

- ``clinie.normalize.stage.Normalizer``: ICD-10-CM codes for Problem/Reason/ADE, ingredient for Drug.
- ``clinie.normalize.context.AssertionTagger``: ConText-style uncertain/hypothetical/historical/subject flags.
"""
