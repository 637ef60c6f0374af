"""Campaigns, prompts, generators, images, pairs, annotators, assignments and judgments; the labeling screen.

Owns the data every study is made of and the crowdworker side: crowd entry links, the assignment engine,
submit and skip, quality control, the image ingestion service, and the admin's campaign overview.

May import: core (jobs, web helpers) and Django. Never pipeline, scoring or config: the layers above
point down at these models (an AI judge configuration points at its annotator), not the other way.
The one string reference upwards, Judgment.ai_call, is explained on the field.
"""
