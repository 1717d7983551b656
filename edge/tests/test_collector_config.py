"""site.toml: defaults, relative paths, and a clear error for each kind of mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.collector.config import ConfigError, load_config, parse_config

MINIMAL = '[server]\nurl = "http://127.0.0.1:8000"\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_minimal_config_takes_the_documented_defaults(tmp_path):
    config = load_config(write(tmp_path, MINIMAL))
    assert config.server_url == "http://127.0.0.1:8000"
    assert config.inventory == "server"
    assert config.poll_interval_s == 60 and config.batch_size == 1000 and config.concurrency == 64
    assert config.credentials_path == tmp_path / "credentials.json"  # relative to the config file
    assert config.spool_path == tmp_path / "spool.sqlite3"
    assert config.default_adapter == "cgminer" and config.cgminer_port == 4028
    assert config.simulator_base_port is None
    assert config.miners == ()


def test_a_full_config(tmp_path):
    config = load_config(
        write(
            tmp_path,
            """
inventory = "static"
[server]
url = "https://hashinsight.example/"
credentials = "/etc/hashinsight/creds.json"
[collector]
poll_interval_s = 30
concurrency = 8
batch_size = 5000
[spool]
path = "var/spool.db"
max_samples = 100
[adapters]
default = "pyasic"
simulator_base_port = 14028
[[miners]]
serial = "S21-1"
host = "10.0.0.5"
[[miners]]
serial = "SIM-2"
host = "127.0.0.1"
port = 14029
adapter = "cgminer"
""",
        )
    )
    assert config.server_url == "https://hashinsight.example"
    assert config.credentials_path == Path("/etc/hashinsight/creds.json")
    assert config.spool_path == tmp_path / "var" / "spool.db"
    assert config.poll_interval_s == 30.0 and config.batch_size == 5000 and config.spool_max_samples == 100
    assert [(m.serial, m.host, m.port, m.adapter) for m in config.miners] == [
        ("S21-1", "10.0.0.5", 4028, "pyasic"),
        ("SIM-2", "127.0.0.1", 14029, "cgminer"),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[collector]\npoll_interval_s = 60\n", r"\[server\] url is required"),
        ('[server]\nurl = "ftp://x"\n', r"\[server\] url must be the server's http\(s\) URL"),
        (MINIMAL + "[collector]\npoll_intervall_s = 5\n", r"unknown key\(s\) in \[collector\]: poll_intervall_s"),
        (MINIMAL + '[collector]\npoll_interval_s = "fast"\n', r"poll_interval_s must be a number \(got 'fast'\)"),
        (MINIMAL + "[collector]\npoll_interval_s = 0\n", r"poll_interval_s must be at least 1"),
        (MINIMAL + "[collector]\nbatch_size = 6000\n", r"batch_size must be at most 5000, the server's limit"),
        (MINIMAL + "[collector]\nconcurrency = 2.5\n", r"concurrency must be a whole number"),
        (MINIMAL + "[collector]\npoll_interval_s = 5\npoll_timeout_s = 5\n", r"poll_timeout_s must be shorter"),
        (MINIMAL + "[adapters]\nsimulator_base_port = 70000\n", r"simulator_base_port must be a TCP port"),
        (MINIMAL + '[adapters]\ndefault = "bosminer"\n', r"\[adapters\] default must be one of cgminer, pyasic"),
        ('inventory = "file"\n' + MINIMAL, r'inventory must be "server"'),
        ('inventory = "static"\n' + MINIMAL, r"needs at least one \[\[miners\]\] entry"),
        (MINIMAL + '[[miners]]\nhost = "10.0.0.1"\n', r"\[\[miners\]\] #1: serial is required"),
        (MINIMAL + '[[miners]]\nserial = "A"\n', r"#1 \(A\): host is required"),
        (MINIMAL + '[[miners]]\nserial = "A"\nhost = "h"\n[[miners]]\nserial = "A"\nhost = "h"\n', "listed twice"),
        (MINIMAL + '[[miners]]\nserial = "A"\nhost = "h"\nip = "x"\n', r"#1: unknown key\(s\) ip"),
        (MINIMAL + '[[miners]]\nserial = "A"\nhost = "h"\nadapter = "x"\n', r"#1 adapter must be one of"),
        (MINIMAL + "colour = 1\n", r"unknown key\(s\) in \[server\]: colour"),
        ("poll = 1\n" + MINIMAL, r"unknown top-level key\(s\) poll"),
        (MINIMAL + "[spool]\nmax_samples = 0\n", r"\[spool\] max_samples must be at least 1"),
    ],
)
def test_mistakes_are_named_with_their_key(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text))


def test_unreadable_files_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[server\nurl = 1"))


def test_the_section_must_be_a_table(tmp_path):
    with pytest.raises(ConfigError, match=r"\[collector\] must be a table"):
        parse_config({"server": {"url": "http://x"}, "collector": 5}, tmp_path / "site.toml")


def test_the_example_config_is_valid_and_states_the_defaults():
    example = Path(__file__).resolve().parent.parent / "collector" / "site.example.toml"
    config = load_config(example)
    defaults = parse_config({"server": {"url": "http://127.0.0.1:8000"}}, example)
    assert config == defaults  # every value written in the example is the default
