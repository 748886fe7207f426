"""Signed packages: a real module zip is signed and verified, then tampered with in every way we know."""

from __future__ import annotations

import hashlib
import io
import json
import re
import stat
import warnings
import zipfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinymlaas.compilers.base import CompiledModule
from tinymlaas.deploy.package import (
    MANIFEST_NAME,
    SIGNATURE_NAME,
    PackageRejected,
    sign_package,
    verify_package,
)
from tinymlaas.deploy.signing import SigningKey, verify_signature
from tinymlaas.errors import InvalidInput
from tinymlaas.lwm2m.core import UpdateResult

LIMIT = 1 << 20  # bytes; roomy for every package here unless a test says otherwise
EPOCH = (2020, 1, 1, 0, 0, 0)
FILES = {
    "model.tflite": b"TFL3" + bytes(range(256)) * 4,
    "src/model_data.h": b"extern const unsigned char g_model[];\n",
}
KEY = SigningKey.generate()
SEQUENCE = 1_700_000_000_000_000  # microseconds, as the server issues them


def _module_manifest(files):
    """The manifest as the compiler writes it; signing adds the sequence (``_manifest``)."""
    return {
        "schema": 1,
        "model": {"id": "m-1", "name": "gestures", "version": 3, "variant": "v-1", "quantization": "int8"},
        "board": "nrf52840dk",
        "runtime": "tflm",
        "compiler": {"name": "tflm", "version": "1"},
        "files": {
            name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
            for name, data in sorted(files.items())
        },
        "arena_bytes": 3072,
        "flash_bytes": 2048,
        "ram_bytes": 4096,
        "ops": ["CONV_2D", "SOFTMAX"],
        "inputs": [],
        "outputs": [],
        "selftest": None,
        "created_at": "2024-01-01T00:00:00+00:00",
        "lineage": {},
    }


def _manifest(files):
    """The manifest as a device receives it: the module's plus the sequence the server signed in."""
    return {**_module_manifest(files), "sequence": SEQUENCE}


def _zip(entries):
    """A zip of (name or ZipInfo, bytes) pairs exactly as given: duplicates and odd names included."""
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        warnings.simplefilter("ignore")  # zipfile warns on the duplicate names some tests need
        for name, data in entries:
            info = name if isinstance(name, zipfile.ZipInfo) else zipfile.ZipInfo(name, EPOCH)
            if not isinstance(name, zipfile.ZipInfo):
                info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buffer.getvalue()


def _set_central_flag(package, name, flag):
    """Set a general-purpose flag bit in ``name``'s central directory record (zipfile clears them)."""
    damaged = bytearray(package)
    start = 0
    while (start := damaged.find(b"PK\x01\x02", start + 1)) != -1:
        name_length = int.from_bytes(damaged[start + 28 : start + 30], "little")
        if damaged[start + 46 : start + 46 + name_length] == name.encode():
            damaged[start + 8] |= flag
    return bytes(damaged)


def _signed(manifest, files, *, key=KEY, extra=()):
    """A package built by hand, so it can break rules sign_package would refuse to break."""
    manifest_bytes = json.dumps(manifest).encode() if isinstance(manifest, dict) else manifest
    entries = [*files.items(), (MANIFEST_NAME, manifest_bytes), (SIGNATURE_NAME, key.sign(manifest_bytes))]
    return _zip([*entries, *extra])


def _rejected(package, result, match, *, key=KEY, max_bytes=LIMIT):
    with pytest.raises(PackageRejected, match=match) as caught:
        verify_package(package, key.public_key_bytes(), max_bytes=max_bytes)
    assert caught.value.result == result
    assert isinstance(caught.value, InvalidInput)
    return caught.value


@pytest.fixture(scope="module")
def module():
    return CompiledModule(files=dict(FILES), manifest=_module_manifest(FILES))


@pytest.fixture(scope="module")
def package(module):
    return sign_package(module.to_zip(), KEY, sequence=SEQUENCE)


