"""Signatures and trusted keys read from files anyone can write: junk is refused
cleanly (None, a ConfigError, an invalid verdict), never a crash."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from pipeflow.errors import ConfigError
from pipeflow.signing.keys import generate
from pipeflow.signing.signatures import Signature, Status, TrustedKeys, sign

JSON: Any = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=80),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=12)
SIG_FIELDS = st.fixed_dictionaries({}, optional={
    "key": st.one_of(st.text(max_size=60), st.just("ed25519:" + "A" * 43 + "="), JSON),
    "name": st.one_of(st.text(max_size=20), JSON),
    "value": st.one_of(st.text(max_size=100),
                       st.binary(min_size=64, max_size=64).map(
                           lambda b: base64.b64encode(b).decode()), JSON)})


@given(data=st.one_of(JSON, SIG_FIELDS))
def test_signature_from_json_never_raises_and_verifies_to_a_verdict(data: Any) -> None:
    sig = Signature.from_json(data)
    if sig is None:
        return
    assert isinstance(sig.key, str) and isinstance(sig.value, str)
    verdict = TrustedKeys({}).verify(b"record bytes", sig)
    assert verdict.status in (Status.INVALID, Status.UNTRUSTED)


@given(data=st.dictionaries(st.one_of(st.text(max_size=12), st.integers()),
                            st.one_of(JSON, st.just("ed25519:" + "A" * 43 + "=")),
                            max_size=4))
def test_trusted_keys_from_mapping_takes_keys_or_raises_config_error(data: Any) -> None:
    try:
        keys = TrustedKeys.from_mapping(data, "keys.trusted")
    except ConfigError as exc:
        assert "keys.trusted" in exc.message
        return
    assert all(k.startswith("ed25519:") for k in keys.keys.values())


def test_a_signature_verifies_only_over_the_signed_bytes(tmp_path: Path) -> None:
    signer = generate("alice", path=tmp_path / "key.json")
    sig = sign(signer, b"data")
    trusted = TrustedKeys({"al": signer.public})
    assert trusted.verify(b"data", sig).signer == "al"
    assert trusted.verify(b"datA", sig).status is Status.INVALID
    assert TrustedKeys({}).verify(b"data", sig).status is Status.UNTRUSTED
    assert Signature.from_json(sig.to_json()) == sig


@given(raw=st.one_of(st.binary(max_size=600), JSON.map(lambda v: json.dumps(v).encode()),
                     SIG_FIELDS.map(lambda v: json.dumps(v, default=str).encode())))
def test_a_record_signature_file_of_any_bytes_is_a_verdict(raw: bytes) -> None:
    """What ``fetch`` brings beside a record may be anything: it never raises."""
    import tempfile

    from pipeflow.lineage.trust import TrustPolicy
    from pipeflow.records.records import RecordStore

    with tempfile.TemporaryDirectory() as folder:
        store = RecordStore(Path(folder), Path(folder) / "chain")
        rel = "0123456789abcdef/00000001-" + "a" * 64 + ".json"
        (store.runs / rel).parent.mkdir(parents=True)
        (store.runs / rel).write_bytes(b"{}")
        (store.runs / rel).with_suffix(".sig").write_bytes(raw)
        policy = TrustPolicy(store, None, {})  # type: ignore[arg-type]  # state unused
        assert policy.verdict(rel).status in (Status.INVALID, Status.UNTRUSTED)
