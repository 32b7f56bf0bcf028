"""The ``%load_ext convex_lab`` magics (docs/api.md): thin wrappers over the public Python API.

One :class:`~IPython.core.magic.Magics` class per concern, each magic declared with
``@magic_arguments`` so ``%convex?``, ``%%query?`` etc. print its usage:

* :class:`SchemaMagics` — ``%%schema``: run the cell; every ``define_table(...)`` bound to a name
  becomes that table (or the cell binds a ``define_schema({...})``); the default app gets the
  schema and the default backend validates existing documents against it before taking it.
* :class:`FunctionMagics` — ``%%query``, ``%%mutation``, ``%%action`` (``--internal``,
  ``--name module:fn``): every top-level ``def`` of the cell is registered on the default app as
  that kind and bound to its name in the notebook; running the cell again redeploys it.
* :class:`ConvexMagics` — ``%convex [subcommand ...]``: status, run, watch, data, logs, clock,
  jobs, crons, open, reset, serve, export, import.
* :class:`SqlMagics` — ``%%sql [name]``: read-only DuckDB SQL at one snapshot → a DataFrame.

Errors that are the user's become one ``UsageError`` line (see ``_commands.user_errors``);
exceptions raised by the user's own code in a cell keep their traceback, as with any cell.
"""

from __future__ import annotations

import ast
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

import convex_lab as cl
from convex_lab.jupyter import _commands as commands
from convex_lab.jupyter._commands import did_you_mean, user_errors

SUBCOMMANDS = ("status", "run", "watch", "data", "logs", "clock", "open", "reset", "jobs",
               "crons", "export", "import", "serve")


def _shell(magics: Magics) -> Any:
    """The shell a Magics instance is registered on (always set once registered)."""
    shell = magics.shell
    if shell is None:
        raise UsageError("convex_lab magics need an IPython shell: %load_ext convex_lab.")
    return shell


class _CellMagics(Magics):
    """Shared: run a cell's source in the notebook's namespace, as a normal cell would."""

    def _parse(self, cell: str) -> tuple[str, ast.Module]:
        source = _shell(self).transform_cell(cell)
        try:
            return source, ast.parse(source)
        except SyntaxError as e:
            raise UsageError(f"SyntaxError in the cell, line {e.lineno}: {e.msg}") from None

    def _run(self, source: str, cell: str) -> None:
        # A cached file name makes tracebacks of the user's code show its lines.
        shell = _shell(self)
        filename = shell.compile.cache(source, shell.execution_count, raw_code=cell)
        exec(compile(source, filename, "exec"), shell.user_ns)


@magics_class
class SchemaMagics(_CellMagics):
    """``%%schema``."""

    @magic_arguments()
    @cell_magic
    def schema(self, line: str, cell: str) -> None:
        """Define the tables and push the schema to the default backend.

        Every ``define_table(...)`` assigned to a name becomes the table of that name (or assign
        ``schema = define_schema({...})``). Existing documents are validated first; if some do
        not match, nothing changes and the offending documents are named.

        Example::

            %%schema
            channels = define_table({"name": v.string()})
            messages = define_table({"channel": v.id("channels"), "body": v.string()}) \\
                .index("by_channel", ["channel"])
        """
        from convex_lab.schema import Schema, TableDefinition  # noqa: PLC0415 (cheap, lazy)

        parse_argstring(self.schema, line)
        source, tree = self._parse(cell)
        assigned = _assigned_names(tree)
        self._run(source, cell)
        user_ns = _shell(self).user_ns
        tables = {n: user_ns[n] for n in assigned if isinstance(user_ns.get(n), TableDefinition)}
        given = [user_ns[n] for n in assigned if isinstance(user_ns.get(n), Schema)]
        if not tables and not given:
            raise UsageError(
                "%%schema: the cell bound no define_table(...) to a name. Write e.g. "
                "messages = define_table({'body': v.string()}), or schema = define_schema({...}).")
        with user_errors():
            if given:
                base = given[-1]
                extra = {n: t for n, t in tables.items()
                         if not any(t is d for d in base.tables.values())}
                schema = cl.define_schema(
                    {**base.tables, **extra}, schema_validation=base.schema_validation,
                    strict_table_name_types=base.strict_table_name_types)
            else:
                schema = cl.define_schema(tables)
            app = cl.default_app()
            previous = app.schema
            app.schema = schema
            try:
                cl.default_backend().deploy()
            except BaseException:
                app.schema = previous  # the backend refused it: don't retry it on every call
                raise
        described = ", ".join(n + (f" ({', '.join(t.indexes)})" if t.indexes else "")
                              for n, t in schema.tables.items())
        print(f"Schema pushed: {described}.")


