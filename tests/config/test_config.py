"""The config file: the manual's examples load, mistakes are named precisely, ceilings clamp.

What an operator relies on: the JSON examples from the manual (with ``//`` comments) work as-is;
a typo or an out-of-range value is refused with ONE line that names the key path and what is
allowed (exit 2, no traceback); a value above a hard safety ceiling runs at the ceiling.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aistock_actors.config import Clamp, Config, HeadlessConfig, load_config, parse_config
from aistock_actors.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "configs").glob("*.json"))
SUPERVISOR = REPO / "supervisor.py"

def _keys(struct: type[msgspec.Struct]) -> str:
    """The allowed keys as the error message lists them: the Struct's fields, in order."""
    return ", ".join(f.encode_name for f in msgspec.structs.fields(struct))


TOP_KEYS = _keys(Config)
HEADLESS_KEYS = _keys(HeadlessConfig)


def error_of(text: str | bytes, source: str = "cfg.json") -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source=source)
    return str(info.value)


# --------------------------------------------------------------------------------------------
# The manual's examples
# --------------------------------------------------------------------------------------------


def test_the_configs_folder_has_the_manual_examples() -> None:
    names = {p.name for p in CONFIGS}
    assert {"aggressive.json", "conservative.json", "headless_autopilot_example.json"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_example_config_loads(path: Path) -> None:
    loaded = load_config(path)
    assert isinstance(loaded.config, Config)
    assert loaded.clamps == ()
    assert loaded.path == path.resolve()


def test_values_followed_by_line_comments_are_read() -> None:
    aggressive = load_config(REPO / "configs" / "aggressive.json").config.headless
    assert aggressive.promotion_validation_stages == 3
    assert aggressive.max_risk_increase_pct == 0.10  # "0.10,      // 10% max increase"
    assert aggressive.min_risk_floor == 0.05
    assert aggressive.max_consecutive_failures == 5  # last key: "5        // More tolerance"
    conservative = load_config(REPO / "configs" / "conservative.json").config.headless
    assert conservative.max_consecutive_failures == 2
    assert conservative.auto_rollback_on_degradation is True
    assert conservative.degradation_threshold_pct == 0.05


def test_empty_object_gives_the_documented_defaults() -> None:
    config, clamps = parse_config("{}")
    assert clamps == ()
    assert config == Config()
    assert config.mode == "headless"
    assert config.headless.max_consecutive_failures == 3
    assert config.risk.max_position_fraction == 0.20  # README: risk.max_position_fraction 0.20


def test_comments_everywhere_and_slashes_inside_strings_are_preserved() -> None:
    text = """
    // leading line comment
    /* a block
       comment */
    {
      "data": {"csv_dir": "//server/share/data"},   // UNC-like path with //
      "headless": {
        "kill_switch_check_url": "https://ops.example/kill?x=/*y*/",  /* inline */
        "external_health_report_url": "https://h.example/\\"quoted//\\"" // escaped quote
      },
      "models_dir": "a/*b" /* ends */
    }
    // trailing
    """
    config, _ = parse_config(text)
    assert config.data.csv_dir == "//server/share/data"
    assert config.headless.kill_switch_check_url == "https://ops.example/kill?x=/*y*/"
    assert config.headless.external_health_report_url == 'https://h.example/"quoted//"'
    assert config.models_dir == "a/*b"


# --------------------------------------------------------------------------------------------
# Mistakes are named precisely
# --------------------------------------------------------------------------------------------


def test_unknown_top_level_key_names_it_and_lists_the_allowed_keys() -> None:
    assert error_of('{"mdoe": "headless"}') == (
        f"cfg.json: mdoe: unknown key (allowed keys: {TOP_KEYS})"
    )


def test_unknown_nested_key_names_the_path_and_lists_the_allowed_keys() -> None:
    assert error_of('{"headless": {"foo": 1}}') == (
        f"cfg.json: headless.foo: unknown key (allowed keys under headless: {HEADLESS_KEYS})"
    )


def test_unknown_deeply_nested_key() -> None:
    assert error_of('{"supervision": {"step_timeouts": {"trian": 5}}}') == (
        "cfg.json: supervision.step_timeouts.trian: unknown key "
        "(allowed keys under supervision.step_timeouts: "
        "ingest, train, backtest, judge, risk, trade)"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '{"headless": {"max_consecutive_failures": 0}}',
            "headless.max_consecutive_failures: Expected `int` >= 1 "
            "(allowed: int >= 1 and <= 100000)",
        ),
        (
            '{"risk": {"max_position_fraction": 1.5}}',
            "risk.max_position_fraction: Expected `float` <= 1.0 (allowed: float > 0.0 and <= 1.0)",
        ),
        (
            '{"risk": {"max_position_fraction": 0}}',
            "risk.max_position_fraction: Expected `float` > 0.0 (allowed: float > 0.0 and <= 1.0)",
        ),
        (
            '{"headless": {"promotion_validation_stages": 6}}',
            "headless.promotion_validation_stages: Expected `int` <= 5 "
            "(allowed: int >= 1 and <= 5)",
        ),
        (
            '{"supervision": {"kill_switch_poll_seconds": 2}}',
            "supervision.kill_switch_poll_seconds: Expected `float` <= 1.0 "
            "(allowed: float > 0.0 and <= 1.0)",
        ),
        (
            '{"headless": {"min_risk_floor": -0.1}}',
            "headless.min_risk_floor: Expected `float` >= 0.0 (allowed: float >= 0.0 and <= 1.0)",
        ),
        (
            '{"mode": "auto"}',
            "mode: Invalid enum value 'auto' (allowed: 'headless' | 'manual' | 'supervised')",
        ),
        (
            '{"risk": {"halt_action": "sell"}}',
            "risk.halt_action: Invalid enum value 'sell' (allowed: 'flatten' | 'freeze')",
        ),
    ],
)
def test_out_of_range_value_names_the_path_and_the_allowed_range(text: str, message: str) -> None:
    assert error_of(text) == f"cfg.json: {message}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '{"headless": {"max_consecutive_failures": "3"}}',
            "headless.max_consecutive_failures: Expected `int`, got `str` "
            "(allowed: int >= 1 and <= 100000)",
        ),
        (
            '{"headless": {"max_consecutive_failures": 2.5}}',
            "headless.max_consecutive_failures: Expected `int`, got `float` "
            "(allowed: int >= 1 and <= 100000)",
        ),
        (
            '{"headless": {"enable_auto_promotion": "yes"}}',
            "headless.enable_auto_promotion: Expected `bool`, got `str` (allowed: bool)",
        ),
        (
            '{"risk": {"max_position_fraction": true}}',
            "risk.max_position_fraction: Expected `float`, got `bool` "
            "(allowed: float > 0.0 and <= 1.0)",
        ),
        (
            '{"headless": {"kill_switch_check_url": 5}}',
            "headless.kill_switch_check_url: Expected `str | null`, got `int` (allowed: str)",
        ),
        ('{"headless": 3}', "headless: Expected `object`, got `int` (allowed: struct)"),
        ("[]", "(top level): Expected `object`, got `array` (allowed: struct)"),
        ("null", "(top level): Expected `object`, got `null` (allowed: struct)"),
    ],
)
def test_wrong_type_names_the_path_and_the_expected_type(text: str, message: str) -> None:
    assert error_of(text) == f"cfg.json: {message}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nope", "JSON is malformed: invalid character (byte "),
        ("", "Input data was truncated"),
        ('{"mode": "headless",}', "JSON is malformed: trailing comma in object (byte "),
        ('{"mode": "headless"} extra', "JSON is malformed: trailing characters (byte "),
        ("{'mode': 'headless'}", "JSON is malformed: object keys must be strings"),
    ],
)
def test_not_json_is_a_config_error(text: str, message: str) -> None:
    """(A NaN literal now names its key: tests/config/test_config_literals.py, #17.)"""
    assert error_of(text).startswith(f"cfg.json: not valid JSON: {message}")