def test_a_signed_module_verifies_to_its_files_and_manifest(module, package):
    verified = verify_package(package, KEY.public_key_bytes(), max_bytes=LIMIT)
    assert dict(verified.files) == FILES
    assert dict(verified.manifest) == {**module.manifest, "sequence": SEQUENCE}
    names = zipfile.ZipFile(io.BytesIO(package)).namelist()
    assert names == sorted([*FILES, MANIFEST_NAME, SIGNATURE_NAME])


def test_the_signature_covers_the_module_manifest_and_the_sequence(module, package):
    with zipfile.ZipFile(io.BytesIO(package)) as signed:
        manifest_bytes, signature = signed.read(MANIFEST_NAME), signed.read(SIGNATURE_NAME)
    assert json.loads(manifest_bytes) == {**module.manifest, "sequence": SEQUENCE}
    assert len(signature) == 64
    assert verify_signature(KEY.public_key_bytes(), manifest_bytes, signature)


def test_signing_is_deterministic_for_one_sequence(module, package):
    assert sign_package(module.to_zip(), KEY, sequence=SEQUENCE) == package
    resigned = verify_package(
        sign_package(module.to_zip(), KEY, sequence=SEQUENCE + 1), KEY.public_key_bytes(), max_bytes=LIMIT
    )
    assert resigned.manifest["sequence"] == SEQUENCE + 1


@pytest.mark.parametrize("sequence", [0, -5, True, "9"])
def test_the_server_refuses_to_sign_without_a_positive_integer_sequence(module, sequence):
    with pytest.raises(InvalidInput, match="positive integer"):
        sign_package(module.to_zip(), KEY, sequence=sequence)


def test_a_package_signed_without_a_sequence_is_unsupported():
    rejection = _rejected(
        _signed(_module_manifest(FILES), FILES), UpdateResult.UNSUPPORTED_PACKAGE_TYPE, "field 'sequence'"
    )
    assert "signed before devices refused replays" in rejection.detail


def test_a_package_over_the_limit_is_not_enough_storage(package):
    rejection = _rejected(package, UpdateResult.NOT_ENOUGH_STORAGE, "more than", max_bytes=len(package) - 1)
    assert str(len(package)) in rejection.detail


def test_a_package_that_unpacks_past_the_limit_is_not_enough_storage():
    files = {"model.tflite": bytes(200_000)}
    package = _signed(_manifest(files), files)
    assert len(package) < 10_000
    _rejected(package, UpdateResult.NOT_ENOUGH_STORAGE, "unpacks to", max_bytes=100_000)


@pytest.mark.parametrize("blob", [b"", b"not a zip at all", b"PK\x03\x04" + bytes(40)])
def test_something_that_is_not_a_zip_fails_integrity(blob):
    _rejected(blob, UpdateResult.INTEGRITY_CHECK_FAILURE, "not a readable zip")


def test_a_truncated_package_fails_integrity(package):
    _rejected(package[: len(package) // 2], UpdateResult.INTEGRITY_CHECK_FAILURE, "zip")
    _rejected(package[:-1], UpdateResult.INTEGRITY_CHECK_FAILURE, "zip")


def test_corrupt_member_data_fails_integrity(package):
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        info = archive.getinfo("model.tflite")
    data_start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    damaged = bytearray(package)
    damaged[data_start + 1] ^= 0xFF
    _rejected(bytes(damaged), UpdateResult.INTEGRITY_CHECK_FAILURE, "'model.tflite' is corrupt")


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("/etc/passwd", "absolute path"),
        ("../escape.bin", r"'\.\.' path component"),
        ("src/../../escape.bin", r"'\.\.' path component"),
        ("src\\model.h", "backslash"),
        ("C:model.bin", "drive letter"),
        ("src/", "directory entry"),
        ("src//model.h", "empty or '.' path component"),
        ("./model.h", "empty or '.' path component"),
        ("model\x01.h", "control character"),
    ],
)
def test_unsafe_member_names_are_unsupported(name, reason):
    package = _signed(_manifest(FILES), FILES, extra=[(name, b"x")])
    _rejected(package, UpdateResult.UNSUPPORTED_PACKAGE_TYPE, f"unsafe member name .*: {reason}")