def _assigned_names(tree: ast.Module) -> list[str]:
    """Names bound by top-level assignments of the cell, in order."""
    names: list[str] = []

    def collect(target: ast.expr) -> None:
        if isinstance(target, ast.Name):
            names.append(target.id)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                collect(element)

    for node in tree.body:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                collect(target)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            collect(node.target)
    return list(dict.fromkeys(names))


@magics_class
class FunctionMagics(_CellMagics):
    """``%%query``, ``%%mutation``, ``%%action``."""

    def _define(self, kind: str, line: str, cell: str, magic: Any) -> None:
        from convex_lab.functions import FunctionDef, make_function  # noqa: PLC0415 (lazy)

        args = parse_argstring(magic, line)
        source, tree = self._parse(cell)
        names = [node.name for node in tree.body
                 if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
        if not names:
            raise UsageError(f"%%{kind}: the cell defines no function. Write e.g.\n"
                             f"    def my_{kind}(ctx, name: str):\n        ...")
        if args.name is not None and len(names) != 1:
            raise UsageError(f"%%{kind} --name applies to one function; the cell defines "
                             f"{len(names)} ({', '.join(names)}). Split the cell.")
        self._run(source, cell)
        user_ns = _shell(self).user_ns
        visibility = "internal" if args.internal else "public"
        done: list[str] = []
        with user_errors():
            for name in names:
                obj = user_ns[name]
                handler, validators, returns = obj, None, None
                if isinstance(obj, FunctionDef):  # decorated in the cell: keep its validators
                    handler, validators, returns = (
                        obj.handler, obj.args_validator, obj.returns_validator)
                if not callable(handler):
                    raise UsageError(f"%%{kind}: {name} is not a function after the cell ran.")
                fn = cl.default_app().register(make_function(
                    handler, kind, visibility, args=validators, returns=returns,  # type: ignore[arg-type]
                    name=args.name))
                user_ns[name] = fn
                done.append(fn.path)
        plural = {"query": "queries"}.get(kind, kind + "s")
        print(f"{visibility.capitalize()} {plural if len(done) > 1 else kind}: "
              f"{', '.join(done)}.")

    @magic_arguments()
    @argument("--internal", action="store_true",
              help="register it as internal (internal_query): clients cannot call it")
    @argument("--name", metavar="MODULE:FN", help="its path instead of the function name")
    @cell_magic
    def query(self, line: str, cell: str) -> None:
        """Register every ``def`` of the cell as a Convex query on the default app.

        Handlers take ``(ctx, **args)``; annotations are the argument validators
        (``channel: v.id("channels")``, ``n: int``). Re-running the cell redeploys it.
        """
        self._define("query", line, cell, self.query)

    @magic_arguments()
    @argument("--internal", action="store_true",
              help="register it as internal (internal_mutation): clients cannot call it")
    @argument("--name", metavar="MODULE:FN", help="its path instead of the function name")
    @cell_magic
    def mutation(self, line: str, cell: str) -> None:
        """Register every ``def`` of the cell as a Convex mutation on the default app."""
        self._define("mutation", line, cell, self.mutation)

    @magic_arguments()
    @argument("--internal", action="store_true",
              help="register it as internal (internal_action): clients cannot call it")
    @argument("--name", metavar="MODULE:FN", help="its path instead of the function name")
    @cell_magic
    def action(self, line: str, cell: str) -> None:
        """Register every ``def`` of the cell as a Convex action on the default app."""
        self._define("action", line, cell, self.action)


@magics_class
class ConvexMagics(Magics):
    """``%convex``."""

    @magic_arguments()
    @argument("subcommand", nargs="?", default="status",
              help="status (default), run, watch, data, logs, clock, open, reset, jobs, crons, "
                   "export, import, serve")
    @argument("words", nargs="*", help="the subcommand's arguments")
    @line_magic
    def convex(self, line: str) -> Any:
        """The default backend: status, calls, live views, data, logs, files.

        Every convex_lab magic (each has its own help: ``%%schema?``, ``%%query?``, ...)::

            %%schema                         define tables (define_table(...) bound to names)
                                             and push the schema to the backend
            %%query                          register the cell's defs as queries
            %%mutation                       register the cell's defs as mutations
            %%action                         register the cell's defs as actions
                                             (all three: --internal, --name module:fn)
            %%sql [name]                     read-only DuckDB SQL over the tables -> DataFrame
            %convex [subcommand ...]         the default backend, with the subcommands below

        ``%convex`` subcommands::

            %convex                          status: backend, clock, tables, functions,
                                             jobs by state, crons
            %convex run FN key=value ...     call a function (values are Python literals,
                                             else strings); the result is displayed
            %convex watch FN key=value ...   a live view of a query
            %convex data TABLE               browse a table
            %convex logs                     function logs (printed lines, errors, timings)
            %convex jobs                     scheduled functions and their states
            %convex crons                    crons: schedule, next run, last run
            %convex clock [advance 1h]       show or move the virtual clock
            %convex open PATH                make the DuckDB file at PATH the default backend
            %convex reset                    wipe the default backend (and its file)
            %convex export PATH.zip          a Convex snapshot ZIP of every table and file
            %convex import PATH.zip          load a snapshot (one commit; --append, --replace)
            %convex import FILE --table T    load a .parquet/.csv/.jsonl/.json file into T
            %convex serve [PORT]             serve it on 127.0.0.1: the deployment URL
                                             (file uploads and URLs) and the site URL
                                             (HTTP actions)
        """
        # Not parse_argstring: its splitting breaks quoted values (body="hello world") and
        # literals with spaces (tags=['a', 'b']); the declared arguments above are the help.
        words = commands.split_words(line)
        sub = words.pop(0) if words else "status"
        if sub in ("-h", "--help"):
            print(self.convex.__doc__)
            return None
        if sub not in SUBCOMMANDS:
            raise UsageError(f"Unknown %convex subcommand {sub!r}.{did_you_mean(sub, SUBCOMMANDS)}"
                             f" Subcommands: {', '.join(SUBCOMMANDS)}.")
        if sub in ("open", "reset"):
            if sub == "open" and len(words) != 1:
                raise UsageError("Usage: %convex open PATH (a DuckDB file, made if missing).")
            print(commands.open_backend(commands.unquote(words[0])) if sub == "open"
                  else commands.reset_backend())
            return None
        with user_errors():
            backend = cl.default_backend()
        if sub == "status":
            print(commands.status(backend))
            return None
        if sub == "clock":
            print(commands.clock(backend, words))
            return None
        if sub == "serve":
            print(commands.serve(backend, words))
            return None
        if sub in ("export", "import"):
            with user_errors():
                print(commands.transfer(backend, sub, words))
            return None
        if sub in ("logs", "jobs", "crons"):
            return self._dashboard(backend, sub)
        if not words:
            what = "TABLE" if sub == "data" else "FN key=value ..."
            raise UsageError(f"Usage: %convex {sub} {what}")
        if sub == "run":
            return commands.run(backend, words[0], words[1:])
        if sub == "watch":
            return self._watch(backend, words[0], words[1:])
        return self._data(backend, words[0])

    def _watch(self, backend: cl.Backend, name: str, words: list[str]) -> Any:
        fn = commands.resolve(backend, name, "query")
        call_args = commands.parse_call_args(words)
        _, why = commands.widget_factory("display_live")
        with user_errors():
            live = cl.watch(fn, call_args)
        if why:  # LiveQuery displays itself with the widget module: show text instead
            print(f"{live!r}\n({why}; the live query still updates: assign cl.watch(...) to "
                  "read .value)")
            return None
        return live

    def _data(self, backend: cl.Backend, table: str) -> Any:
        commands.check_table(backend, table)
        factory, why = commands.widget_factory("data_browser")
        if factory is not None:
            return factory(backend, table)
        print(f"({why}: showing the first 100 documents of {table})")
        return commands.data_fallback(backend, table)

    def _dashboard(self, backend: cl.Backend, sub: str) -> Any:
        from convex_lab.jupyter import _schedule_text as text  # noqa: PLC0415

        factory, _ = commands.widget_factory(
            {"logs": "logs_dashboard", "jobs": "jobs_widget", "crons": "crons_widget"}[sub])
        if factory is not None:
            return factory(backend)
        print({"logs": commands.logs_text, "jobs": text.jobs_text,
               "crons": text.crons_text}[sub](backend))
        return None


@magics_class
class SqlMagics(Magics):
    """``%%sql``."""

    @magic_arguments()
    @argument("name", nargs="?", help="also bind the DataFrame to this name in the notebook")
    @cell_magic
    def sql(self, line: str, cell: str) -> Any:
        """Read-only DuckDB SQL over the default backend's tables, at one snapshot → DataFrame.

        One view per table, named like it, with ``_id``, ``_creationTime`` and one column per
        top-level field (typed from the schema where it can be, JSON otherwise)::

            %%sql by_author
            SELECT author, count(*) AS n FROM messages GROUP BY author ORDER BY n DESC
        """
        args = parse_argstring(self.sql, line)
        if args.name is not None and not args.name.isidentifier():
            raise UsageError(f"%%sql NAME binds the result: {args.name!r} is not a Python name.")
        with user_errors():
            backend = cl.default_backend()
            try:
                frame = backend.sql(cell)
            except ImportError as e:
                raise UsageError(f"%%sql needs pandas ({e}): pip install pandas") from None
        if args.name is not None:
            _shell(self).user_ns[args.name] = frame
        return frame


MAGICS: tuple[type[Magics], ...] = (SchemaMagics, FunctionMagics, ConvexMagics, SqlMagics)
