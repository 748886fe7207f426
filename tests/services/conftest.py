import pytest

from helpers.digits_cnn import digits_cnn_store as make_digits_cnn_store
from tinymlaas.services.context import Context
from tinymlaas.settings import Settings


@pytest.fixture
def context(tmp_path) -> Context:
    return Context(Settings(data_dir=tmp_path / "data"))


@pytest.fixture(scope="session")
def digits_cnn_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Context, int]:
    """The digits CNN's store, shared by the splitting and pipeline tests of this package."""
    return make_digits_cnn_store(tmp_path_factory.mktemp("digits-cnn") / "data")