def test_duplicate_member_names_are_unsupported():
    package = _signed(_manifest(FILES), FILES, extra=[("model.tflite", b"evil")])
    _rejected(package, UpdateResult.UNSUPPORTED_PACKAGE_TYPE, "duplicate member name 'model.tflite'")
    package = _signed(_manifest(FILES), FILES, extra=[("MODEL.tflite", b"evil")])
    _rejected(package, UpdateResult.UNSUPPORTED_PACKAGE_TYPE, "differ only in case")


def test_a_symlink_entry_is_unsupported():
    link = zipfile.ZipInfo("link", EPOCH)
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    package = _signed(_manifest(FILES), FILES, extra=[(link, b"/etc/passwd")])
    _rejected(package, UpdateResult.UNSUPPORTED_PACKAGE_TYPE, "'link' is a symbolic link")


def test_an_encrypted_entry_is_unsupported():
    package = _set_central_flag(_signed(_manifest(FILES), FILES, extra=[("secret", b"x")]), "secret", 0x1)
    _rejected(package, UpdateResult.UNSUPPORTED_PACKAGE_TYPE, "'secret' is encrypted")


def test_an_unsigned_module_zip_is_unsupported(module):
    _rejected(module.to_zip(), UpdateResult.UNSUPPORTED_PACKAGE_TYPE, "no manifest.sig")


def test_a_package_without_manifest_is_unsupported():
    package = _zip([*FILES.items(), (SIGNATURE_NAME, bytes(64))])
    _rejected(package, UpdateResult.UNSUPPORTED_PACKAGE_TYPE, "no manifest.json")


def test_a_package_signed_with_another_key_fails_integrity(package):
    _rejected(package, UpdateResult.INTEGRITY_CHECK_FAILURE, "does not verify", key=SigningKey.generate())


def test_a_manifest_changed_after_signing_fails_integrity():
    manifest_bytes = json.dumps(_manifest(FILES)).encode()
    forged = json.dumps({**_manifest(FILES), "board": "esp32"}).encode()
    package = _zip([*FILES.items(), (MANIFEST_NAME, forged), (SIGNATURE_NAME, KEY.sign(manifest_bytes))])
    _rejected(package, UpdateResult.INTEGRITY_CHECK_FAILURE, "does not verify")


def test_a_damaged_signature_fails_integrity():
    manifest_bytes = json.dumps(_manifest(FILES)).encode()
    signature = bytearray(KEY.sign(manifest_bytes))
    signature[0] ^= 0x01
    package = _zip([*FILES.items(), (MANIFEST_NAME, manifest_bytes), (SIGNATURE_NAME, bytes(signature))])
    _rejected(package, UpdateResult.INTEGRITY_CHECK_FAILURE, "does not verify")


@pytest.mark.parametrize("manifest_bytes", [b"{not json", b"\xff\xfe", b"[1, 2]"])
def test_a_signed_manifest_that_is_not_a_json_object_is_unsupported(manifest_bytes):
    _rejected(
        _signed(manifest_bytes, FILES), UpdateResult.UNSUPPORTED_PACKAGE_TYPE, "malformed manifest.json"
    )


def _without(path):
    manifest = json.loads(json.dumps(_manifest(FILES)))
    *parents, leaf = path.split(".")
    target = manifest
    for parent in parents:
        target = target[parent]
    del target[leaf]
    return manifest


