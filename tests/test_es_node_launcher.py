"""tools.es_node: which JDK runs which server major, and what is said when none fits.

The Java installations are real directories (a ``release`` file, executable ``bin/java``
scripts) in a temporary ``/usr/lib/jvm`` stand-in; no node is started here.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

import tools.es_node as es_node
from tools.es_node import MAJORS, EsNodeError, find_jdk, java_executable, server_major


def _jdk(root: Path, name: str, version: str | None, *, javac: bool = True, banner: str = "") -> Path:
    """A Java home; ``release`` names the version, or when ``version`` is None ``java -version`` prints ``banner``."""
    home = root / name
    (home / "bin").mkdir(parents=True)
    if version is not None:
        (home / "release").write_text(f'IMPLEMENTOR="test"\nJAVA_VERSION="{version}"\n')
    tools = ["java", "javac"] if javac else ["java"]
    for tool in tools:
        script = home / "bin" / tool
        script.write_text(f"#!/bin/sh\necho '{banner}' >&2\n")
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return home


@pytest.fixture
def jvm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty JVM directory; no JAVA_HOME, and no java on PATH."""
    root = tmp_path / "jvm"
    root.mkdir()
    monkeypatch.setattr(es_node, "JVM_DIR", root)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    return root


def test_newest_installed_jdk_is_taken_when_nothing_is_named(jvm: Path) -> None:
    _jdk(jvm, "jdk-17", "17.0.2")
    newest = _jdk(jvm, "jdk-25", "25.0.1")
    _jdk(jvm, "jdk-21", "21.0.5")
    assert find_jdk(17) == es_node.Jdk(newest, 25)
    assert find_jdk(21, compiler=True).home == newest


def test_java_home_then_path_come_before_the_jvm_directory(jvm: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = _jdk(jvm, "jdk-17", "17.0.2")
    jre = _jdk(jvm, "jre-21", "21.0.5", javac=False)
    newest = _jdk(jvm, "jdk-25", "25.0.1")
    monkeypatch.setenv("JAVA_HOME", str(old))
    monkeypatch.setenv("PATH", str(jre / "bin"))
    assert find_jdk(17).home == old  # JAVA_HOME is recent enough for 8.19
    assert find_jdk(21).home == jre  # JAVA_HOME is not for 9.x; java on PATH is, to run
    assert find_jdk(21, compiler=True).home == newest  # but it cannot compile the launcher
    assert java_executable(8) == str(old / "bin" / "java")
    assert java_executable(9) == str(jre / "bin" / "java")


def test_version_read_from_java_when_there_is_no_release_file(jvm: Path) -> None:
    home = _jdk(jvm, "custom", None, banner='openjdk version "22.0.1" 2024-04-16')
    _jdk(jvm, "legacy", None, banner='java version "1.8.0_412"')
    assert find_jdk(21) == es_node.Jdk(home, 22)
    assert {jdk.version for jdk in es_node._installed_jdks()} == {22, 8}


def test_no_recent_enough_jdk_names_what_is_missing_and_what_was_found(jvm: Path) -> None:
    old = _jdk(jvm, "jdk-17", "17.0.15")
    jre = _jdk(jvm, "jre-21", "21.0.5", javac=False)
    with pytest.raises(EsNodeError) as raised:
        find_jdk(21, compiler=True, purpose="building the Elasticsearch 9.5.3 node")
    message = str(raised.value)
    assert message.startswith("building the Elasticsearch 9.5.3 node needs a JDK 21+ (java and javac)")
    assert f"{old} (17)" in message and f"{jre} (21, no javac)" in message
    assert java_executable(9) == str(jre / "bin" / "java")  # running needs no javac


def test_nine_refuses_java_17(jvm: Path) -> None:
    _jdk(jvm, "jdk-17", "17.0.15")
    assert java_executable(8).endswith("jdk-17/bin/java")
    with pytest.raises(EsNodeError, match=rf"^Elasticsearch {MAJORS[9].version} needs Java 21\+"):
        java_executable(9)


def test_nothing_at_all_is_said_so(jvm: Path) -> None:
    with pytest.raises(EsNodeError, match=r"needs Java 17\+.*found: no Java at all"):
        java_executable(8)


def test_only_known_majors(capsys: pytest.CaptureFixture[str]) -> None:
    assert server_major("9").version.startswith("9.") and server_major(8).min_java == 17
    with pytest.raises(EsNodeError, match="choose one of 8, 9"):
        server_major("7")
    assert es_node.main(["status", "--major", "9.5.3"]) == 1
    assert "choose one of 8, 9" in capsys.readouterr().err
