"""Image generation without Django: the offline demo generator (`demo`), diffusers pipelines
(`diffusers_backend`) and tiny random pipelines for tests and benchmarks (`testing`).

May import: the standard library, numpy, Pillow, torch, transformers and diffusers. Never Django, Celery
or any module of the web app (an import-linter contract checks it, indirect imports included).
"""