def test_not_utf8_is_a_config_error() -> None:
    assert error_of(b'{"mode": "\xff"}') == "cfg.json: not UTF-8 text (invalid start byte)"


def test_unreadable_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "missing.json")
    assert str(info.value) == (
        f"{tmp_path / 'missing.json'}: cannot read config file: No such file or directory"
    )


@pytest.mark.parametrize(
    "text",
    [
        pytest.param('{"headless": {"foo": 1}}', id="unknown-key"),
        pytest.param('{"risk": {"max_position_fraction": 2}}', id="out-of-range"),
        pytest.param("{nope", id="not-json"),
        pytest.param('{"mode": "headless"} /* forgot to close', id="unterminated-block-comment"),
    ],
)
def test_every_config_error_names_the_file(text: str) -> None:
    """The operator sees which file is wrong, whatever the mistake."""
    assert error_of(text, source="configs/prod.json").startswith("configs/prod.json: ")


# --------------------------------------------------------------------------------------------
# Hard ceilings clamp instead of failing
# --------------------------------------------------------------------------------------------


def test_position_fraction_above_the_ceiling_runs_at_the_ceiling() -> None:
    config, clamps = parse_config('{"risk": {"max_position_fraction": 0.9}}')
    assert config.risk.max_position_fraction == 0.30
    assert clamps == (Clamp(key="risk.max_position_fraction", requested=0.9, applied=0.30),)
    # Nothing else changed.
    default = Config().risk
    assert msgspec.structs.replace(config.risk, max_position_fraction=0.20) == default
    assert default.max_position_fraction == 0.20


