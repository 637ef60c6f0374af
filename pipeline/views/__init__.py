"""Pipeline's admin pages: generation and prompts (generation.py), AI judges and their calls (annotation.py)."""
