"""AI judges and their calls, image generation, prompt import and polishing, and the demo study.

Owns: AIJudgeConfig and AICall, the job kinds generate / polish / annotate (``pipeline.jobs``), their
services, selectors, forms and admin pages. The Django-free kits ``pipeline.mllm`` (prompt templates,
answer parsing, providers, the Batch API protocol, polishing) and ``pipeline.generation`` (the synthetic
demo renderer, diffusers) import no Django and nothing of the web app.

May import: annotate, core and the kits. Never scoring or config.
"""
