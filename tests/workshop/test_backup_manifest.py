"""`workshop restore` reads a manifest it did not write: a clear refusal, never a traceback."""

from __future__ import annotations

import json

import pytest

from workshop.backup import MANIFEST_VERSION, BackupError, Manifest, verify

GOOD = {
    "created_at": "2026-12-08T00:00:00Z",
    "source_data_dir": "/data",
    "db_schema_version": 3,
    "redis_mode": "bgsave",
    "files": {"feedback.db": {"sha256": "0" * 64, "bytes": 1}},
    "manifest_version": MANIFEST_VERSION,
}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{bad", "Expecting property name"),  # was a JSONDecodeError traceback
        ("[]", "not a JSON object"),  # was AttributeError: 'list' object has no attribute 'get'
        (json.dumps({"manifest_version": MANIFEST_VERSION}), "missing 4 required"),
        (json.dumps(GOOD | {"created": "x"}), "unexpected keyword argument 'created'"),
        (json.dumps(GOOD | {"files": {"feedback.db": {}}}), "every file needs its sha256"),
        (json.dumps(GOOD | {"manifest_version": 9}), "unsupported manifest version 9"),
    ],
)
def test_a_manifest_restore_cannot_read_is_refused_with_the_reason(tmp_path, text, reason):
    (tmp_path / "manifest.json").write_text(text)
    with pytest.raises(BackupError, match=reason):
        Manifest.load(tmp_path)


def test_a_readable_manifest_still_checks_its_files(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps(GOOD))
    assert Manifest.load(tmp_path).files == GOOD["files"]
    with pytest.raises(BackupError, match="feedback.db is listed in the manifest but missing"):
        verify(tmp_path)