@pytest.mark.parametrize(
    "path", ["model", "model.id", "model.version", "board", "runtime", "files", "sequence"]
)
def test_a_manifest_missing_a_required_field_is_unsupported(path):
    _rejected(_signed(_without(path), FILES), UpdateResult.UNSUPPORTED_PACKAGE_TYPE, f"field '{path}'")


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"schema": 99}, "schema 99"),
        ({"files": {}}, "field 'files'"),
        ({"files": {"../x": {"sha256": "0" * 64, "size": 1}}}, "file name '../x' is unsafe"),
        ({"files": {"manifest.sig": {"sha256": "0" * 64, "size": 64}}}, "reserved"),
        ({"files": {"model.tflite": {"sha256": "XYZ", "size": 1}}}, "sha256"),
        ({"files": {"model.tflite": {"sha256": "0" * 64, "size": -1}}}, "size"),
        ({"sequence": 0}, "field 'sequence'"),
        ({"sequence": True}, "field 'sequence'"),
        ({"sequence": "12"}, "field 'sequence'"),
    ],
)
def test_a_manifest_with_a_bad_field_is_unsupported(change, match):
    manifest = {**_manifest(FILES), **change}
    _rejected(_signed(manifest, FILES), UpdateResult.UNSUPPORTED_PACKAGE_TYPE, match)


def test_a_listed_file_that_is_missing_fails_integrity():
    files = {"model.tflite": FILES["model.tflite"]}
    _rejected(
        _signed(_manifest(FILES), files), UpdateResult.INTEGRITY_CHECK_FAILURE, "lacks: 'src/model_data.h'"
    )


def test_an_unlisted_extra_file_fails_integrity():
    files = {**FILES, "payload.bin": b"surprise"}
    _rejected(
        _signed(_manifest(FILES), files), UpdateResult.INTEGRITY_CHECK_FAILURE, "does not list: 'payload.bin'"
    )


def test_a_file_of_the_wrong_size_fails_integrity():
    files = {**FILES, "model.tflite": FILES["model.tflite"] + b"!"}
    rejection = _rejected(
        _signed(_manifest(FILES), files), UpdateResult.INTEGRITY_CHECK_FAILURE, "'model.tflite' is"
    )
    assert f"{len(FILES['model.tflite'])} bytes" in rejection.detail


def test_a_file_with_the_wrong_digest_fails_integrity():
    files = {**FILES, "model.tflite": b"TFL4" + FILES["model.tflite"][4:]}
    _rejected(
        _signed(_manifest(FILES), files), UpdateResult.INTEGRITY_CHECK_FAILURE, "'model.tflite' has sha256"
    )


def test_the_server_refuses_to_sign_a_module_whose_files_do_not_match_its_manifest(module):
    stale = CompiledModule(files={**FILES, "model.tflite": b"retrained"}, manifest=module.manifest)
    with pytest.raises(PackageRejected, match=re.escape("'model.tflite' is 9 bytes")):
        sign_package(stale.to_zip(), KEY, sequence=SEQUENCE)


def test_the_server_refuses_to_sign_twice(package):
    with pytest.raises(PackageRejected, match=re.escape("already contains manifest.sig")):
        sign_package(package, KEY, sequence=SEQUENCE)


def test_a_public_key_of_the_wrong_size_is_a_provisioning_error(package):
    with pytest.raises(InvalidInput, match="32 bytes") as caught:
        verify_package(package, b"\x00" * 16, max_bytes=LIMIT)
    assert not isinstance(caught.value, PackageRejected)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_a_flipped_byte_never_yields_anything_but_the_signed_contents(package, data):
    """Zip bookkeeping (timestamps, attributes) is unsigned, so some flips are harmless; none may
    change what gets installed."""
    position = data.draw(st.integers(0, len(package) - 1), label="position")
    mask = data.draw(st.integers(1, 255), label="mask")
    damaged = bytearray(package)
    damaged[position] ^= mask
    try:
        verified = verify_package(bytes(damaged), KEY.public_key_bytes(), max_bytes=LIMIT)
    except PackageRejected:
        return
    assert dict(verified.files) == FILES
    assert dict(verified.manifest) == _manifest(FILES)