def test_all_three_ceilings_clamp_and_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(
        '{"risk": {"max_position_fraction": 0.31, "max_notional_per_symbol": 2e6},'
        ' "headless": {"min_risk_floor": 0.5}}'
    )
    loaded = load_config(path)
    assert loaded.config.risk.max_position_fraction == 0.30
    assert loaded.config.risk.max_notional_per_symbol == 500_000.0
    assert loaded.config.headless.min_risk_floor == 0.30
    assert loaded.clamps == (
        Clamp(key="risk.max_position_fraction", requested=0.31, applied=0.30),
        Clamp(key="risk.max_notional_per_symbol", requested=2e6, applied=500_000.0),
        Clamp(key="headless.min_risk_floor", requested=0.5, applied=0.30),
    )


def test_values_at_the_ceiling_are_not_clamped() -> None:
    config, clamps = parse_config(
        '{"risk": {"max_position_fraction": 0.30, "max_notional_per_symbol": 500000},'
        ' "headless": {"min_risk_floor": 0.30}}'
    )
    assert clamps == ()
    assert config.risk.max_position_fraction == 0.30


@settings(max_examples=150, deadline=None)
@given(
    fraction=st.floats(min_value=0.0, max_value=1.0, exclude_min=True),
    notional=st.floats(min_value=0.0, max_value=1e12, exclude_min=True),
    floor=st.floats(min_value=0.0, max_value=1.0),
)
def test_clamping_never_exceeds_a_ceiling_and_reports_exactly_the_changes(
    fraction: float, notional: float, floor: float
) -> None:
    text = json.dumps(
        {
            "risk": {"max_position_fraction": fraction, "max_notional_per_symbol": notional},
            "headless": {"min_risk_floor": floor},
        }
    )
    config, clamps = parse_config(text)
    assert config.risk.max_position_fraction == min(fraction, 0.30)
    assert config.risk.max_notional_per_symbol == min(notional, 500_000.0)
    assert config.headless.min_risk_floor == min(floor, 0.30)
    expected = {
        key: value
        for key, value, ceiling in (
            ("risk.max_position_fraction", fraction, 0.30),
            ("risk.max_notional_per_symbol", notional, 500_000.0),
            ("headless.min_risk_floor", floor, 0.30),
        )
        if value > ceiling
    }
    assert {c.key: c.requested for c in clamps} == expected


# --------------------------------------------------------------------------------------------
# Hypothesis: anything in -> a Config or a ConfigError, never another exception
# --------------------------------------------------------------------------------------------

json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["headless", "manual", "supervised", "freeze", "flatten", ""])
    | st.floats(min_value=-2.0, max_value=2.0)
    | st.integers(min_value=-2, max_value=10)
)
json_values = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


def _schema(info: Any) -> st.SearchStrategy[Any]:
    """Dicts shaped like the config (known keys, arbitrary values) plus stray unknown keys."""
    if isinstance(info, msgspec.inspect.StructType):
        known = {f.encode_name: _schema(f.type) for f in info.fields}
        shaped = st.fixed_dictionaries({}, optional=known)
        stray = st.dictionaries(st.text(max_size=8), json_values, max_size=1)
        return st.one_of(
            shaped,
            st.tuples(shaped, stray).map(lambda pair: {**pair[0], **pair[1]}),
            json_values,
        )
    return json_values


config_like = _schema(msgspec.inspect.type_info(Config))


@settings(max_examples=300, deadline=None)
@given(obj=config_like)
def test_any_json_value_gives_a_config_or_a_config_error(obj: Any) -> None:
    text = json.dumps(obj)  # NaN/Infinity come out as non-JSON tokens: also a ConfigError
    try:
        config, clamps = parse_config(text, source="h.json")
    except ConfigError as exc:
        assert str(exc).startswith("h.json: ")
        return
    assert isinstance(config, Config)
    assert config.risk.max_position_fraction <= 0.30
    assert config.risk.max_notional_per_symbol <= 500_000.0
    assert config.headless.min_risk_floor <= 0.30
    assert all(c.applied < c.requested for c in clamps)


