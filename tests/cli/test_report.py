"""``--report``: one self-contained HTML file, checked in a real browser (headless Chromium).

The state comes from real cycles (``operator_support``). The report is written by the real CLI,
then Chromium opens it from disk and takes a screenshot: the screenshot must show rendered plots
(thin dark axis spines 400-1100 px long, which no text, table or header draws, and matplotlib's
line colour), and every embedded PNG must decode and be non-blank on its own. The active model's
backtest equity is the curve its real verdict stored in ``state/promotion/curves/``.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _support.curve_reference import LONG_CURVE, archived_account, daily_points
from _support.operator_support import operator_state
from _support.support import write_config
from PIL import Image

from aistock_actors.cli import app as cli
from aistock_actors.cli.report import build_report
from aistock_actors.cli.report.data import collect
from aistock_actors.cli.report.plots import BACKTEST_TITLE
from aistock_actors.config import load_config
from aistock_actors.core.backtest.curves import MAX_CURVE_POINTS
from aistock_actors.core.backtest.metrics import max_drawdown
from aistock_actors.store.promotion import EQUITY_CURVE_KEY, PromotionStore

REPO = Path(__file__).resolve().parents[2]
TITLES = (
    "Summary",
    "Paper equity and drawdown",
    "Active model backtest",
    "Promotion history",
    "Risk limits against the hard ceilings",
    "Market regimes",
    "Cost calibration",
)
DATA_SECTIONS = TITLES[1:]
IMAGE = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
TAB_BLUE = np.array([31, 119, 180])


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report")
    config = operator_state(tmp_path_factory.getbasetemp(), root)
    done = subprocess.run(
        [sys.executable, str(REPO / "supervisor.py"), str(config), "--report", "--out",
         "out/report.html"], cwd=root, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "report written:" in done.stdout and "7/7 sections with data" in done.stdout
    return root / "out" / "report.html"


def chromium() -> str:
    """The browser binary; missing is a failure in CI and a skip on a developer machine."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed: .ci/run installs it (apt-get install chromium)")
    pytest.skip("chromium is not installed (apt-get install chromium); CI runs this test")


def screenshot(html: Path, out: Path) -> np.ndarray:
    profile = out.parent / f"{out.stem}-profile"
    subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", f"--screenshot={out}",
         "--window-size=1280,2400", html.resolve().as_uri()],
        capture_output=True, timeout=120, check=True, env={**os.environ, "HOME": str(out.parent)})
    return np.asarray(Image.open(out).convert("RGB")).astype(np.int64)


def axis_lines(pixels: np.ndarray) -> int:
    """Thin dark horizontal lines 400-1100 px long: the spines of rendered plot axes."""
    gray = pixels.mean(axis=2)
    dark = gray < 90
    rows = []
    for y in range(4, dark.shape[0] - 4):
        edges = np.diff(np.concatenate(([0], dark[y].astype(np.int8), [0])))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        if not starts.size:
            continue
        i = int((ends - starts).argmax())
        x0, x1 = int(starts[i]), int(ends[i])
        thin = gray[y - 4, x0:x1].mean() > 180 or gray[y + 4, x0:x1].mean() > 180
        if 400 <= x1 - x0 <= 1100 and thin:
            rows.append(y)
    return sum(1 for i, y in enumerate(rows) if i == 0 or y > rows[i - 1] + 2)


def near(pixels: np.ndarray, colour: np.ndarray) -> int:
    return int((np.abs(pixels - colour).max(axis=2) < 40).sum())


