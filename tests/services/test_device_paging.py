"""The device list pages in the database: pages do not overlap, and a tag filter pages the same way."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tinymlaas.errors import InvalidInput
from tinymlaas.services.context import Context
from tinymlaas.services.fleet import list_devices, list_devices_page, tag_device
from tinymlaas.settings import Settings
from tinymlaas.storage.repositories import DeviceRepository

T0 = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def fleet(tmp_path: Path) -> Context:
    """25 devices: every third carries ``wave_1``, every fifth ``wave-10`` and ``lab``, one ``wave-1``."""
    context = Context(Settings(data_dir=tmp_path / "data"))
    with context.session() as session:
        devices = DeviceRepository(session)
        for index in range(25):
            endpoint = f"dev-{index:02d}"
            devices.upsert_registration(
                endpoint,
                new_id=f"dev_{index}",
                registration_id=f"r{index}",
                address="coap://127.0.0.1:5000",
                lifetime=60,
                lwm2m_version="1.1",
                objects=["/3/0"],
                registered_at=T0,
            )
            if index % 2:
                devices.set_reported(endpoint, installed={"name": "kws", "version": "3"})
    for index in range(25):
        tags = (["wave_1"] if index % 3 == 0 else []) + (["wave-10", "lab"] if index % 5 == 0 else [])
        tags += ["wave-1"] if index == 7 else []
        tag_device(context, f"dev-{index:02d}", tags)
    return context


def test_pages_cover_the_list_once_in_order(fleet: Context) -> None:
    everything = [device.endpoint for device in list_devices(fleet)]
    pages = [list_devices_page(fleet, limit=10, offset=offset) for offset in (0, 10, 20)]
    assert [count for _, count in pages] == [25, 25, 25]
    paged = [device.endpoint for devices, _ in pages for device in devices]
    assert paged == everything == sorted(everything) and len(set(paged)) == 25
    assert [len(devices) for devices, _ in pages] == [10, 10, 5]
    assert list_devices_page(fleet, limit=10, offset=30) == ([], 25)


def test_a_tag_filter_pages_and_counts_only_the_tagged(fleet: Context) -> None:
    tagged = [f"dev-{i:02d}" for i in range(25) if i % 3 == 0]  # 9 devices
    first, count = list_devices_page(fleet, tag="wave_1", limit=4)
    rest, again = list_devices_page(fleet, tag="wave_1", limit=10, offset=4)
    assert count == again == len(tagged)
    assert [d.endpoint for d in first + rest] == tagged
    # "_" is a literal, not a LIKE wildcard; and a tag is matched whole, not as a prefix.
    assert [d.endpoint for d in list_devices_page(fleet, tag="wave-1")[0]] == ["dev-07"]
    assert [d.endpoint for d in list_devices_page(fleet, tag="wave-10")[0]] == [
        f"dev-{i:02d}" for i in range(0, 25, 5)
    ]


def test_filters_combine_in_sql(fleet: Context) -> None:
    devices, count = list_devices_page(fleet, tag="lab", model="kws:3", limit=1)
    assert count == 2 and [d.endpoint for d in devices] == ["dev-05"]  # dev-05 and dev-15
    assert list_devices_page(fleet, model="kws:4")[1] == 0
    assert list_devices_page(fleet, model="kws", online=False)[1] == 0


def test_tags_are_checked_so_a_filter_cannot_carry_wildcards(fleet: Context) -> None:
    with pytest.raises(InvalidInput, match="letters, digits"):
        list_devices_page(fleet, tag='%"')
    with pytest.raises(InvalidInput, match="letters, digits"):
        tag_device(fleet, "dev-00", ["has space"])
    with pytest.raises(InvalidInput, match="cannot be empty"):
        tag_device(fleet, "dev-00", ["ok", " "])