FRAGMENTS = [
    "{", "}", "[", "]", '"', ":", ",", " ", "\n", "//", "/*", "*/", "\\", "\\u00e9", "risk",
    '"risk"', '"headless"', '"mode"', '"max_position_fraction"', "0.9", "1e999", "-1", "true",
    "null", "NaN", "é", "\x00", "\ufeff",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    text=st.one_of(
        st.text(max_size=60),
        st.lists(st.sampled_from(FRAGMENTS), max_size=30).map("".join),
    )
)
def test_any_text_gives_a_config_or_a_config_error(text: str) -> None:
    try:
        config, _ = parse_config(text, source="h.json")
    except ConfigError:
        return
    assert isinstance(config, Config)


@settings(max_examples=150, deadline=None)
@given(raw=st.binary(max_size=60))
def test_any_bytes_give_a_config_or_a_config_error(raw: bytes) -> None:
    try:
        config, _ = parse_config(raw, source="h.json")
    except ConfigError as exc:
        assert str(exc)
        return
    assert isinstance(config, Config)


# --------------------------------------------------------------------------------------------
# CLI: one line on stderr, exit 2, no traceback
# --------------------------------------------------------------------------------------------


def run_cli(tmp_path: Path, content: str, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "bad.json").write_text(content)
    return subprocess.run(
        [sys.executable, str(SUPERVISOR), "bad.json", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("content", "line"),
    [
        pytest.param(
            '{"headless": {"foo": 1}}',
            "aistock: config error: bad.json: headless.foo: unknown key "
            f"(allowed keys under headless: {HEADLESS_KEYS})",
            id="unknown-key",
        ),
        pytest.param(
            '{\n  "risk": {"max_position_fraction": 1.5}  // too much\n}',
            "aistock: config error: bad.json: risk.max_position_fraction: Expected `float` <= 1.0 "
            "(allowed: float > 0.0 and <= 1.0)",
            id="out-of-range",
        ),
        pytest.param(
            '{"mode": headless}',
            "aistock: config error: bad.json: not valid JSON: "
            "JSON is malformed: invalid character (byte 9)",
            id="not-json",
        ),
    ],
)
def test_cli_config_error_is_one_line_exit_2_no_traceback(
    tmp_path: Path, content: str, line: str
) -> None:
    done = run_cli(tmp_path, content, "--status")
    assert done.returncode == 2
    assert done.stderr == line + "\n"
    assert done.stdout == ""
    assert "Traceback" not in done.stderr + done.stdout
    assert not (tmp_path / "state").exists()  # refused before touching any state


def test_cli_unterminated_block_comment_names_the_file(tmp_path: Path) -> None:
    done = run_cli(tmp_path, '{"mode": "headless"}  /* forgot to close', "--status")
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("aistock: config error: bad.json: "), lines[0]
    assert "unterminated /* comment */" in lines[0]


def test_cli_config_error_is_one_line_even_for_a_key_with_an_escaped_newline(
    tmp_path: Path,
) -> None:
    """``"max_risk\\nincrease"`` is a (mistyped) key containing a newline: still one line."""
    done = run_cli(tmp_path, '{"headless": {"max_risk\\nincrease": 0.1}}', "--status")
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith("aistock: config error: bad.json: headless.max_risk")
    assert "Traceback" not in done.stderr


def test_cli_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SUPERVISOR), "nowhere.json", "--status"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr == (
        "aistock: config error: nowhere.json: cannot read config file: No such file or directory\n"
    )


def test_cli_runs_with_a_clamped_config(tmp_path: Path) -> None:
    done = run_cli(tmp_path, '{"risk": {"max_position_fraction": 0.9}}', "--status")
    assert done.returncode == 0, done.stderr
    assert "config error" not in done.stderr
    assert "mode:                 headless" in done.stdout


@pytest.mark.parametrize(("value", "message"), [
    ("1.0", "Expected `float` < 1.0"),
    ("-0.1", "Expected `float` >= 0.0"),
    ('"wide"', "Expected `float`, got `str`"),
])
def test_a_bad_rebalance_band_is_one_error_naming_it(value: str, message: str) -> None:
    """``paper.rebalance_band`` (the no-trade band, issue #14) is a fraction in [0, 1)."""
    assert error_of(f'{{"paper": {{"rebalance_band": {value}}}}}') == (
        f"cfg.json: paper.rebalance_band: {message} (allowed: float >= 0.0 and < 1.0)"
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [("-0.5", "Expected `float` >= 0.0"), ("51", "Expected `float` <= 50.0"),
     ('"one"', "Expected `float`, got `str`")],
)
def test_a_bad_history_floor_is_one_error_naming_it(value: str, message: str) -> None:
    """``training.min_history_years`` (the floor in years under the minimum history, #14)."""
    assert error_of(f'{{"training": {{"min_history_years": {value}}}}}') == (
        f"cfg.json: training.min_history_years: {message} (allowed: float >= 0.0 and <= 50.0)"
    )
