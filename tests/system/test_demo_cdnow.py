"""``retain demo --data cdnow``: a value model is promoted on the real data, and every
`retain` command the demo prints next runs (issue 26), and churn is learned as the lapse (issue 22)."""

import shlex

import pytest

from retain.cli import main


@pytest.mark.slow
def test_cdnow_demo_promotes_a_value_model_and_its_next_commands_run(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("RETAIN_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--data", "cdnow", "--workdir", str(tmp_path / "demo")]) == 0
    printed = capsys.readouterr().out
    assert "retain-clv version 1 promoted to champion" in printed, printed[-3000:]
    steps = printed.split("\nnext:\n")[1].splitlines()
    commands = [line.split(":", 1)[1].strip() for line in steps if " retain " in line]
    assert any(" score " in c for c in commands)
    # every retain command printed runs against the demo's store; none names a missing option
    for command in commands:
        words = shlex.split(command)
        environment = dict(w.split("=", 1) for w in words if "=" in w and not w.startswith("-"))
        arguments = words[words.index("retain") + 1:]
        if arguments[0] == "serve":
            # the service needs both champions: CDNOW has no churn events, so the churn one is
            # the lapse model (issue 22); the service itself is tested in test_http.py
            assert "retain-churn-type version 1 promoted to champion" in printed, command
            continue
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        assert main(arguments) == 0, (command, capsys.readouterr())
        capsys.readouterr()
