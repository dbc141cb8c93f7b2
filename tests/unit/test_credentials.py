"""pipeflow.credentials: which names are secret, URL redaction (a hypothesis property:
for any user:password, the redacted text never holds the password), env digests."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeflow.credentials import (
    conceal_env,
    env_value,
    has_credentials,
    is_secret_name,
    redact,
    redact_data,
    secret_settings,
    unescaped_userinfo,
    without_secrets,
)


@pytest.mark.parametrize("name", [
    "connection_string", "sas_token", "account_key", "password", "secret", "token",
    "session_token", "client_secret", "credentials", "credentials_file", "key_file", "key",
    "aws_secret_access_key", "AWS_SECRET_ACCESS_KEY", "AZURE_STORAGE_KEY", "accountKey",
    "sasToken", "HF_TOKEN", "WANDB_API_KEY", "GOOGLE_APPLICATION_CREDENTIALS", "apikey",
    "DATABASE_PASSWORD", "PGPASSWORD".lower(), "connectionString", "AZURE_STORAGE_SAS_TOKEN",
])
def test_secret_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize("name", [
    "url", "endpoint_url", "region_name", "TOKENIZERS_PARALLELISM", "OMP_NUM_THREADS",
    "PWD", "CUDA_VISIBLE_DEVICES", "profile", "anon", "client_kwargs", "monkey", "SEED",
])
def test_plain_names(name: str) -> None:
    assert not is_secret_name(name)


def test_settings_are_searched_at_any_depth_and_by_value() -> None:
    settings = {"url": "s3://b/x", "endpoint_url": "https://u:pw@minio:9000",
                "client_kwargs": {"region_name": "eu", "aws_secret_access_key": "abc"},
                "token": "anon", "anon": True, "use_ssl": False,
                "connection_string": "AccountName=a;AccountKey=k"}
    assert secret_settings(settings) == ["endpoint_url", "client_kwargs.aws_secret_access_key",
                                         "connection_string"]
    assert without_secrets(settings) == {"url": "s3://b/x", "client_kwargs": {"region_name": "eu"},
                                         "anon": True, "use_ssl": False}


@pytest.mark.parametrize(("text", "shown"), [
    ("https://bob:S3CR3T@host/x", "https://***@host/x"),
    ("s3://AKIA:hunter2@bucket/p", "s3://***@bucket/p"),
    ("https://bob:a/b@c@host/p/q", "https://***@host/p/q"),  # '/' and '@' in the password
    ("https://ghp_token123@github.com/o/r", "https://***@github.com/o/r"),
    ("cannot open 's3://k:s@b/x': denied", "cannot open 's3://***@b/x': denied"),
    ("see s3://bucket/models/m.pkl@v2", "see s3://bucket/models/m.pkl@v2"),  # a version
    ("https://a.blob.core.windows.net/c?sv=1&sig=abc%3D&se=2",
     "https://a.blob.core.windows.net/c?sv=1&sig=***&se=2"),
    ("AccountName=a;AccountKey=abc+/==;EndpointSuffix=x",
     "AccountName=a;AccountKey=***;EndpointSuffix=x"),
    ("model.key_dim=64 lr=0.1", "model.key_dim=64 lr=0.1"),  # numbers are settings
])
def test_redact(text: str, shown: str) -> None:
    assert redact(text) == shown


def test_redact_known_values_and_json() -> None:
    assert redact("auth failed for k3y-value", known=["k3y-value"]) == "auth failed for ***"
    body = {"remotes": [{"url": "https://u:pw1234@h/x"}], "n": 3}
    assert redact_data(body) == {"remotes": [{"url": "https://***@h/x"}], "n": 3}


_PASSWORD = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Z"),
                                           blacklist_characters="'\"<>`"),
                    min_size=1, max_size=30)
_USER = st.text(alphabet=string.ascii_letters + string.digits + "._-%@+", min_size=1, max_size=12)
_HOST = st.from_regex(r"[a-z0-9]([a-z0-9.-]{0,20})(:[0-9]{1,5})?", fullmatch=True)
_PATH = st.from_regex(r"(/[A-Za-z0-9._-]{0,12}){0,4}", fullmatch=True)
_SCHEME = st.sampled_from(["https", "http", "s3", "gs", "az", "sftp", "ftp"])


@settings(max_examples=1000, deadline=None)
@given(_SCHEME, _USER, _PASSWORD, _HOST, _PATH, st.sampled_from(["", "error: ", "at "]),
       st.sampled_from(["", " failed", ": denied"]))
def test_a_password_is_never_shown(scheme: str, user: str, password: str, host: str,
                                   path: str, before: str, after: str) -> None:
    """Whatever the password holds (`/`, `@`, `:`, `%`, unicode), the redacted text
    is the URL with its userinfo replaced, so neither the password nor its tail shows."""
    url = f"{scheme}://{user}:{password}@{host}{path}"
    shown = redact(f"{before}{url}{after}")
    assert shown == f"{before}{scheme}://***@{host}{path}{after}"
    assert has_credentials(url)


@settings(max_examples=300, deadline=None)
@given(_SCHEME, _HOST, _PATH)
def test_a_url_without_credentials_is_unchanged(scheme: str, host: str, path: str) -> None:
    url = f"{scheme}://{host}{path}"
    assert redact(url) == url and not has_credentials(url)


def test_unescaped_userinfo() -> None:
    assert unescaped_userinfo("https://bob:pa/ss@host/x")
    assert not unescaped_userinfo("https://bob:pa%2Fss@host/x")
    assert not unescaped_userinfo("https://bob:p@ss@host/x")
    assert not unescaped_userinfo("s3://bucket/m@v2")


def test_env_digests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIPEFLOW_FINGERPRINT_KEY", raising=False)
    digest = env_value("AWS_SECRET_ACCESS_KEY", "hunter2")
    assert digest is not None and digest.startswith("hidden:") and "hunter2" not in digest
    assert digest == env_value("AWS_SECRET_ACCESS_KEY", "hunter2")  # every clone, CI
    assert digest != env_value("AWS_SECRET_ACCESS_KEY", "hunter3")  # a change reruns
    assert digest != env_value("OTHER_TOKEN", "hunter2")  # salted by the name
    assert env_value("OMP_NUM_THREADS", "4") == "4"
    assert env_value("AWS_SECRET_ACCESS_KEY", None) is None
    assert str(env_value("DATABASE_URL", "postgres://a:pw@db/x")).startswith("hidden:")
    monkeypatch.setenv("PIPEFLOW_FINGERPRINT_KEY", "team")
    keyed = env_value("AWS_SECRET_ACCESS_KEY", "hunter2")
    assert keyed is not None and keyed.startswith("hidden+key:") and keyed != digest


def test_conceal_env_hides_what_an_older_pipeflow_stored() -> None:
    env = {"platform": "linux-x86_64", "vars": {"AWS_SECRET_ACCESS_KEY": "hunter2",
                                                 "DB": "postgres://a:pw99@db/x",
                                                 "SEED": "1", "HF_TOKEN": None,
                                                 "GH_TOKEN": "hidden:00ff"}}
    assert conceal_env(env) == {"platform": "linux-x86_64", "vars": {
        "AWS_SECRET_ACCESS_KEY": "***", "DB": "postgres://***@db/x", "SEED": "1",
        "HF_TOKEN": None, "GH_TOKEN": "hidden:00ff"}}


def test_a_mapping_under_a_secret_name_is_secret_whole() -> None:
    from pipeflow.credentials import secret_values

    settings = {"token": {"type": "service_account", "client_email": "a@b", "pk": "xyz1"},
                "token2": "anon", "client_kwargs": {"region_name": "eu"}}
    assert secret_settings(settings) == ["token"]
    assert set(secret_values(settings)) == {"service_account", "a@b", "xyz1"}


@pytest.mark.parametrize(("name", "secret"), [
    # storage settings that the old word list refused (a remote using them made every
    # command exit 2): names of settings, not credentials
    ("signature_version", False),  # MinIO/Ceph config_kwargs: s3v4
    ("signatureVersion", False),
    ("SSEKMSKeyId", False),  # a KMS key's ARN: who may decrypt is IAM's business
    ("kms_key_id", False),
    ("ServerSideEncryption", False),
    ("session_kwargs", False), ("config_kwargs", False), ("client_kwargs", False),
    ("s3_additional_kwargs", False), ("endpoint_url", False), ("region_name", False),
    # ordinary env.vars whose values the old list hid
    ("AUTH_MODE", False), ("SORT_KEY", False), ("KEY_COLUMN", False),
    ("PRIVATE_DATA_DIR", False), ("CONNECTION_POOL_SIZE", False),
    ("SESSION_ID", False),  # a run's id in a pipeline; a web session travels as a cookie
    ("partition_key", False), ("public_key", False), ("key_dim", False),
    ("TOKENIZERS_PARALLELISM", False), ("monkey", False),
    # real secrets stay secret
    ("private_key", True), ("PRIVATE_KEY_PATH", True),  # where a key is: per-machine
    ("auth_token", True), ("session_token", True), ("aws_session_token", True),
    ("connection_string", True), ("AZURE_STORAGE_CONNECTION_STRING", True),
    ("account_key", True), ("AZURE_STORAGE_KEY", True), ("WANDB_API_KEY", True),
    ("SSECustomerKey", True),  # the encryption key itself, unlike SSEKMSKeyId
    ("primary_key", True),  # Azure's "primary key" is an account key; a DB's is rarer
    ("key", True),  # s3fs: the access key id of the key/secret pair
    ("aws_access_key_id", True),  # half of a pair: goes where its secret goes
    ("private_key_id", True),  # a service account's, likewise
    ("key_file", True), ("keyfile", True),
    ("UNKNOWN_KEY", True),  # an unknown *_key: the safe side
    ("basic_auth", True), ("auth", True),  # credentials themselves (user:password)
    ("sig", True), ("X-Amz-Signature", True),  # a signed URL's query
    ("X-Amz-Security-Token", True), ("sas_token", True), ("client_secret", True),
    ("SENTRY_DSN", True), ("session_cookie", True), ("PGPASSWORD", True),
    # short forms a review found stored in clear
    ("MYSQL_PWD", True), ("DB_PASS", True), ("SMTP_PASS", True), ("CI_JOB_JWT", True),
    ("GITHUB_PAT", True), ("BEARER", True), ("PAT_SIZE", False), ("PASSES", False),
])
def test_which_names_are_secret(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_known_storage_settings_pass_and_nested_ones_are_checked_by_name() -> None:
    settings = {"url": "s3://b/x", "config_kwargs": {"signature_version": "s3v4"},
                "s3_additional_kwargs": {"ServerSideEncryption": "aws:kms",
                                         "SSEKMSKeyId": "arn:aws:kms:eu:1:key/abc"},
                "session_kwargs": {"aws_session_token": "FwoG123", "region_name": "eu"},
                "endpoint_url": "https://u:pw@minio:9000"}
    assert secret_settings(settings) == ["session_kwargs.aws_session_token", "endpoint_url"]


@pytest.mark.parametrize("text", [
    "A" * 1_000_000,  # one run of scheme/name letters: every start read it to its end
    "A" * 1_000_000 + " =",
    "9" + "a." * 500_000 + "=x",
    "a://" * 250_000,
])
def test_redact_takes_linear_time(text: str) -> None:
    """A record's 1,000,000-character value (redact was quadratic: 40,000 letters took
    9 s, a million hours). No timing here: the suite would notice a regression."""
    assert redact(text) == text


@pytest.mark.parametrize(("text", "shown"), [
    ("1password=hunter2", "1password=***"),  # a name starts at its first letter
    ("x-1.password=hunter2;y", "x-1.password=***;y"),
    ("9s3://u:pw@h/p", "9s3://***@h/p"),
    ("A" * 50_000 + "password=hunter2", "A" * 50_000 + "password=***"),
    ("see " + "a" * 50_000 + "https://u:pw@h", "see " + "a" * 50_000 + "https://***@h"),
])
def test_redact_where_a_name_or_scheme_starts(text: str, shown: str) -> None:
    assert redact(text) == shown
