"""Shared fixtures: one small real Keras model and its real .tflite variants, built once per run."""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from helpers.postgres import DATABASE_URL_VARIABLE, PostgresServer, running_server

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The tests read the command line's output as a log file would hold it. pytest-xdist's workers run with
# COLUMNS=80 and LINES=24 set, which the command line (and every command a test starts) takes for a
# terminal of that size, wrapping and cutting its tables short.
for _name in ("COLUMNS", "LINES"):
    os.environ.pop(_name, None)


@dataclass(frozen=True)
class TinyModels:
    """A 4-class 1-D CNN on (32, 3) windows that separates its classes by channel offset."""

    keras_model: object
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    float32: bytes
    float16: bytes
    int8: bytes


def _windows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    x = rng.normal(0, 0.3, (n, 32, 3)).astype(np.float32)
    x[np.arange(n), :, y % 3] += 1.0 + (y // 3)[:, None]
    return x, y.astype(np.int32)


@pytest.fixture(scope="session")
def tiny_models() -> TinyModels:
    import keras

    from tinymlaas.squeeze.convert import Quantization, convert

    keras.utils.set_random_seed(7)
    x_train, y_train = _windows(512, 1)
    x_test, y_test = _windows(128, 2)
    model = keras.Sequential(
        [
            keras.Input((32, 3)),
            keras.layers.Conv1D(8, 3, activation="relu"),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(4, activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    model.fit(x_train, y_train, epochs=40, batch_size=64, verbose=0)
    return TinyModels(
        keras_model=model,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        float32=convert(model, Quantization.FLOAT32),
        float16=convert(model, Quantization.FLOAT16),
        int8=convert(model, Quantization.INT8, x_train),
    )


# The stores the storage, API, job and campaign tests run against: SQLite (the default) and a real
# PostgreSQL started for the run. A test opts in by requesting ``store`` (a directory's autouse fixture
# or a module's ``usefixtures``); its package- and module-scoped fixtures then get a store of their own
# scope on the same backend. A module marked ``store_backends("sqlite")`` runs on fewer.
STORE_BACKENDS = ("sqlite", "postgresql")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "store_backends(*names): the only store backends a test runs on")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "store_backend" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("store_backends")
    backends = marker.args if marker else STORE_BACKENDS
    unknown = set(backends) - set(STORE_BACKENDS)
    if unknown:
        raise pytest.UsageError(f"unknown store backends {sorted(unknown)}; known: {STORE_BACKENDS}")
    # Session scope runs every test on one backend before the other's, so fixtures of any scope that
    # open a store are made again for the second backend.
    metafunc.parametrize("store_backend", backends, indirect=True, scope="session")


_STORE_OF_SCOPE = {"package": "package_store", "module": "module_store", "class": "module_store"}


@pytest.hookimpl(tryfirst=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef[object], request: pytest.FixtureRequest) -> None:
    """Gives every package-, module- or class-scoped fixture of a test that runs on each backend a
    store of its scope on that backend, and makes it depend on that store, so it is made again for
    the second backend rather than reused from the first."""
    store = _STORE_OF_SCOPE.get(fixturedef.scope)
    if store is None or fixturedef.argname in _STORE_OF_SCOPE.values():
        return
    if "store_backend" in request.fixturenames:
        scoped: ScopedStore = request.getfixturevalue(store)
        scoped.finish_first(functools.partial(fixturedef.finish, request=request))


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    with running_server() as server:
        yield server


@pytest.fixture(scope="session")
def store_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@contextlib.contextmanager
def _store(backend: str, request: pytest.FixtureRequest, sqlite_path: Path) -> Iterator[str]:
    """A fresh empty store's URL, in ``TINYMLAAS_DATABASE_URL`` too for PostgreSQL, so every
    ``Settings`` made meanwhile (and the job workers it is pickled to) uses it.

    The variable is removed, not restored, at the end: stores of different scopes open and close out
    of order (a module's store opens inside a test's), and restoring what was there before would bring
    back the URL of a database already dropped.
    """
    if backend == "sqlite":
        os.environ.pop(DATABASE_URL_VARIABLE, None)
        yield f"sqlite:///{sqlite_path}"
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    with server.database() as url:
        os.environ[DATABASE_URL_VARIABLE] = url
        try:
            yield url
        finally:
            if os.environ.get(DATABASE_URL_VARIABLE) == url:
                del os.environ[DATABASE_URL_VARIABLE]


@pytest.fixture
def store(store_backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh store for one test."""
    with _store(store_backend, request, tmp_path / "store.sqlite") as url:
        yield url


@dataclass(frozen=True)
class ScopedStore:
    """A store shared by the fixtures of one scope; ``finish_first`` tears one of them down before the
    store goes, which also makes it be made again when the next backend's store replaces this one."""

    url: str
    finish_first: Callable[[Callable[[], object]], None]


@pytest.fixture(scope="module")
def module_store(
    store_backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ScopedStore]:
    """A store for a module's module-scoped fixtures; each test still gets its own ``store``."""
    with _store(store_backend, request, tmp_path_factory.mktemp("store") / "store.sqlite") as url:
        yield ScopedStore(url, request.addfinalizer)


@pytest.fixture(scope="package")
def package_store(
    store_backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ScopedStore]:
    """A store for a package's package-scoped fixtures (its API server)."""
    with _store(store_backend, request, tmp_path_factory.mktemp("store") / "store.sqlite") as url:
        yield ScopedStore(url, request.addfinalizer)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test that runs on no store backend gets its embedded SQLite store, and so do the fixtures of
    any scope it sets up: a wider store (a package's API server on PostgreSQL) may outlive its last test
    with its URL still in the environment."""
    if "store_backend" not in getattr(item, "fixturenames", ()):
        os.environ.pop(DATABASE_URL_VARIABLE, None)
