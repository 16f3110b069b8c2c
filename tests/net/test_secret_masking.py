"""#17: URL user info (any length), query values and the path segments of configured URLs are
masked wherever text is written; control characters are escaped in text logs and ``--status``."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

from aistock_actors.config.loading import parse_config
from aistock_actors.runtime.logs import TextFormatter
from aistock_actors.runtime.redaction import Redactor, escape_control
from aistock_actors.store.alerts import AlertSink

SUPERVISOR = Path(__file__).resolve().parents[2] / "supervisor.py"
REPORT = "https://ops:pw@monitor.example/v1/tok3n/report?key=abc&x=1"


def redactor() -> Redactor:
    config, _ = parse_config(json.dumps({"headless": {"external_health_report_url": REPORT}}))
    return Redactor.from_config(config, {})


def test_user_info_of_any_length_query_values_and_path_segments_are_masked() -> None:
    text = redactor().text(f"health report to {REPORT} failed: HTTP 500")
    assert text == ("health report to https://***@monitor.example/***/***/***?*** "
                    "failed: HTTP 500")
    for secret in ("ops", "pw", "tok3n", "abc"):
        assert secret not in text.replace("https", "")


def test_a_re_rendered_url_without_credentials_still_hides_its_path() -> None:
    text = redactor().text("POST url='https://monitor.example/v1/tok3n/report' timed out")
    assert "tok3n" not in text and "monitor.example/***/***/***" in text


def test_other_hosts_keep_their_path_but_lose_user_info_and_query_values() -> None:
    text = redactor().text("see http://a:b@docs.example/guide/page?token=xyz")
    assert text == "see http://***@docs.example/guide/page?token=***"


def test_details_of_alerts_and_audit_records_are_masked_too() -> None:
    details = redactor().details({"url": REPORT, "nested": [f"at {REPORT}"]})
    assert "tok3n" not in json.dumps(details) and "pw@" not in json.dumps(details)


def test_control_characters_are_escaped() -> None:
    assert escape_control("A.csv\n2024 CRITICAL forged\x1b[2J\r\t") == (
        "A.csv\\n2024 CRITICAL forged\\x1b[2J\\r\\t")


def test_a_text_log_line_cannot_be_forged_by_a_file_name() -> None:
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "rejected %s",
                               ("E\nVIL\x1b.csv",), None)
    line = TextFormatter().format(record)
    assert "\n" not in line and "\x1b" not in line and "rejected E\\nVIL\\x1b.csv" in line


def test_status_escapes_control_characters(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"state_dir": str(tmp_path / "state"),
                                  "models_dir": str(tmp_path / "models")}))
    AlertSink(tmp_path / "state" / "alerts").raise_alert(
        "critical", "csv_rejected", "E\nVIL\x1b[2J.csv: rejected", notify=False)
    done = subprocess.run([sys.executable, str(SUPERVISOR), str(config), "--status"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout and "E\\nVIL\\x1b[2J.csv: rejected" in done.stdout
