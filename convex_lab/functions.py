"""Code: the ``App`` that holds a deployment's functions, and the decorators that register them.

Contract (docs/api.md)
------------------------
* ``@app.query`` / ``@app.mutation`` / ``@app.action`` / ``@app.internal_*`` / ``@app.http_action``
  work bare or with options (``args=``, ``returns=``, ``name=``); the module-level decorators of the
  same names register on :func:`default_app`. Each returns a :class:`FunctionDef`, a callable that
  keeps the handler's ``__name__``/``__doc__``.
* A function's path is ``"module:name"``: the bare function name for notebook code (``__main__``),
  ``"a/b:name"`` for a function of the importable module ``a.b``, or ``name=`` verbatim
  (normalised as Convex does: ``"m.js:f"`` → ``"m:f"``, ``"m:default"`` → ``"m"``). Registering
  a path again replaces the old function, like ``npx convex dev`` pushing new code.
* Validators are resolved once, at registration: ``args=`` wins, else the handler's annotations
  (:func:`~convex_lab.validators.validators_from_signature`), else arguments are unvalidated.
* ``cl.api.x.y`` / ``cl.internal.x.y`` are :class:`FunctionReference` s to the path ``"x:y"``;
  they resolve against the serving app at call time. ``cl.api`` references reach only public
  functions.
* Calling a ``FunctionDef`` from notebook code is an admin call on the backend serving its app;
  inside a running function it is an error (Convex functions call each other via ``ctx.run_*``).
* Components (bottom of this module): ``ComponentDefinition`` is an App-like holder of a
  component's schema and functions; ``app.use(definition, name)`` mounts it (a ``Mount``);
  ``app.components.<name>.<module>.<fn>`` is a ``ComponentReference``. A mount serves copies of
  the definition's functions whose ``mount`` is set: the executor confines their ``ctx.db`` to
  the ``"<name>/"`` tables and resolves their ``ctx.run_*`` in the mount.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import inspect
import sys
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Literal, overload

from convex_lab._runtime import current_frame
from convex_lab._validator_base import identifier_problem
from convex_lab.errors import FunctionError
from convex_lab.events import Event
from convex_lab.store.fastpath import ArgsChecker, compile_args
from convex_lab.values import safe_repr

if TYPE_CHECKING:
    from convex_lab.backend import Backend
    from convex_lab.validators import Validator, VObject

Kind = Literal["query", "mutation", "action", "httpAction"]
Visibility = Literal["public", "internal"]
Handler = Callable[..., Any]

_KIND_WORD: Final[dict[str, str]] = {
    "query": "a query",
    "mutation": "a mutation",
    "action": "an action",
    "httpAction": "an HTTP action",
}


def kind_phrase(kind: str) -> str:
    """``"a query"``, ``"an action"``, ... for error messages."""
    return _KIND_WORD.get(kind, kind)


# ---------------------------------------------------------------------------------------------
# Paths


def normalize_path(path: str) -> str:
    """Canonical form of a function path, as Convex canonicalises ``udfPath`` s.

    ``"messages.js:send"`` → ``"messages:send"``, ``"messages:default"`` → ``"messages"``,
    ``"dir/file.ts"`` → ``"dir/file"``; anything else is returned unchanged.
    """
    module, sep, name = path.partition(":")
    for ext in (".js", ".ts", ".jsx", ".tsx", ".mjs", ".cjs"):
        if module.endswith(ext):
            module = module[: -len(ext)]
            break
    if not sep or name == "default":
        return module
    return f"{module}:{name}"


def default_path(handler: Handler) -> str:
    """The path a handler gets without ``name=``: see the module docstring."""
    name = getattr(handler, "__name__", None)
    if not isinstance(name, str) or not name.isidentifier():
        raise FunctionError(
            f"Cannot derive a function path from {handler!r}: give it a name with name='module:fn'."
        )
    module_name = getattr(handler, "__module__", None)
    module = sys.modules.get(module_name) if isinstance(module_name, str) else None
    # Only a module with a file is "importable"; notebook cells and exec'd code run in __main__
    # (or a synthetic module) and get the bare name, as docs/api.md asks.
    if module_name == "__main__" or module is None or getattr(module, "__file__", None) is None:
        return name
    assert isinstance(module_name, str)
    return f"{module_name.replace('.', '/')}:{name}"


# ---------------------------------------------------------------------------------------------
# Registered functions


class FunctionDef:
    """A registered Convex function: the handler plus its kind, visibility, path and validators.

    Calling it from notebook code is an admin call on the backend serving its app (see module
    docstring); ``fn(x=1)`` and ``fn({"x": 1})`` are the same call.
    """

    path: str
    kind: Kind
    visibility: Visibility
    handler: Handler
    args_validator: VObject | None
    returns_validator: Validator | None
    is_async: bool
    parameters: tuple[frozenset[str], frozenset[str]] | None
    fast_args: ArgsChecker | None
    app: App | None
    # Set on the copy a mounted component serves (``Mount.function``): where it runs.
    mount: Mount | None = None
    __wrapped__: Handler
    __name__: str

    def __init__(
        self,
        handler: Handler,
        *,
        kind: Kind,
        visibility: Visibility,
        path: str,
        args_validator: VObject | None = None,
        returns_validator: Validator | None = None,
        app: App | None = None,
    ) -> None:
        functools.update_wrapper(self, handler)
        self.handler = handler
        self.kind = kind
        self.visibility = visibility
        self.path = path
        self.args_validator = args_validator
        self.returns_validator = returns_validator
        # Decided once here so the call path never needs `inspect`.
        self.is_async = asyncio.iscoroutinefunction(handler)
        self.parameters = (_parameters(handler)
                           if args_validator is None and kind != "httpAction" else None)
        # A pydantic model's arguments always go through pydantic (no one-pass checker).
        self.fast_args = (compile_args(args_validator)
                          if args_validator is not None and not _runs_pydantic(args_validator)
                          else None)
        self.app = app

    @property
    def is_public(self) -> bool:
        return self.visibility == "public"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if current_frame() is not None:
            verb = "run_mutation" if self.kind == "mutation" else (
                "run_action" if self.kind == "action" else "run_query")
            raise FunctionError(
                f"{self.path} was called directly from inside a Convex function. Functions call "
                f"each other through the context: use ctx.{verb}({self.__name__}, {{...}})."
            )
        if self.kind == "httpAction":
            raise FunctionError(
                f"{self.path} is an HTTP action: it is called through an HTTP route, not as a "
                "function.")
        payload = call_args(args, kwargs, self.path)
        if _direct_caller is None:  # convex_lab.backend sets it when it is imported
            raise FunctionError("No backend can run this function: make one with cl.Backend().")
        return _direct_caller(self, payload)

    def __repr__(self) -> str:
        internal = "internal " if self.visibility == "internal" else ""
        return f"<{internal}{self.kind} {self.path!r}>"


def _runs_pydantic(validator: Validator) -> bool:
    from convex_lab._annotations import VModel  # noqa: PLC0415 (keep `import convex_lab` light)

    return isinstance(validator, VModel)


DirectCaller = Callable[[FunctionDef, Any], Any]

# How a function object called from notebook code reaches the backend serving its app. The
# backend layer (above this one) installs it when it is imported: this module never imports it.
_direct_caller: DirectCaller | None = None


def set_direct_caller(caller: DirectCaller) -> None:
    """Install the admin call made by ``fn(...)`` in notebook code (``convex_lab.backend``)."""
    global _direct_caller
    _direct_caller = caller


def _parameters(handler: Handler) -> tuple[frozenset[str], frozenset[str]] | None:
    """``(accepted, required)`` argument names of a handler ``(ctx, **args)`` without an
    ``args`` validator, so that a call it cannot take is an argument error, not a TypeError from
    inside Python's call machinery; ``None`` when it takes ``**kwargs`` (anything goes) or its
    signature cannot be read."""
    try:
        params = list(inspect.signature(handler).parameters.values())[1:]  # after ctx
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    named = [p for p in params if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                              inspect.Parameter.KEYWORD_ONLY)]
    return (frozenset(p.name for p in named),
            frozenset(p.name for p in named if p.default is inspect.Parameter.empty))


def call_args(args: tuple[Any, ...], kwargs: dict[str, Any], path: str) -> Any:
    """``fn(x=1)`` or ``fn({"x": 1})`` → the argument object (checks are the backend's)."""
    if not args:
        return kwargs
    if len(args) == 1 and not kwargs:
        return args[0]
    raise FunctionError(
        f"Call {path} with keyword arguments (fn(x=1)) or one dict (fn({{'x': 1}})); "
        "Convex functions take one object of named arguments."
    )


# ---------------------------------------------------------------------------------------------
# Decorators


class FunctionDecorator:
    """``@query`` / ``@query(args=..., returns=..., name=...)`` for one kind and visibility.

    Bound to an ``App``, or (``app=None``) to whatever :func:`default_app` is at decoration time.
    """

    def __init__(self, app: App | None, kind: Kind, visibility: Visibility) -> None:
        self._app = app
        self.kind: Kind = kind
        self.visibility: Visibility = visibility

    @overload
    def __call__(
        self,
        handler: Handler,
        /,
        *,
        args: Any = None,
        returns: Any = None,
        name: str | None = None,
    ) -> FunctionDef: ...

    @overload
    def __call__(
        self,
        handler: None = None,
        /,
        *,
        args: Any = None,
        returns: Any = None,
        name: str | None = None,
    ) -> Callable[[Handler], FunctionDef]: ...

    def __call__(
        self,
        handler: Handler | None = None,
        /,
        *,
        args: Any = None,
        returns: Any = None,
        name: str | None = None,
    ) -> FunctionDef | Callable[[Handler], FunctionDef]:
        if handler is not None:
            if not callable(handler):
                raise TypeError(
                    f"@{self.kind} decorates a function; got {handler!r}. Options go by keyword: "
                    f"@{self.kind}(args={{...}})."
                )
            return self._register(handler, args, returns, name)

        def decorate(func: Handler) -> FunctionDef:
            return self._register(func, args, returns, name)

        return decorate

    def _register(self, handler: Handler, args: Any, returns: Any, name: str | None) -> FunctionDef:
        app = self._app if self._app is not None else default_app()
        if isinstance(handler, FunctionDef):  # re-decorating: start from the plain handler
            handler = handler.handler
        return app.register(
            make_function(handler, self.kind, self.visibility, args=args, returns=returns,
                          name=name)
        )

    def __repr__(self) -> str:
        return f"<{self.visibility} {self.kind} decorator>"


def make_function(
    handler: Handler,
    kind: Kind,
    visibility: Visibility,
    *,
    args: Any = None,
    returns: Any = None,
    name: str | None = None,
) -> FunctionDef:
    """Build a :class:`FunctionDef`, resolving its validators now (once)."""
    from convex_lab.validators import (  # noqa: PLC0415 (keep `import convex_lab` light)
        Validator,
        VObject,
        args_validator,
        validator_from_annotation,
        validators_from_signature,
    )

    path = normalize_path(name) if name is not None else default_path(handler)
    if not path or path.startswith(":") or path.endswith(":"):
        raise FunctionError(f"Invalid function path {name!r}: use 'module:function' or 'function'.")
    args_v: VObject | None = None
    returns_v: Validator | None = None
    if kind != "httpAction":  # HTTP actions take (ctx, request): no argument validation
        if args is not None:
            args_v = args_validator(args)
        else:
            fields = validators_from_signature(handler)
            args_v = VObject(fields) if fields is not None else None
        if returns is not None:  # a pydantic model too (validator_from_annotation)
            returns_v = returns if isinstance(returns, Validator) else (
                validator_from_annotation(returns))
    return FunctionDef(handler, kind=kind, visibility=visibility, path=path,
                       args_validator=args_v, returns_validator=returns_v)


# ---------------------------------------------------------------------------------------------
# App


class App:
    """A deployment's code: schema, functions, crons, HTTP router and auth providers
    (docs/api.md).

    ``schema``, ``crons``, ``http`` (a ``cl.HttpRouter``) and ``auth`` (``{"providers": [...]}``,
    Convex's ``auth.config.ts``) are plain settable attributes. ``functions`` maps each path to
    its current :class:`FunctionDef`.
    """

    def __init__(self, schema: Any = None, crons: Any = None, http: Any = None,
                 auth: Any = None) -> None:
        self.schema = schema
        self.crons = crons
        self.http = http
        self.auth = auth
        self.functions: dict[str, FunctionDef] = {}
        # Components mounted with use(), by name (DESIGN §8, "Components").
        self.mounts: dict[str, Mount] = {}
        self._backend: weakref.ref[Backend] | None = None
        # Emitted with each (re)registered function: live queries of a redefined function re-run.
        self.registered: Event[FunctionDef] = Event("function registration")
        self.query = FunctionDecorator(self, "query", "public")
        self.mutation = FunctionDecorator(self, "mutation", "public")
        self.action = FunctionDecorator(self, "action", "public")
        self.internal_query = FunctionDecorator(self, "query", "internal")
        self.internal_mutation = FunctionDecorator(self, "mutation", "internal")
        self.internal_action = FunctionDecorator(self, "action", "internal")
        self.http_action = FunctionDecorator(self, "httpAction", "public")

    def register(self, fn: FunctionDef) -> FunctionDef:
        """Add ``fn`` (replacing any function at its path) and return it."""
        fn.app = self
        self.functions[fn.path] = fn
        self.registered.emit(fn)
        return fn

    def function(self, path: str) -> FunctionDef | None:
        """The function at ``path`` (normalised), or ``None``."""
        fn = self.functions.get(path)
        return fn if fn is not None else self.functions.get(normalize_path(path))

    def remove(self, path: str) -> None:
        self.functions.pop(normalize_path(path), None)

    def use(self, definition: ComponentDefinition, name: str | None = None) -> ComponentReference:
        """Mount a component (``cl.define_component``) under ``name`` (its own name by default);
        returns ``app.components.<name>``. Mounting a name again replaces what it held (a cell
        re-run); its tables, ``<name>/<table>`` in the store, keep their documents."""
        if not isinstance(definition, ComponentDefinition):
            raise FunctionError(
                f"app.use() takes a component definition (cl.define_component(name)); got "
                f"{safe_repr(definition)}.")
        name = definition.name if name is None else name
        problem = identifier_problem(name)
        if problem is not None:
            raise FunctionError(f"Invalid component name {name!r}: {problem}")
        old = self.mounts.get(name)
        if old is None or old.definition is not definition:
            self.mounts[name] = Mount(self, definition, name)
        return ComponentReference(self, name, ())

    @property
    def components(self) -> ComponentsNamespace:
        """``app.components.<name>.<module>.<fn>``: references to mounted components' functions
        for ``ctx.run_query/run_mutation/run_action`` and ``backend.query(...)``."""
        return ComponentsNamespace(self)

    @property
    def backend(self) -> Backend | None:
        """The most recent open backend this app was deployed to, if any."""
        backend = self._backend() if self._backend is not None else None
        return backend if backend is not None and not backend.closed else None

    def _deployed_to(self, backend: Backend) -> None:
        self._backend = weakref.ref(backend)

    def __repr__(self) -> str:
        return f"<App: {len(self.functions)} functions, schema={'yes' if self.schema else 'no'}>"


_default_app: App | None = None


def default_app() -> App:
    """The app that the module-level decorators register on (made on first use)."""
    global _default_app
    if _default_app is None:
        _default_app = App()
    return _default_app


query: Final = FunctionDecorator(None, "query", "public")
mutation: Final = FunctionDecorator(None, "mutation", "public")
action: Final = FunctionDecorator(None, "action", "public")
internal_query: Final = FunctionDecorator(None, "query", "internal")
internal_mutation: Final = FunctionDecorator(None, "mutation", "internal")
internal_action: Final = FunctionDecorator(None, "action", "internal")
http_action: Final = FunctionDecorator(None, "httpAction", "public")


# ---------------------------------------------------------------------------------------------
# References: cl.api / cl.internal


class FunctionReference:
    """A function path built by attribute access: ``cl.api.messages.send`` → ``"messages:send"``.

    Only dunder names are real attributes, so any function name works as an attribute; read the
    path with :func:`reference_path` or ``str(ref)``.
    """

    __slots__ = ("__parts", "__public")

    def __init__(self, parts: tuple[str, ...], public: bool) -> None:
        self.__parts = parts
        self.__public = public

    def __getattr__(self, name: str) -> FunctionReference:
        if name.startswith("__") or name.startswith("_FunctionReference"):
            raise AttributeError(name)
        return FunctionReference((*self.__parts, name), self.__public)

    def __dir__(self) -> list[str]:
        # Tab completion: the next path segments of the default app's functions.
        depth = len(self.__parts)
        names: set[str] = set()
        for path in default_app().functions:
            segments = path.replace(":", "/").split("/")
            if segments[:depth] == list(self.__parts) and len(segments) > depth:
                names.add(segments[depth])
        return sorted(names)

    def _cl_path(self) -> str:
        parts = self.__parts
        if not parts:
            root = "api" if self.__public else "internal"
            raise FunctionError(f"cl.{root} is the root of references: use cl.{root}.<function>.")
        if len(parts) == 1:
            return parts[0]
        return "/".join(parts[:-1]) + ":" + parts[-1]

    def _cl_public(self) -> bool:
        return self.__public

    def __str__(self) -> str:
        return self._cl_path()

    def __repr__(self) -> str:
        root = "api" if self.__public else "internal"
        return f"cl.{root}.{'.'.join(self.__parts)}" if self.__parts else f"cl.{root}"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FunctionReference):
            return NotImplemented
        return self.__parts == other.__parts and self.__public == other.__public

    def __hash__(self) -> int:
        return hash((self.__parts, self.__public))


