"""The IPython extension (DESIGN §5), driven through a real in-process IPython shell.

Each test gets a fresh default app and default backend, and the extension loaded; magics are
called as a notebook would (``run_cell``) where the printed output matters, and directly
(``run_line_magic``/``run_cell_magic``) where the return value or the raised error does.
"""

from __future__ import annotations

import math
import re
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("IPython", reason="IPython is not installed (pip install ipython)")

from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import convex_lab as cl
from convex_lab import functions
from convex_lab.errors import ArgumentValidationError

LINE_MAGICS = ("convex",)
CELL_MAGICS = ("schema", "query", "mutation", "action", "sql")


@pytest.fixture
def ip(monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    shell = InteractiveShell.instance()
    monkeypatch.setattr(functions, "_default_app", None)  # a fresh cl.default_app()
    previous = cl.set_default_backend(None)
    shell.run_line_magic("load_ext", "convex_lab")
    shell.run_cell("import convex_lab as cl\nfrom convex_lab import v, define_table, "
                   "define_schema")
    try:
        yield shell
    finally:
        shell.run_line_magic("unload_ext", "convex_lab")
        ours = cl.set_default_backend(previous)
        if ours is not None:
            ours.close()


def cell(shell: InteractiveShell, source: str) -> Any:
    """Run ``source`` as a notebook cell; returns its value (errors are shown, as IPython does)."""
    return shell.run_cell(source).result


def _messages(ip: InteractiveShell) -> None:
    cell(ip, '%%schema\nmessages = define_table({"author": v.string(), "body": v.string()})'
             '.index("by_author", ["author"])')
    cell(ip, "%%mutation\ndef send(ctx, author: str, body: str):\n"
             "    print('sending', body)\n"
             "    return ctx.db.insert('messages', {'author': author, 'body': body})\n")
    cell(ip, "%%query\ndef list_bodies(ctx):\n"
             "    return [m['body'] for m in ctx.db.query('messages').collect()]\n")


# Loading --------------------------------------------------------------------------------------


def test_load_registers_every_magic_and_unload_removes_them(ip: InteractiveShell) -> None:
    for name in LINE_MAGICS:
        assert ip.find_line_magic(name) is not None
    for name in CELL_MAGICS:
        assert ip.find_cell_magic(name) is not None
    ip.run_line_magic("unload_ext", "convex_lab")
    assert all(ip.find_line_magic(n) is None for n in LINE_MAGICS)
    assert all(ip.find_cell_magic(n) is None for n in CELL_MAGICS)
    assert not {"ConvexMagics", "SqlMagics"} & set(ip.magics_manager.registry)
    ip.run_line_magic("load_ext", "convex_lab")
    ip.run_line_magic("reload_ext", "convex_lab")
    assert ip.find_line_magic("convex") is not None and ip.find_cell_magic("sql") is not None
    ip.run_line_magic("reload_ext", "convex_lab")  # twice: still one registration, still works
    assert "Backend: in memory" in str(_out(ip, "%convex"))


def test_load_ipython_extension_is_exported_lazily() -> None:
    assert callable(cl.load_ipython_extension) and callable(cl.unload_ipython_extension)


def _out(ip: InteractiveShell, source: str) -> str:
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        ip.run_cell(source)
    return buffer.getvalue()


@pytest.mark.parametrize(("source", "expected"), [
    ("%convex?", "%convex [subcommand]"),
    ("%%schema?", "Every ``define_table(...)`` assigned to a name"),
    ("%%query?", "--internal"),
    ("%%mutation?", "--name MODULE:FN"),
    ("%%action?", "as a Convex action"),
    ("%%sql?", "also bind the DataFrame"),
])
def test_help_text(ip: InteractiveShell, source: str, expected: str) -> None:
    assert expected in _out(ip, source)


def test_convex_help_flag(ip: InteractiveShell) -> None:
    assert "%convex run FN key=value" in _out(ip, "%convex --help")


# %%schema ---------------------------------------------------------------------------------------


def test_schema_binds_tables_by_name_and_pushes_them(ip: InteractiveShell) -> None:
    out = _out(ip, '%%schema\nchannels = define_table({"name": v.string()})\n'
                   'messages = define_table({"channel": v.id("channels"), "body": v.string()})'
                   '.index("by_channel", ["channel"])\nlimit = 3\n')
    assert out.strip() == "Schema pushed: channels, messages (by_channel)."
    schema = cl.default_app().schema
    assert schema is not None and list(schema.tables) == ["channels", "messages"]
    assert cl.default_backend().store.schema is schema
    with pytest.raises(Exception, match="does not match the schema"):
        cl.default_backend().import_documents("channels", [{"name": 3}])


def test_schema_accepts_a_define_schema_cell(ip: InteractiveShell) -> None:
    _out(ip, '%%schema\nschema = define_schema({"notes": define_table({"t": v.string()})}, '
             'schema_validation=False)\n')
    schema = cl.default_app().schema
    assert schema is not None and list(schema.tables) == ["notes"]
    assert not schema.schema_validation


def test_schema_names_offenders_and_keeps_the_old_schema(ip: InteractiveShell) -> None:
    _messages(ip)
    first = ip.run_line_magic("convex", "run send author=ada body=hi")
    before = cl.default_app().schema
    with pytest.raises(UsageError, match=rf"first offenders: {first}") as info:
        ip.run_cell_magic("schema", "", 'messages = define_table({"author": v.int64(), '
                                        '"body": v.string()})')
    assert 'table "messages"' in str(info.value)
    assert cl.default_app().schema is before  # not retried (and failing) on every call
    assert ip.run_line_magic("convex", "run list_bodies") == ["hi"]


def test_schema_cell_without_tables_is_a_usage_error(ip: InteractiveShell) -> None:
    with pytest.raises(UsageError, match="bound no define_table"):
        ip.run_cell_magic("schema", "", "x = 1")
    with pytest.raises(UsageError, match="SyntaxError in the cell, line 1"):
        ip.run_cell_magic("schema", "", "x = (")


# %%query, %%mutation, %%action ----------------------------------------------------------------


def test_functions_are_registered_bound_and_redefined(ip: InteractiveShell) -> None:
    _messages(ip)
    send = ip.user_ns["send"]
    assert isinstance(send, functions.FunctionDef)
    assert (send.path, send.kind, send.visibility) == ("send", "mutation", "public")
    cell(ip, "send(author='ada', body='one')\nsend(author='bob', body='two')")
    assert cell(ip, "list_bodies()") == ["one", "two"]
    # Re-running a cell with new code replaces the function (a redeploy).
    out = _out(ip, "%%query\ndef list_bodies(ctx):\n"
                   "    return len(ctx.db.query('messages').collect())\n")
    assert out.strip() == "Public query: list_bodies."
    assert cell(ip, "list_bodies()") == 2
    assert cl.default_app().functions["list_bodies"] is ip.user_ns["list_bodies"]


def test_internal_functions_and_explicit_names(ip: InteractiveShell) -> None:
    _messages(ip)
    out = _out(ip, "%%mutation --internal --name admin:wipe\ndef wipe(ctx):\n"
                   "    for m in ctx.db.query('messages').collect():\n"
                   "        ctx.db.delete(m['_id'])\n")
    assert out.strip() == "Internal mutation: admin:wipe."
    wipe = ip.user_ns["wipe"]
    assert (wipe.path, wipe.visibility) == ("admin:wipe", "internal")
    ip.run_line_magic("convex", "run send author=ada body=x")
    # A client cannot tell an internal function from a missing one (it learns nothing more).
    with pytest.raises(Exception, match=r"^Could not find public function for 'admin:wipe'\.$"):
        cl.default_backend().client().mutation("admin:wipe", {})
    ip.run_line_magic("convex", "run admin:wipe")
    assert ip.run_line_magic("convex", "run list_bodies") == []


def test_several_defs_sync_and_async_actions(ip: InteractiveShell) -> None:
    _messages(ip)
    out = _out(ip, "%%action\nasync def shout(ctx, body: str):\n"
                   "    return ctx.run_mutation(send, {'author': 'bot', 'body': body.upper()})\n"
                   "def count(ctx):\n    return len(ctx.run_query(list_bodies, {}))\n")
    assert out.strip() == "Public actions: shout, count."
    ip.run_line_magic("convex", "run shout body=hey")
    assert ip.run_line_magic("convex", "run count") == 1
    assert ip.run_line_magic("convex", "run list_bodies") == ["HEY"]


def test_function_cell_errors(ip: InteractiveShell) -> None:
    with pytest.raises(UsageError, match="defines no function"):
        ip.run_cell_magic("query", "", "x = 1")
    with pytest.raises(UsageError, match="--name applies to one function"):
        ip.run_cell_magic("query", "--name m:f", "def a(ctx): pass\ndef b(ctx): pass")
    with pytest.raises(UsageError, match="unrecognized arguments"):
        ip.run_cell_magic("query", "--bogus", "def a(ctx): pass")


def test_a_decorated_def_keeps_its_validators(ip: InteractiveShell) -> None:
    cell(ip, "%%query\n@cl.query(args={'n': v.int64()})\ndef twice(ctx, n):\n    return n * 2\n")
    result = ip.run_line_magic("convex", "run twice n=21")
    assert result == 42 and type(result) is cl.Int64


# %convex ----------------------------------------------------------------------------------------


def test_run_reads_python_literals_else_strings(ip: InteractiveShell) -> None:
    cell(ip, "%%mutation\ndef echo(ctx, **args):\n    return args\n")
    got = ip.run_line_magic(
        "convex", "run echo n=3 x=1.5 s=hello q=\"two words\" l=[1, 'a b'] "
                  "d={'k': None} t=True z=2**3")
    assert got == {"n": 3.0, "x": 1.5, "s": "hello", "q": "two words", "l": [1.0, "a b"],
                   "d": {"k": None}, "t": True, "z": "2**3"}
    assert type(got["n"]) is float  # a plain int is a float64 (DESIGN §2)
    assert ip.run_line_magic("convex", "run echo {'a': 1}") == {"a": 1.0}
    with pytest.raises(UsageError, match="Arguments are key=value"):
        ip.run_line_magic("convex", "run echo oops")


def test_user_errors_are_one_line_with_did_you_mean(ip: InteractiveShell) -> None:
    _messages(ip)
    cell(ip, "%%mutation\ndef fail(ctx):\n    raise cl.ConvexError({'code': 'nope'})\n")
    cases = {
        "%convex run sendd author=a body=b": "Could not find function for 'sendd'. "
                                             "Did you mean 'send'?",
        "%convex rn send": "Unknown %convex subcommand 'rn'. Did you mean 'run'?",
        "%convex data mesages": "Unknown table 'mesages'. Did you mean 'messages'?",
        "%convex run send author=a body=3": "ArgumentValidationError",
        "%convex run fail": "ConvexError: {code: \"nope\"}",
        "%convex watch send": "send is a mutation, not a query",
    }
    for source, expected in cases.items():
        out = _out(ip, source)
        assert "UsageError: " in out and expected in out, (source, out)
        assert "Traceback" not in out, out
    assert cell(ip, "list_bodies()") == []  # the ConvexError committed nothing


def test_status(ip: InteractiveShell) -> None:
    assert "Tables: none yet" in _out(ip, "%convex")
    _messages(ip)
    ip.run_line_magic("convex", "run send author=a body=b")
    out = _out(ip, "%convex")
    assert "Backend: in memory" in out and "Clock: real" in out
    assert "messages: 1 document\n" in out
    assert "list_bodies  query     public" in out and "send         mutation  public" in out
    assert "Jobs: none\nCrons: none" in out
    def without_clock(text: str) -> list[str]:
        return [line for line in text.splitlines() if not line.startswith("Clock:")]

    assert without_clock(out) == without_clock(_out(ip, "%convex status"))


def test_watch_is_a_live_query(ip: InteractiveShell) -> None:
    import contextlib
    import io

    _messages(ip)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        live = ip.run_line_magic("convex", "watch list_bodies")
    if live is None:  # no widget module: the live query was shown as text
        assert printed.getvalue().startswith("<LiveQuery list_bodies({}) ready")
        return
    try:
        assert live.path == "list_bodies"
        cell(ip, "send(author='a', body='hi')")
        live.refresh()
        assert live.value == ["hi"]
    finally:
        live.close()


def test_data_and_logs(ip: InteractiveShell) -> None:
    _messages(ip)
    ip.run_line_magic("convex", "run send author=ada body=hello")
    shown = ip.run_line_magic("convex", "data messages")
    if hasattr(shown, "to_dict"):  # the text fallback: a DataFrame of the first documents
        assert shown["body"].tolist() == ["hello"]
    else:
        assert shown is not None
    out = _out(ip, "%convex logs")
    if "send" in out:  # the text listing (the logs widget otherwise)
        assert "mutation  send" in out and "    sending hello" in out


def test_jobs_crons_status_and_clock_advance_runs_jobs(ip: InteractiveShell) -> None:
    cl.set_default_backend(cl.Backend(app=cl.default_app(), clock="virtual"))
    cell(ip, '%%schema\nreminders = define_table({"text": v.string()})')
    cell(ip, "%%mutation --internal\ndef send_reminder(ctx, text: str):\n"
             "    ctx.db.insert('reminders', {'text': text})\n")
    cell(ip, "%%mutation\ndef remind_me(ctx, text: str, minutes: float):\n"
             "    return ctx.scheduler.run_after(minutes * 60_000, send_reminder,\n"
             "                                   {'text': text})\n")
    cell(ip, "crons = cl.cron_jobs()\n"
             "crons.daily('digest', {'hourUTC': 9, 'minuteUTC': 0}, send_reminder, "
             "{'text': 'digest'})\n"
             "cl.default_app().crons = crons\ncl.default_backend().deploy()")
    ip.run_line_magic("convex", "run remind_me text=tea minutes=10")
    ip.run_line_magic("convex", "run remind_me text=nap minutes=30")
    out = _out(ip, "%convex")
    assert "Jobs: 2 pending\n" in out, out
    assert "Crons:\n  digest: daily at 09:00 UTC, next " in out, out
    assert _out(ip, "%convex clock advance 15m").strip().endswith("(1 scheduled function ran)")
    assert "Jobs: 1 pending, 1 success" in _out(ip, "%convex")
    for sub, kind in (("jobs", "JobsWidget"), ("crons", "CronsWidget")):
        shown = ip.run_line_magic("convex", sub)
        try:
            assert type(shown).__name__ == kind, shown
        finally:
            shown.close()


def test_jobs_and_crons_text_without_widgets(ip: InteractiveShell,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from convex_lab.jupyter import _commands

    monkeypatch.setattr(_commands, "widget_factory", lambda name: (None, "no widgets"))
    assert _out(ip, "%convex jobs").startswith("No scheduled functions yet")
    assert _out(ip, "%convex crons").startswith("No crons deployed")


def test_clock(ip: InteractiveShell) -> None:
    assert _out(ip, "%convex clock").startswith("real clock: ")
    with pytest.raises(UsageError, match="real clock cannot be moved"):
        ip.run_line_magic("convex", "clock advance 1h")
    virtual = cl.Backend(app=cl.default_app(), clock="virtual")
    cl.set_default_backend(virtual)
    before = virtual.clock.now()
    assert _out(ip, "%convex clock advance 1h").strip().endswith("(0 scheduled functions ran)")
    assert math.isclose(virtual.clock.now() - before, 3_600_000)
    with pytest.raises(UsageError, match="Not a duration"):
        ip.run_line_magic("convex", "clock advance soon")
    with pytest.raises(UsageError, match="Did you mean 'advance'"):
        ip.run_line_magic("convex", "clock advanc 1h")


def test_open_and_reset(ip: InteractiveShell, tmp_path: Path) -> None:
    _messages(ip)
    memory = cl.default_backend()
    path = tmp_path / "chat.duckdb"
    out = _out(ip, f'%convex open "{path}"')
    assert out.strip() == f"Default backend: file {path} (0 documents in 1 table)."
    assert memory.closed and cl.default_backend().path == str(path)
    ip.run_line_magic("convex", "run send author=ada body=kept")
    assert f"Backend: file {path}" in _out(ip, "%convex")
    assert "Already open" in _out(ip, f"%convex open {path}")
    # Another file, then back: the data survived.
    _out(ip, f"%convex open {tmp_path / 'other.duckdb'}")
    _out(ip, f"%convex open {path}")
    assert ip.run_line_magic("convex", "run list_bodies") == ["kept"]
    out = _out(ip, "%convex reset")
    assert out.strip() == f"Wiped {path} (1 document in 1 table, and its .wal); reopened empty."
    assert ip.run_line_magic("convex", "run list_bodies") == []
    assert cl.default_backend().path == str(path) and path.exists()
    with pytest.raises(UsageError, match="Usage: %convex open PATH"):
        ip.run_line_magic("convex", "open")


def test_reset_in_memory(ip: InteractiveShell) -> None:
    _messages(ip)
    ip.run_line_magic("convex", "run send author=a body=b")
    old = cl.default_backend()
    assert _out(ip, "%convex reset").strip() == (
        "Wiped the in-memory backend (1 document in 1 table); it is empty now.")
    assert old.closed and ip.run_line_magic("convex", "run list_bodies") == []
    assert cl.default_backend().store.schema is cl.default_app().schema  # code survives


# %%sql ------------------------------------------------------------------------------------------


def test_sql_returns_and_binds_a_dataframe(ip: InteractiveShell) -> None:
    pytest.importorskip("pandas", reason="pandas is not installed (pip install pandas)")
    _messages(ip)
    for author, body in [("ada", "a"), ("ada", "b"), ("bob", "c")]:
        ip.run_line_magic("convex", f"run send author={author} body={body}")
    query = "SELECT author, count(*) AS n FROM messages GROUP BY author ORDER BY author"
    df = ip.run_cell_magic("sql", "by_author", query)
    assert df.to_dict("records") == [{"author": "ada", "n": 2}, {"author": "bob", "n": 1}]
    assert ip.user_ns["by_author"] is df
    assert cell(ip, f"%%sql\n{query}").equals(df)


def test_sql_errors_are_one_line(ip: InteractiveShell) -> None:
    pytest.importorskip("pandas", reason="pandas is not installed (pip install pandas)")
    _messages(ip)
    out = _out(ip, "%%sql\nSELECT * FROM mesages")
    assert "UsageError: Unknown table 'mesages' in SQL. Did you mean 'messages'?" in out
    assert "Traceback" not in out
    out = _out(ip, '%%sql\nDELETE FROM _convex."messages"')
    assert "UsageError: SQL here is read-only: DELETE statements are not allowed" in out
    with pytest.raises(UsageError, match="not a Python name"):
        ip.run_cell_magic("sql", "2df", "SELECT 1")


def test_extension_flushes_live_queries_after_each_cell(ip: InteractiveShell) -> None:
    from convex_lab.jupyter import _flush_live_queries

    ip.run_line_magic("reload_ext", "convex_lab")
    assert ip.events.callbacks["post_run_cell"].count(_flush_live_queries) == 1
    ip.run_line_magic("unload_ext", "convex_lab")
    assert _flush_live_queries not in ip.events.callbacks["post_run_cell"]


# The names a cell needs ----------------------------------------------------------------------


def test_load_binds_the_names_a_cell_needs_and_says_so_in_one_line(ip: InteractiveShell) -> None:
    from convex_lab.jupyter._namespace import NAMES

    for name in NAMES:
        ip.user_ns.pop(name, None)
    ip.user_ns["query"] = "my own query"
    lines = _out(ip, "%reload_ext convex_lab").strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("convex_lab: added cl, v, define_schema, define_table, mutation,")
    assert lines[0].endswith("; kept your own query. %convex? lists the magics.")
    assert ip.user_ns["query"] == "my own query"
    expected = {"cl": cl, "v": cl.v, "define_table": cl.define_table, "mutation": cl.mutation,
                "internal_mutation": cl.internal_mutation, "cron_jobs": cl.cron_jobs,
                "ConvexError": cl.ConvexError, "Int64": cl.Int64, "UNDEFINED": cl.UNDEFINED}
    assert all(ip.user_ns[name] is obj for name, obj in expected.items())
    # the README's first cells, with no import
    assert _out(ip, '%%schema\nmessages = define_table({"body": v.string()})').strip() == (
        "Schema pushed: messages.")
    assert isinstance(cell(ip, "cl.default_backend()"), cl.Backend)
    # loading again binds nothing new, says so, still keeps the user's own
    again = _out(ip, "%reload_ext convex_lab").strip().splitlines()
    assert len(again) == 1 and again[0].startswith("convex_lab: cl, v, define_schema")
    assert "already in the namespace; kept your own query." in again[0]
    ip.user_ns.pop("query")


# Errors of plain calls: the message once, the user's frames ------------------------------------

PACKAGE_DIR = str(Path(cl.__file__).resolve().parent)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _traceback(ip: InteractiveShell, source: str) -> str:
    """What the user sees when ``source`` fails in a cell, without colors."""
    text = ANSI.sub("", _out(ip, source))
    assert "Traceback" in text, text
    return text


def _no_library_frames(text: str) -> None:
    assert PACKAGE_DIR not in text, text


def test_a_bad_argument_shows_the_message_once_and_only_the_cell(ip: InteractiveShell) -> None:
    _messages(ip)
    text = _traceback(ip, 'send(author=1, body="x")')
    assert "ArgumentValidationError: ArgumentValidationError" not in text
    assert "ArgumentValidationError: Value does not match validator.\nPath: .author" in text
    assert text.count("ArgumentValidationError") == 2  # the header, the message
    assert '----> 1 send(author=1, body="x")' in text  # the user's line
    _no_library_frames(text)
    assert isinstance(sys.last_value, ArgumentValidationError)  # %debug and %tb still work
    assert sys.last_traceback is not None and any(
        PACKAGE_DIR in f.filename for f in traceback.extract_tb(sys.last_traceback))


def test_a_handler_error_shows_the_handler_frame(ip: InteractiveShell) -> None:
    cell(ip, "%%mutation\ndef check(ctx, n: float):\n    if n > 1:\n"
             "        raise ValueError(f'n is too big: {n}')\n    return n\n")
    text = _traceback(ip, "check(n=3)")
    assert text.rstrip().endswith("ValueError: n is too big: 3.0")
    assert "in check(ctx, n)" in text and "raise ValueError(f'n is too big: {n}')" in text
    assert "----> 1 check(n=3)" in text
    _no_library_frames(text)

    cell(ip, "%%mutation\ndef refuse(ctx):\n    raise ConvexError({'code': 'NOPE'})\n")
    text = _traceback(ip, "refuse()")
    assert text.rstrip().endswith('ConvexError: {code: "NOPE"}'), text
    assert "raise ConvexError({'code': 'NOPE'})" in text
    _no_library_frames(text)


def test_chained_errors_are_trimmed_too_and_left_intact(ip: InteractiveShell) -> None:
    cell(ip, "%%query\ndef lookup(ctx, id: str):\n    try:\n        return ctx.db.get(id)\n"
             "    except Exception as e:\n        raise RuntimeError('lookup failed') from e\n")
    text = _traceback(ip, 'lookup(id="not-an-id")')
    assert "RuntimeError: lookup failed" in text and "InvalidIdError" in text
    assert "return ctx.db.get(id)" in text
    _no_library_frames(text)
    cause = sys.last_value.__cause__
    assert cause is not None and any(  # the exception itself keeps every frame
        PACKAGE_DIR in f.filename for f in traceback.extract_tb(cause.__traceback__))


def test_a_refused_attribute_is_the_users_error(ip: InteractiveShell) -> None:
    """``ctx.db.insert`` in a query (convex_lab's ``__getattr__`` refuses it) and a misspelt
    method: the message and the handler's line, not convex_lab's frames."""
    cell(ip, "%%query\ndef writes(ctx):\n    return ctx.db.insert('messages', {'body': 'x'})\n\n"
             "def typo(ctx):\n    return ctx.db.quer('messages').collect()\n")
    text = _traceback(ip, "writes()")
    assert "AttributeError: ctx.db.insert()" in text and "read-only" in text
    assert "----> 2     return ctx.db.insert('messages', {'body': 'x'})" in text
    _no_library_frames(text)
    text = _traceback(ip, "typo()")
    assert "AttributeError" in text and "quer" in text.splitlines()[-1]
    _no_library_frames(text)


def test_a_convex_lab_bug_keeps_its_frames(ip: InteractiveShell) -> None:
    """An error raised inside convex_lab that is not one of its errors is a bug: its frames
    are what a report needs, so the traceback is IPython's own."""
    text = _traceback(ip, "from convex_lab.jupyter import _namespace\n_namespace.inject(None)")
    assert "TypeError" in text and str(Path(PACKAGE_DIR) / "jupyter" / "_namespace.py") in text


def test_other_handlers_and_unload(ip: InteractiveShell) -> None:
    seen: list[type[BaseException]] = []

    def mine(shell: Any, etype: type[BaseException], value: BaseException, tb: Any,
             tb_offset: Any = None) -> list[str]:
        seen.append(etype)
        return ["handled by mine"]

    ip.run_line_magic("unload_ext", "convex_lab")
    assert ip.custom_exceptions == ()
    ip.set_custom_exc((KeyError,), mine)
    try:
        ip.run_line_magic("load_ext", "convex_lab")
        _out(ip, "{}['missing']")
        assert seen == [KeyError]  # still the user's own handler
        _messages(ip)
        assert "ArgumentValidationError: Value does not match" in _traceback(
            ip, 'send(author=1, body="x")')
        ip.run_line_magic("unload_ext", "convex_lab")
        assert ip.custom_exceptions == (KeyError,)
        # unloaded: IPython's full traceback again, convex_lab's frames included
        assert PACKAGE_DIR in _traceback(ip, 'send(author=1, body="x")')
    finally:
        ip.set_custom_exc((), None)
        ip.run_line_magic("load_ext", "convex_lab")  # the fixture unloads it
