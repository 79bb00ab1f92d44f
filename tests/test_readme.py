"""The README stays true: its configuration table lists exactly the variables settings.py reads."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
SETTINGS = (ROOT / "ticketing" / "settings.py").read_text()

# Read by scripts/dev.py, not by settings.
SCRIPT_VARIABLES = {"PORT"}


def _configuration_table() -> set[str]:
    section = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([A-Z0-9_]+)` \|", section, re.M))


def test_the_configuration_table_lists_every_variable_settings_reads():
    read = set(re.findall(r'\benv(?:\.\w+)?\(\s*"([A-Z0-9_]+)"', SETTINGS))
    assert read, "no env(...) calls found in settings.py"

    documented = _configuration_table()

    assert read - documented == set(), "read by settings.py but missing from the README"
    assert documented - read - SCRIPT_VARIABLES == set(), "in the README but read by nothing"


def test_the_two_set_up_commands_come_first():
    first_section = README.split("\n## ", 2)[1]
    assert first_section.startswith("The two commands")
    assert "python3 scripts/dev.py run" in first_section and "python3 scripts/dev.py test" in first_section