api: Final = FunctionReference((), True)
internal: Final = FunctionReference((), False)

FunctionLike = FunctionDef | FunctionReference | str


def reference_path(ref: FunctionLike | Any) -> tuple[str, bool]:
    """``(normalised path, public_only)`` of any function reference; ``TypeError`` otherwise."""
    if isinstance(ref, FunctionDef):
        return ref.path, False
    if isinstance(ref, str):
        return normalize_path(ref), False
    if isinstance(ref, FunctionReference):
        return normalize_path(ref._cl_path()), ref._cl_public()
    if isinstance(ref, ComponentReference):
        return normalize_path(ref._cl_path()), True
    raise FunctionError(
        f"{safe_repr(ref)} is not a function reference: pass the decorated function, a path "
        "such as 'messages:send', or cl.api.messages.send."
    )


# ---------------------------------------------------------------------------------------------
# Components: definitions, mounts and their references (DESIGN §8, "Components")
#
# The mechanism lives here, in the functions layer, because resolution and ctx building (the
# executor) need it; `convex_lab.components` (layer 5) re-exports `define_component` and ships
# the aggregate and rate-limiter components built on it.


class ComponentDefinition(App):
    """``cl.define_component(name)``: an App-like holder of a component's schema and functions
    (the same decorators as :class:`App`). Nothing runs until an app mounts it with
    ``app.use(definition)``; one definition may be mounted several times under different
    names, each with its own tables."""

    def __init__(self, name: str, schema: Any = None) -> None:
        problem = identifier_problem(name)
        if problem is not None:
            raise FunctionError(f"Invalid component name {name!r}: {problem}")
        super().__init__(schema=schema)
        self.name = name

    def use(self, definition: ComponentDefinition, name: str | None = None) -> ComponentReference:
        raise FunctionError(f"Component {self.name!r} cannot mount components itself: mount "
                            f"{definition.name!r} on the app with app.use(...).")

    def __repr__(self) -> str:
        return (f"<component {self.name!r}: {len(self.functions)} functions, "
                f"tables: {', '.join(sorted(getattr(self.schema, 'tables', {}))) or 'none'}>")


