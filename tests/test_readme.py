"""The README is the operator's reference: it must name every setting and open with the two
set-up commands that .ci/run relies on."""

from __future__ import annotations

from stream.settings import PROJECT_ROOT, Settings

README = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_documented_with_env_var_and_flag() -> None:
    missing = [
        name
        for name in Settings.model_fields
        if f"REVIEWPULSE_{name.upper()}" not in README
        or f"--{name.replace('_', '-')}" not in README
    ]
    assert missing == []


def test_readme_opens_with_the_demo_and_test_commands() -> None:
    first_block = README.split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert commands == ["bash deploy/local/demo.sh", "bash deploy/local/test.sh"]
    ci = (PROJECT_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "bash deploy/local/test.sh" in ci
