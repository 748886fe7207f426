"""Registration: query validation, registration values and the in-memory store (time passed in)."""

from __future__ import annotations

import pytest

from tinymlaas.errors import Conflict, InvalidInput, NotFound
from tinymlaas.lwm2m.core import (
    InMemoryRegistrationStore,
    Path,
    Registration,
    RegistrationRequest,
    RegistrationUpdate,
    object_paths,
    parse_links,
    parse_registration_query,
    parse_update_query,
)


def test_query_defaults() -> None:
    assert parse_registration_query("ep=node-1") == RegistrationRequest(endpoint="node-1")
    request = parse_registration_query("ep=node-1")
    assert (request.lifetime, request.lwm2m_version, request.binding, request.queue_mode) == (
        86400,
        "1.0",
        "U",
        False,
    )


def test_query_from_coap_options_and_from_a_string_agree() -> None:
    options = ["ep=urn:dev:nano33-1", "lt=300", "lwm2m=1.1", "b=US", "sms=%2B358401234567", "Q"]
    from_options = parse_registration_query(options)
    assert from_options.sms == "%2B358401234567"  # CoAP options arrive decoded: no second pass
    from_string = parse_registration_query(
        "ep=urn%3Adev%3Anano33-1&lt=300&lwm2m=1.1&b=US&sms=%2B358401234567&Q"
    )
    assert from_string.endpoint == from_options.endpoint == "urn:dev:nano33-1"
    assert from_string.sms == "+358401234567"
    assert (from_string.lifetime, from_string.lwm2m_version, from_string.binding) == (300, "1.1", "US")
    assert from_options.queue_mode and from_string.queue_mode


@pytest.mark.parametrize("name", ["a b", "nul\x00", "line\nbreak", "<script>", "../up", "x" * 129])
def test_endpoint_names_that_would_break_a_uri_a_log_or_a_page_are_refused(name: str) -> None:
    with pytest.raises(InvalidInput, match="endpoint name"):
        parse_registration_query([f"ep={name}"])


def test_lwm2m_1_0_queue_mode_in_the_binding() -> None:
    request = parse_registration_query("ep=a&b=UQ")
    assert (request.binding, request.queue_mode) == ("U", True)
    assert parse_registration_query("ep=a&q").queue_mode


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("lt=60", "'ep' is missing"),
        ("", "'ep' is missing"),
        ("ep=", "'ep' needs a value"),
        ("ep", "'ep' needs a value"),
        ("ep=a&lt=abc", "lifetime 'lt=abc'"),
        ("ep=a&lt=0", "lifetime 'lt=0'"),
        ("ep=a&lt=-5", "lifetime 'lt=-5'"),
        ("ep=a&lt=1.5", "lifetime 'lt=1.5'"),
        ("ep=a&lt=4294967296", "lifetime"),
        ("ep=a&lwm2m=2.0", "version '2.0'"),
        ("ep=a&b=X", "binding 'b=X'"),
        ("ep=a&b=UU", "binding 'b=UU'"),
        ("ep=a&b=Q", "binding 'b=Q'"),
        ("ep=a&ep=b", "'ep' appears twice"),
        ("ep=a&=1", "no parameter name"),
    ],
)
def test_query_errors(query: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_registration_query(query)


def test_update_query() -> None:
    assert parse_update_query("") == RegistrationUpdate()
    assert parse_update_query(["lt=60", "b=UQ"]) == RegistrationUpdate(
        lifetime=60, binding="U", queue_mode=True
    )
    with pytest.raises(InvalidInput, match="lifetime"):
        parse_update_query("lt=never")


def registration(endpoint: str = "node-1", registration_id: str = "r1", now: float = 1000.0) -> Registration:
    request = parse_registration_query(f"ep={endpoint}&lt=60&lwm2m=1.1")
    objects = object_paths(parse_links('</>;rt="oma.lwm2m";ct=110,</1/0>,</3/0>,</9/0>,</26241/0>'))
    return Registration.from_request(
        request, registration_id=registration_id, objects=objects, now=now, address="10.0.0.5:5683"
    )


def test_registration_from_a_request() -> None:
    reg = registration()
    assert reg.objects == (Path(1, 0), Path(3, 0), Path(9, 0), Path(26241, 0))
    assert (reg.registered_at, reg.updated_at, reg.expires_at) == (1000.0, 1000.0, 1060.0)
    assert not reg.is_expired(1060.0) and reg.is_expired(1060.5)
    assert reg.lwm2m_version == "1.1" and reg.address == "10.0.0.5:5683"


def test_update_returns_a_new_value_and_renews_the_lifetime() -> None:
    reg = registration()
    renewed = reg.with_update(1050.0)
    assert renewed.expires_at == 1110.0 and renewed.registered_at == 1000.0
    assert reg.updated_at == 1000.0  # the original is untouched
    changed = reg.with_update(
        1020.0, RegistrationUpdate(lifetime=300, binding="T"), objects=[Path(3, 0), Path(9, 2)], address="x"
    )
    assert (changed.lifetime, changed.binding, changed.objects, changed.address) == (
        300,
        "T",
        (Path(3, 0), Path(9, 2)),
        "x",
    )
    assert changed.sms is None and changed.queue_mode is False


def test_registration_values_validate() -> None:
    with pytest.raises(InvalidInput, match="lifetime"):
        Registration("a", "r", 0, "U", (), 0.0, 0.0)
    with pytest.raises(InvalidInput, match="endpoint name"):
        Registration("", "r", 60, "U", (), 0.0, 0.0)
    with pytest.raises(InvalidInput, match="updated before"):
        registration().with_update(999.0)


def test_store_add_get_and_reregister() -> None:
    store = InMemoryRegistrationStore()
    first = registration()
    assert store.add(first) is None
    assert store.get("r1") == first and store.get_by_endpoint("node-1") == first
    assert store.get("nope") is None and store.get_by_endpoint("nope") is None
    again = registration(registration_id="r2", now=2000.0)
    assert store.add(again) == first
    assert store.get("r1") is None and store.get_by_endpoint("node-1") == again
    assert store.all() == [again]
    with pytest.raises(Conflict, match="already in use"):
        store.add(registration(endpoint="node-2", registration_id="r2"))


def test_store_update_and_remove() -> None:
    store = InMemoryRegistrationStore()
    reg = registration()
    store.add(reg)
    renewed = reg.with_update(1030.0)
    assert store.update(renewed) == reg
    assert store.get("r1") == renewed
    with pytest.raises(NotFound):
        store.update(registration(registration_id="ghost"))
    with pytest.raises(Conflict, match="belongs to"):
        store.update(registration(endpoint="other"))
    assert store.remove("r1") == renewed
    assert store.get_by_endpoint("node-1") is None
    with pytest.raises(NotFound):
        store.remove("r1")


def test_store_expiry() -> None:
    store = InMemoryRegistrationStore()
    early = registration("early", "r1", now=1000.0)  # expires at 1060
    late = registration("late", "r2", now=1030.0)  # expires at 1090
    store.add(early)
    store.add(late)
    assert store.expired(1060.0) == []
    assert store.expired(1061.0) == [early]
    assert {reg.endpoint for reg in store.expired(1100.0)} == {"early", "late"}
    store.update(early.with_update(1080.0))
    assert store.expired(1100.0) == [late]
    assert len(store.all()) == 2  # expiry reports; removing is the caller's decision