class Mount:
    """A component definition mounted in ``app`` under ``name``.

    Invariants: its functions resolve only here (``function``), as copies whose ``mount`` is
    this object, so the executor runs them with ``ctx.db`` confined to the ``"<name>/"`` tables
    (``namespace``); a function re-registered on the definition is picked up at the next call.
    """

    def __init__(self, app: App, definition: ComponentDefinition, name: str) -> None:
        self.app = app
        self.definition = definition
        self.name = name
        self.namespace = name + "/"
        self._copies: dict[str, tuple[FunctionDef, FunctionDef]] = {}

    def function(self, path: str) -> FunctionDef | None:
        """The component's function at ``path``, as this mount runs it (or ``None``)."""
        original = self.definition.function(path)
        if original is None:
            return None
        cached = self._copies.get(original.path)
        if cached is not None and cached[0] is original:
            return cached[1]
        served = copy.copy(original)
        served.mount = self
        self._copies[original.path] = (original, served)
        return served

    def __repr__(self) -> str:
        return f"<component {self.definition.name!r} mounted as {self.name!r}>"


class ComponentsNamespace:
    """``app.components``: one attribute per mounted component."""

    __slots__ = ("_app",)

    def __init__(self, app: App) -> None:
        self._app = app

    def __getattr__(self, name: str) -> ComponentReference:
        if name.startswith("__"):
            raise AttributeError(name)
        if name not in self._app.mounts:
            mounted = ", ".join(sorted(self._app.mounts)) or "none"
            raise AttributeError(f"No component is mounted as {name!r} (mounted: {mounted}). "
                                 f"Mount one with app.use(definition, name={name!r}).")
        return ComponentReference(self._app, name, ())

    def __dir__(self) -> list[str]:
        return sorted(self._app.mounts)

    def __repr__(self) -> str:
        return f"<components: {', '.join(sorted(self._app.mounts)) or 'none'}>"


