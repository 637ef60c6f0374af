import pytest


@pytest.fixture(scope="session")
def tiny_sd_path(tmp_path_factory) -> str:
    """A tiny random Stable Diffusion pipeline saved on local disk, built once per test session."""
    from pipeline.generation.testing import build_tiny_sd_pipeline

    return build_tiny_sd_pipeline(tmp_path_factory.mktemp("models") / "tiny-sd")
