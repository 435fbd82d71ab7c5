"""The installed command: every subcommand listed and answering --help, the operations commands free
of the local emulation, and the exit code for a wrong command line."""

import subprocess
import sys

import pytest

from sink_cli.main import COMMANDS, main

OPERATIONS = [name for name, (module, _) in COMMANDS.items() if module.startswith("sink_ops.")]


def test_the_help_list_names_every_subcommand(capsys):
    # Given the command, When it is called with --help, Then each subcommand is listed with its summary
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name, (_, summary) in COMMANDS.items():
        assert name in out and summary.split()[0] in out


@pytest.mark.parametrize("name", COMMANDS)
def test_every_subcommand_answers_help_under_its_own_name(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([name, "--help"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: twilio-sink {name}")


@pytest.mark.parametrize("argv", [[], ["no-such-command"]])
def test_a_wrong_command_line_exits_2(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "usage: twilio-sink" in capsys.readouterr().err


def test_operations_commands_run_with_boto3_alone():
    # Given an interpreter where moto and the local stack cannot be imported,
    # When every operations command is loaded and parses its --help, Then none of them needs either
    script = (
        "import sys\n"
        "for blocked in ('moto', 'sink_local', 'sink_bench'):\n"
        "    sys.modules[blocked] = None\n"
        "from sink_cli.main import main\n"
        f"for name in {OPERATIONS!r}:\n"
        "    try:\n"
        "        main([name, '--help'])\n"
        "    except SystemExit as done:\n"
        "        assert done.code == 0, (name, done.code)\n"
        "print('ok', len(sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith("ok")
    assert {"status", "connect", "redrive", "replay"} <= set(OPERATIONS)


def test_the_console_script_is_installed():
    # `make setup` installs the project; the command must be on the venv's PATH under its name
    script = ("from importlib.metadata import entry_points; "
              "print([e.value for e in entry_points(group='console_scripts', name='twilio-sink')])")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "['sink_cli.main:main']"
