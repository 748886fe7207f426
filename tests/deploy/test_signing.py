"""Server key handling: generation, the files on disk, and signature checks agents rely on."""

from __future__ import annotations

import stat

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PrivateKey

from tinymlaas.deploy.signing import (
    PRIVATE_KEY_NAME,
    PUBLIC_KEY_NAME,
    SigningKey,
    load_or_create_signing_key,
    load_public_key,
    verify_signature,
)
from tinymlaas.errors import InvalidInput


def test_signature_verifies_only_for_the_signed_bytes_and_key():
    key, other = SigningKey.generate(), SigningKey.generate()
    signature = key.sign(b"manifest")
    assert len(signature) == 64
    assert len(key.public_key_bytes()) == 32
    assert verify_signature(key.public_key_bytes(), b"manifest", signature)
    assert not verify_signature(key.public_key_bytes(), b"manifest!", signature)
    assert not verify_signature(other.public_key_bytes(), b"manifest", signature)
    assert not verify_signature(key.public_key_bytes(), b"manifest", signature[:-1])
    assert not verify_signature(key.public_key_bytes(), b"manifest", bytes(64))


def test_a_malformed_public_key_is_a_provisioning_error_not_a_bad_signature():
    with pytest.raises(InvalidInput, match="32 bytes"):
        verify_signature(b"\x01" * 31, b"data", bytes(64))


def test_the_private_key_stays_out_of_repr():
    assert repr(SigningKey.generate()) == "SigningKey()"


def test_key_files_are_created_once_and_read_back(tmp_path):
    directory = tmp_path / "keys"
    key = load_or_create_signing_key(directory)
    private_path, public_path = directory / PRIVATE_KEY_NAME, directory / PUBLIC_KEY_NAME

    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600
    assert private_path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public_path.read_text() == key.public_key_bytes().hex() + "\n"
    assert sorted(p.name for p in directory.iterdir()) == [PRIVATE_KEY_NAME, PUBLIC_KEY_NAME]

    again = load_or_create_signing_key(directory)
    assert again.public_key_bytes() == key.public_key_bytes()
    assert load_public_key(public_path) == key.public_key_bytes()
    assert verify_signature(load_public_key(public_path), b"x", again.sign(b"x"))


def test_a_missing_or_stale_public_key_file_is_rederived_from_the_private_key(tmp_path):
    key = load_or_create_signing_key(tmp_path)
    public_path = tmp_path / PUBLIC_KEY_NAME
    public_path.unlink()
    load_or_create_signing_key(tmp_path)
    assert load_public_key(public_path) == key.public_key_bytes()

    public_path.write_text(SigningKey.generate().public_key_bytes().hex() + "\n")
    load_or_create_signing_key(tmp_path)
    assert load_public_key(public_path) == key.public_key_bytes()


def test_public_key_is_read_from_hex_pem_or_raw_bytes():
    key = SigningKey.generate()
    raw = key.public_key_bytes()
    pem = key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert load_public_key(raw.hex().encode() + b"\n") == raw
    assert load_public_key(pem) == raw
    assert load_public_key(raw) == raw


@pytest.mark.parametrize("data", [b"", b"not a key", b"zz" * 32, b"-----BEGIN PUBLIC KEY-----\nAAAA\n"])
def test_garbage_is_not_a_public_key(data):
    with pytest.raises(InvalidInput):
        load_public_key(data)


def test_a_string_is_refused_because_path_and_hex_would_be_ambiguous():
    with pytest.raises(TypeError):
        load_public_key("server_ed25519.pub")  # type: ignore[arg-type]


def test_only_unencrypted_ed25519_private_keys_load():
    with pytest.raises(InvalidInput, match="PEM private key"):
        SigningKey.from_pem(b"garbage")
    ed448 = Ed448PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(InvalidInput, match="Ed25519"):
        SigningKey.from_pem(ed448)
    key = SigningKey.generate()
    assert SigningKey.from_pem(key.to_pem()).public_key_bytes() == key.public_key_bytes()
