import pytest

from tinymlaas.services.context import Context
from tinymlaas.settings import Settings


@pytest.fixture
def context(tmp_path) -> Context:
    return Context(Settings(data_dir=tmp_path / "data"))
