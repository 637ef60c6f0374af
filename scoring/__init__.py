"""Agreement reports, leaderboards and reward models (VP-Score): what the labels say.

Owns: Report, RewardModel and ImageScore, the report job kind (``scoring.jobs``), the report pages and
JSON, and judgment import/export. The Django-free kits ``scoring.stats`` (agreement, kappa, alpha,
bootstrap, Bradley–Terry on numpy arrays) and ``scoring.vpscore`` (the reward model) import no Django.

May import: pipeline, annotate, core and the kits. Never config.
"""
