"""Static checks of the Lua scripts: cluster safety and documented headers.

A script may only touch keys it was given in KEYS: every Redis command's key
arguments must be ``KEYS[...]`` or a local assigned from ``KEYS[...]``. A
key name built inside Lua (from a prefix, an id...) would break Redis
Cluster, where all keys of a script must be declared and share one slot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import pytest

from taskq_redis._scripts import PRELUDE, QUEUE_SCRIPTS, STANDALONE_SCRIPTS, ScriptSet, lua_source

#: command -> positions (1-based, counting after the command name) of key
#: arguments; "rest" means every argument is a key. Commands not listed are
#: refused, so a new command has to be classified here first.
KEY_POSITIONS: dict[str, tuple[int, ...] | str] = {
    "TIME": (),
    "PUBLISH": (),
    "GET": (1,),
    "SET": (1,),
    "PEXPIRE": (1,),
    "PEXPIREAT": (1,),
    "INCR": (1,),
    "HGET": (1,),
    "HSET": (1,),
    "HDEL": (1,),
    "HMGET": (1,),
    "HEXISTS": (1,),
    "SADD": (1,),
    "SREM": (1,),
    "ZADD": (1,),
    "ZREM": (1,),
    "ZSCORE": (1,),
    "ZCARD": (1,),
    "ZRANGE": (1,),
    "ZRANGEBYSCORE": (1,),
    "ZSCAN": (1,),
    "ZREMRANGEBYSCORE": (1,),
    "DEL": "rest",
    "EXISTS": "rest",
}

_CALL = re.compile(r"redis\.p?call\s*\(")
_KEYS_EXPR = re.compile(r"^KEYS\s*\[[^\[\]]+\]$")
_LOCAL_FROM_KEYS = re.compile(r"\blocal\s+(\w+)\s*=\s*(KEYS\s*\[[^\[\]]+\])\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Problem:
    """One violation found by :func:`check_lua`."""

    line: int
    message: str


def _strip_comments(source: str) -> str:
    """Blank out ``--`` comments (keeping line numbers), outside strings."""
    out: list[str] = []
    for line in source.splitlines():
        quote: str | None = None
        cut = len(line)
        for i, char in enumerate(line):
            if quote:
                if char == quote and line[i - 1] != "\\":
                    quote = None
            elif char in "\"'":
                quote = char
            elif line.startswith("--", i):
                cut = i
                break
        out.append(line[:cut])
    return "\n".join(out)


def _call_arguments(source: str, start: int) -> tuple[list[str], int]:
    """Split the argument list starting after ``(`` at ``start`` at top-level
    commas; returns the stripped arguments and the index after ``)``."""
    args: list[str] = []
    depth = 0
    quote: str | None = None
    current: list[str] = []
    i = start
    while i < len(source):
        char = source[i]
        if quote:
            current.append(char)
            if char == quote and source[i - 1] != "\\":
                quote = None
        elif char in "\"'":
            quote = char
            current.append(char)
        elif char in "([{":
            depth += 1
            current.append(char)
        elif char in ")]}":
            if depth == 0:
                args.append("".join(current).strip())
                return args, i + 1
            depth -= 1
            current.append(char)
        elif char == "," and depth == 0:
            args.append("".join(current).strip())
            current = []
        else:
            current.append(char)
        i += 1
    raise ValueError("unbalanced parentheses in a redis.call")


def check_lua(source: str) -> list[Problem]:
    """Every key argument of every ``redis.call``/``redis.pcall`` must come
    from KEYS; the command must be a literal the checker knows."""
    code = _strip_comments(source)
    key_locals: set[str] = set()
    for match in _LOCAL_FROM_KEYS.finditer(code):
        key_locals.add(match.group(1))
    problems: list[Problem] = []
    for name in sorted(key_locals):
        assignments = re.findall(rf"(?<![\w.]){re.escape(name)}\s*=(?!=)\s*([^\n]*)", code)
        if any(not _KEYS_EXPR.match(value.strip()) for value in assignments):
            problems.append(Problem(0, f"{name} is assigned something other than KEYS[...]"))
    for match in _CALL.finditer(code):
        line = code.count("\n", 0, match.start()) + 1
        args, _end = _call_arguments(code, match.end())
        command_match = re.fullmatch(r"""(["'])([A-Za-z]+)\1""", args[0]) if args else None
        if command_match is None:
            problems.append(Problem(line, f"the command is not a string literal: {args[:1]}"))
            continue
        command = command_match.group(2).upper()
        positions = KEY_POSITIONS.get(command)
        if positions is None:
            problems.append(Problem(line, f"{command} is not a command this checker knows"))
            continue
        rest = args[1:]
        indexes = range(len(rest)) if positions == "rest" else [p - 1 for p in positions]
        for index in indexes:
            if index >= len(rest):
                problems.append(Problem(line, f"{command} has no key argument"))
                continue
            key = rest[index]
            if not (_KEYS_EXPR.match(key) or key in key_locals):
                problems.append(Problem(line, f"{command} uses key {key!r}, not from KEYS"))
    return problems


def _all_lua_files() -> list[str]:
    folder = resources.files("taskq_redis") / "lua"
    return sorted(item.name for item in folder.iterdir() if item.name.endswith(".lua"))


@pytest.mark.parametrize("name", [PRELUDE, *QUEUE_SCRIPTS, *STANDALONE_SCRIPTS])
def test_script_uses_only_keys_from_keys(name: str) -> None:
    """No script (nor the shared prelude) uses a key that was not passed in KEYS."""
    assert check_lua(lua_source(name)) == []


def test_full_sources_pass_the_check() -> None:
    """The sources as sent to Redis (prelude + body) pass the check too."""
    scripts = ScriptSet()
    for name in QUEUE_SCRIPTS + STANDALONE_SCRIPTS:
        assert check_lua(scripts[name].source) == [], name


def test_every_lua_file_is_a_known_script() -> None:
    """Every .lua file shipped is loaded (no stray, unchecked script)."""
    expected = {f"{name}.lua" for name in (PRELUDE, *QUEUE_SCRIPTS, *STANDALONE_SCRIPTS)}
    assert set(_all_lua_files()) == expected


@pytest.mark.parametrize(
    "snippet",
    [
        'redis.call("GET", "taskq:lock:" .. ARGV[1])',
        'local k = ARGV[1]\nredis.call("ZADD", k, 1, "x")',
        'redis.call("HGET", prefix .. ":tasks", "d:x")',
        'local key = KEYS[1]\nkey = ARGV[1] .. "x"\nredis.call("GET", key)',
        'redis.call("DEL", KEYS[1], "other")',
        'redis.call("RENAME", KEYS[1], KEYS[2])',
        "redis.call(cmd, KEYS[1])",
        'redis.pcall("SET", KEYS[1] .. ":x", 1)',
    ],
)
def test_checker_flags_keys_not_from_keys(snippet: str) -> None:
    """The checker itself catches built key names, reassigned key locals,
    unknown commands and dynamic command names."""
    assert check_lua(snippet) != []


@pytest.mark.parametrize(
    "snippet",
    [
        'redis.call("GET", KEYS[1])',
        'local lock = KEYS[1]\nredis.call("SET", lock, ARGV[1], "PX", ARGV[2])',
        'redis.call("ZADD", KEYS[s + 5], 1, "x") -- redis.call("GET", "bad")',
        'redis.call("PUBLISH", ARGV[2], "q")',
        'redis.call("EXISTS", KEYS[1], KEYS[2])',
    ],
)
def test_checker_accepts_keys_from_keys(snippet: str) -> None:
    """Keys indexed from KEYS (also with an expression) and locals assigned
    from them pass; commented-out code and key-less commands are ignored."""
    assert check_lua(snippet) == []


def _header(name: str) -> str:
    """The comment lines at the top of ``lua/<name>.lua``."""
    header = []
    for line in lua_source(name).splitlines():
        if not line.startswith("--"):
            break
        header.append(line)
    return "\n".join(header)


@pytest.mark.parametrize("name", [*QUEUE_SCRIPTS, *STANDALONE_SCRIPTS])
def test_script_header_documents_keys_argv_and_result(name: str) -> None:
    """Each script's header comment documents KEYS, ARGV and its result."""
    text = _header(name)
    assert text.startswith(f"-- {name}.lua:")
    assert "KEYS" in text
    assert "ARGV" in text
    assert "Returns" in text


def test_prelude_documents_every_key_of_the_queue_set() -> None:
    """The prelude documents KEYS[1]..KEYS[10], the queue key set."""
    text = lua_source(PRELUDE)
    for index in range(1, 11):
        assert f"KEYS[{index}]" in text


@pytest.mark.parametrize("name", QUEUE_SCRIPTS)
def test_queue_script_header_refers_to_the_prelude_for_keys(name: str) -> None:
    """A per-queue script's header points at the queue key set that the
    prelude describes, instead of repeating (and drifting from) it."""
    text = _header(name)
    assert "-- KEYS: the queue key set (see _queue.lua)" in text
    assert "KEYS[" not in text
