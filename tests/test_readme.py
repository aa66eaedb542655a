"""The README is the operator's reference: it must carry every settings section's table as
the code describes it, and open with the two set-up commands that .ci/run relies on."""

from __future__ import annotations

import pytest

from stream.config import PROJECT_ROOT, ConfigSection, WorkerConfig, markdown_table
from training.config import TrainingConfig

README = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
SECTIONS: list[type[ConfigSection]] = [*WorkerConfig.sections().values(), TrainingConfig]


@pytest.mark.parametrize("section", SECTIONS, ids=lambda section: section.__name__)
def test_every_settings_section_is_documented_as_the_code_has_it(
    section: type[ConfigSection],
) -> None:
    heading = f"### {section.__name__}"
    assert heading in README
    documented = README.split(heading, 1)[1]
    assert markdown_table(section) in documented, (
        f"regenerate the README table: python -c 'from stream.config import *; "
        f"from training.config import *; print(markdown_table({section.__name__}))'"
    )


def test_setting_names_are_unique_across_sections() -> None:
    names = [name for section in SECTIONS for name in section.model_fields]
    assert len(names) == len(set(names))


def test_readme_opens_with_the_demo_and_test_commands() -> None:
    first_block = README.split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert commands == ["bash deploy/local/demo.sh", "bash deploy/local/test.sh"]
    ci = (PROJECT_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "bash deploy/local/test.sh" in ci
