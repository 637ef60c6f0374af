"""annotate's writes: campaigns, crowd entry, assignments, judgments, pairs, prompts and image ingestion."""
