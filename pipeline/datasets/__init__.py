"""Readers and writers for the field's preference data set formats; imports no Django.

The kit streams plain records (dicts) and pyarrow record batches, checks untrusted input (schemas, row
values, archive members) and raises :class:`DatasetError` naming the row and field of the first problem.
The Django side (``pipeline.services.datasets``) turns records into prompts, images, pairs and judgments
and back.
"""

from pipeline.datasets.errors import DatasetError

__all__ = ["DatasetError"]