class ComponentReference:
    """``app.components.<name>.<module>.<fn>``: the path ``"<module>:<fn>"`` inside the
    component mounted as ``<name>``, built like ``cl.api`` (``.lib.count`` → ``"lib:count"``)."""

    __slots__ = ("__app", "__name", "__parts")

    def __init__(self, app: App, name: str, parts: tuple[str, ...]) -> None:
        self.__app = app
        self.__name = name
        self.__parts = parts

    def __getattr__(self, part: str) -> ComponentReference:
        if part.startswith("__") or part.startswith("_ComponentReference"):
            raise AttributeError(part)
        return ComponentReference(self.__app, self.__name, (*self.__parts, part))

    def _cl_component(self) -> str:
        return self.__name

    def _cl_mount(self) -> Mount:
        mount = self.__app.mounts.get(self.__name)
        if mount is None:
            raise FunctionError(f"No component is mounted as {self.__name!r}: mount it with "
                                f"app.use(definition, name={self.__name!r}).")
        return mount

    def _cl_path(self) -> str:
        parts = self.__parts
        if not parts:
            raise FunctionError(f"app.components.{self.__name} is a component: reference one of "
                                f"its functions, e.g. app.components.{self.__name}.lib.count.")
        if len(parts) == 1:
            return parts[0]
        return "/".join(parts[:-1]) + ":" + parts[-1]

    def __dir__(self) -> list[str]:
        mount = self.__app.mounts.get(self.__name)
        if mount is None:
            return []
        depth = len(self.__parts)
        names: set[str] = set()
        for path in mount.definition.functions:
            segments = path.replace(":", "/").split("/")
            if segments[:depth] == list(self.__parts) and len(segments) > depth:
                names.add(segments[depth])
        return sorted(names)

    def __str__(self) -> str:
        return f"{self.__name}/{self._cl_path()}" if self.__parts else self.__name

    def __repr__(self) -> str:
        return f"app.components.{'.'.join((self.__name, *self.__parts))}"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ComponentReference):
            return NotImplemented
        return (self.__app is other.__app and self.__name == other.__name
                and self.__parts == other.__parts)

    def __hash__(self) -> int:
        return hash((id(self.__app), self.__name, self.__parts))