def test_report_of_real_cycles_renders_its_plots_in_chromium(report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    for title in TITLES:
        assert f"<h2>{title}</h2>" in text, title
    assert "No data yet" not in text and "Unreadable" not in text
    model = section(text, "Active model backtest")
    assert f'alt="{BACKTEST_TITLE}"' in model and "No backtest equity curve" not in model
    assert len(IMAGE.findall(model)) == 2  # the active model's backtest equity, every verdict
    images = IMAGE.findall(text)
    assert len(images) == 6  # equity, backtest equity, verdicts, risk, regimes, costs
    for encoded in images:
        plot = np.asarray(Image.open(io.BytesIO(base64.b64decode(encoded))).convert("RGB"))
        assert plot.shape[1] >= 900 and plot.std() > 20, plot.shape
        assert len(np.unique(plot.reshape(-1, 3), axis=0)) > 50  # lines, text, fills

    shot = screenshot(report, report.parent / "report.png")
    assert shot.shape == (2400, 1280, 3) and shot.std() > 20
    assert axis_lines(shot) >= 4, "no plot axes visible: the embedded images did not render"
    assert near(shot, TAB_BLUE) > 300  # the equity line and the markers


def section(text: str, title: str) -> str:
    return text.split(f"<h2>{title}</h2>")[1].split("</section>")[0]


def test_the_active_models_backtest_equity_is_the_curve_its_verdict_stored(report: Path) -> None:
    loaded = load_config(report.parent.parent / "config.json")
    entries = PromotionStore(loaded.state_dir, None).load_manifest()
    rejected, approved = entries  # the operator state's two verdicts
    assert all(EQUITY_CURVE_KEY not in e.metrics() for e in entries)  # not in the manifest
    store = PromotionStore(loaded.state_dir, None)
    assert store.load_curve(rejected.model_id) is None  # a rejected verdict stores none
    stored = store.load_curve(approved.model_id)
    assert stored is not None and stored.entry_id == approved.id
    bt: dict[str, Any] = approved.metrics()
    curve = stored.points
    assert approved.status == "approved" and 100 < len(curve) <= MAX_CURVE_POINTS < bt["bars"]
    assert curve[0][0] == bt["oos_start"] and curve[-1][0] == bt["oos_end"]
    assert max_drawdown([v for _, v in curve]) == pytest.approx(bt["max_drawdown"])
    model = section(report.read_text(encoding="utf-8"), "Active model backtest")
    assert f"{len(curve)} points of {bt['bars']} bars drawn" in model
    assert f"${curve[-1][1]:,.2f}" in model


def test_a_model_promoted_before_curves_were_stored_gets_the_note_instead(
        tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    loaded = load_config(operator_state(tmp_path_factory.getbasetemp(), tmp_path))
    store = PromotionStore(loaded.state_dir, None)
    shutil.rmtree(store.curves_dir)  # the state as an older version left it
    html, sections = build_report(loaded)
    model = next(s for s in sections if s.id == "model")
    assert model.has_data
    assert "No backtest equity curve is stored for the active model" in model.body
    assert BACKTEST_TITLE not in model.body and len(IMAGE.findall(model.body)) == 1  # verdicts
    assert "backtest sharpe" in model.body  # its metrics are still shown
    assert len(IMAGE.findall(html)) == 5 and "Unreadable" not in html


def test_a_corrupt_curve_file_gives_the_note_and_breaks_nothing_else(
        tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    config = operator_state(tmp_path_factory.getbasetemp(), tmp_path)
    loaded = load_config(config)
    store = PromotionStore(loaded.state_dir, None)
    active = store.load_manifest()[-1].model_id
    path = store.curve_path(active)
    assert path is not None and path.exists()
    path.write_bytes(b'{"model_id": "' + active.encode() + b'", "points": [[1')
    alerts = sorted((loaded.state_dir / "alerts").rglob("*"))
    html, sections = build_report(loaded)  # no .bak yet (written once): nothing to recover
    model = next(s for s in sections if s.id == "model")
    assert model.has_data and "cannot be drawn" in model.body and "unreadable" in model.body
    assert str(path) in html and BACKTEST_TITLE not in model.body
    assert "backtest sharpe" in model.body  # its metrics are still shown
    assert len(IMAGE.findall(html)) == 5 and "Unreadable" not in html  # every other plot
    assert sorted((loaded.state_dir / "alerts").rglob("*")) == alerts  # read-only: no alert
    out = tmp_path / "report.html"
    assert cli.main([str(config), "--report", "--out", str(out)]) == 0
    done = subprocess.run([sys.executable, "-m", "aistock_actors", str(config), "--status",
                           "--json"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0 and json.loads(done.stdout)["active_model"]["id"] == active


def test_report_is_self_contained(report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    lowered = text.lower()
    assert "<script" not in lowered and "<link" not in lowered and "url(" not in lowered
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:|#)""", text)
    assert oct(report.stat().st_mode & 0o777) == "0o644"


def test_report_tables_show_every_stage_and_the_risk_changes(report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    promotions = text.split("<h2>Promotion history</h2>")[1].split("</section>")[0]
    assert promotions.count("<tr>") == 1 + 2  # header + the rejected and the approved verdict
    assert "min_trade_count" in promotions and "champion_challenger" in promotions
    assert 'class="failed"' in promotions and 'class="passed"' in promotions
    risk = text.split("<h2>Risk limits against the hard ceilings</h2>")[1].split("</section>")[0]
    assert "tightened_on_poor_performance" in risk and "500,000" in risk


def test_fresh_install_report_says_no_data_yet_everywhere(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    out = tmp_path / "fresh.html"
    assert cli.main([str(config), "--report", "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    for title in DATA_SECTIONS:
        section = text.split(f"<h2>{title}</h2>")[1].split("</section>")[0]
        assert "No data yet." in section, title
    assert "<img" not in text
    assert not (tmp_path / "state").exists()  # read-only: a report creates nothing
    shot = screenshot(out, tmp_path / "fresh.png")
    assert shot.std() > 10 and axis_lines(shot) == 0  # panels, no plot


def test_unreadable_bars_give_an_unreadable_panel_not_a_crash(
        tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    config = operator_state(tmp_path_factory.getbasetemp(), tmp_path)
    for path in (tmp_path / "state" / "bars").glob("P00.npz*"):
        path.write_bytes(b"not an npz")
    html, sections = build_report(load_config(config))
    regimes = next(s for s in sections if s.id == "regimes")
    assert not regimes.has_data and "Unreadable." in regimes.body
    assert sum(s.has_data for s in sections) == len(sections) - 1
    assert "<h2>Market regimes</h2>" in html


def test_the_equity_panel_shows_the_archived_points_too(tmp_path: Path) -> None:
    loaded = load_config(write_config(tmp_path))
    archived_account(loaded.state_dir, loaded.config.paper.initial_cash)
    equity = collect(loaded, datetime(2030, 1, 1, tzinfo=UTC)).equity
    whole = daily_points(0, LONG_CURVE)  # #18: the ledger holds only the newest of them
    assert equity.times == [t for t, _ in whole] and equity.equity == [v for _, v in whole]


def test_out_needs_report_and_an_unwritable_path_is_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    assert cli.main([str(config), "--status", "--out", "x.html"]) == 2
    assert "--out goes with --report" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    assert cli.main([str(config), "--report", "--out", str(tmp_path / "file" / "r.html")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("aistock: cannot write the report") and err.count("\n") == 1
